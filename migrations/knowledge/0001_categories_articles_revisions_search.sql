-- knowledge: nested categories with read/write grants, Markdown articles with their revisions and links, and the
-- full-text index of published articles.
CREATE TABLE kb_categories (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	parent_id uuid REFERENCES kb_categories (id) ON DELETE CASCADE,
	name text NOT NULL,
	description text NOT NULL DEFAULT '',
	position integer NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (organization_id, id)
);
-- Sibling names are unique (a root's siblings are the other roots).
CREATE UNIQUE INDEX kb_categories_name_idx
	ON kb_categories (organization_id, COALESCE(parent_id, '00000000-0000-0000-0000-000000000000'::uuid), name);
CREATE INDEX kb_categories_parent_idx ON kb_categories (parent_id);

-- A category with grants is restricted to them; one without inherits its nearest restricted ancestor's (none: open to
-- the organization's knowledge:read / knowledge:write). A role grant holds for that role and every role above it.
CREATE TABLE kb_category_grants (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	category_id uuid NOT NULL REFERENCES kb_categories (id) ON DELETE CASCADE,
	team_id uuid REFERENCES teams (id) ON DELETE CASCADE,
	role text CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
	access text NOT NULL CHECK (access IN ('read', 'write')),
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK ((team_id IS NULL) <> (role IS NULL))
);
CREATE UNIQUE INDEX kb_category_grants_who_idx
	ON kb_category_grants (category_id, COALESCE(team_id::text, role));

CREATE TABLE kb_articles (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	category_id uuid NOT NULL,
	title text NOT NULL,
	slug text NOT NULL,
	body text NOT NULL DEFAULT '',
	tags text[] NOT NULL DEFAULT '{}',
	status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published')),
	revision integer NOT NULL DEFAULT 1,
	published_at timestamptz,
	created_by uuid REFERENCES users (id) ON DELETE SET NULL,
	updated_by uuid REFERENCES users (id) ON DELETE SET NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (organization_id, slug),
	-- A category of the same organization; removing a category that holds articles is refused.
	FOREIGN KEY (organization_id, category_id) REFERENCES kb_categories (organization_id, id)
);
CREATE INDEX kb_articles_category_idx ON kb_articles (category_id);

-- Every save is a revision; the article holds the latest one's content.
CREATE TABLE kb_revisions (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	article_id uuid NOT NULL REFERENCES kb_articles (id) ON DELETE CASCADE,
	number integer NOT NULL,
	title text NOT NULL,
	body text NOT NULL,
	tags text[] NOT NULL DEFAULT '{}',
	note text NOT NULL DEFAULT '',
	created_by uuid REFERENCES users (id) ON DELETE SET NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (article_id, number)
);

CREATE TABLE kb_article_links (
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	from_article_id uuid NOT NULL REFERENCES kb_articles (id) ON DELETE CASCADE,
	to_article_id uuid NOT NULL REFERENCES kb_articles (id) ON DELETE CASCADE,
	PRIMARY KEY (from_article_id, to_article_id)
);
CREATE INDEX kb_article_links_to_idx ON kb_article_links (to_article_id);

-- One row per published article, written by the indexer (knowledge.events): what search reads, with the category
-- it was published in, so search joins it with the categories the caller may read.
CREATE TABLE kb_search_index (
	article_id uuid PRIMARY KEY REFERENCES kb_articles (id) ON DELETE CASCADE,
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	category_id uuid NOT NULL REFERENCES kb_categories (id) ON DELETE CASCADE,
	revision integer NOT NULL,
	title text NOT NULL,
	body text NOT NULL,
	tsv tsvector GENERATED ALWAYS AS (
		setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')
	) STORED,
	indexed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kb_search_index_tsv_idx ON kb_search_index USING gin (tsv);
CREATE INDEX kb_search_index_org_idx ON kb_search_index (organization_id, category_id);
