# One image for every Moleculer service; docker-compose.yml picks the service
# per container with SERVICES=<folder under services/>.

# --- build: full dependency tree, builds the web UI into public/ -------------
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# vite builds frontend/ into public/; without a frontend the stage still
# yields an (empty) public/ so the COPY below never fails.
RUN if [ -d frontend ]; then npm run build; fi && mkdir -p public
# The server compiled to JavaScript (dist/): plain node runs it, without tsx's loader in every process.
RUN npm run build:server

# --- runtime: production dependencies only (tsx is one of them, for npm run migrate and the REPL) --
FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY . .
COPY --from=build /app/public ./public
COPY --from=build /app/dist ./dist
# Run unprivileged; only the data directory (DATA_DIR, default ./data) is writable.
RUN mkdir -p data && chown node:node data
USER node
# Inside a container the gateway listens on every interface; outside one it defaults to 127.0.0.1.
ENV HOST=0.0.0.0
EXPOSE 3000
# node itself is the main process (not npm), so SIGTERM reaches the broker. The command is npm start's: a young
# generation of 2 × 8 MiB instead of V8's 2 × 16, which start-up fills and an idle process keeps (~20 MiB RSS each).
CMD ["node", "--max-semi-space-size=8", "dist/lib/main.js"]
