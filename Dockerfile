# imodel-sync: one image for both processes.
#   docker run IMAGE                               -> API     (node dist/api/server.js)
#   docker run IMAGE node dist/worker/main.js      -> worker
# See docker-compose.yml for the production topology (Temporal server and FerretDB on PostgreSQL).

# ---- build: full dependency tree, TypeScript -> dist/, the portal (web/) -> dist/web/dist
FROM node:20-bookworm-slim AS build
WORKDIR /app
ENV npm_config_update_notifier=false
COPY package.json package-lock.json .npmrc ./
RUN npm ci
COPY tsconfig.json ./
COPY domain ./domain
COPY lib ./lib
COPY workflows ./workflows
COPY activities ./activities
COPY api ./api
COPY worker ./worker
COPY scripts ./scripts
COPY samples ./samples
COPY web ./web
RUN npm run build \
 && test -f dist/api/server.js && test -f dist/worker/main.js \
 && node_modules/.bin/vite build --config web/vite.config.mts \
 && mkdir -p dist/web && cp -R web/dist dist/web/dist && test -f dist/web/dist/index.html \
 && npm prune --omit=dev

# ---- runtime: production dependencies and compiled JavaScript only
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    DATA_DIR=/data \
    SOURCE_ROOTS=/sources:/app/samples \
    API_PORT=3000 \
    TEMPORAL_NAMESPACE=default \
    TEMPORAL_TASK_QUEUE=imodel-sync \
    LOG_LEVEL=info
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./package.json
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --from=build --chown=node:node /app/samples ./samples
# Named volumes mounted here inherit this ownership on first use.
RUN mkdir -p /data /sources && chown node:node /data /sources && chmod 700 /data
USER node
VOLUME ["/data", "/sources"]
EXPOSE 3000
CMD ["node", "dist/api/server.js"]
