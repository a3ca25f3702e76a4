-- pgvector's vector type is stored EXTERNAL: once a chunk's row passes 2 kB (text, tsvector and a 384-dimension
-- vector of 1.5 kB do), the vector is moved out of line into the TOAST table, and every exact distance (a filter's
-- rows ordered exactly, recall checks, the fallback when an index scan comes up short) then reads it from there:
-- 27 ms for 2,000 rows. MAIN keeps it in the row (the text and tsvector go out of line first); rows written from now on.
ALTER TABLE emb_chunks ALTER COLUMN embedding SET STORAGE MAIN;
