# Envelope encryption service: container image.
#
#   docker build -t envelope-service .
#   docker compose up            # with local-kms, see docker-compose.yml
#
# Three stages: `build` (all dependencies, compiles TypeScript), `deps` (production
# dependencies only), and the runtime image, which holds dist/, the production node_modules
# and package.json (needed at run time: it declares "type": "module"), and nothing else: no
# sources, no tests, no dev tools, no secrets. The keystore (local provider) and the audit log
# live on volumes; the policy file is mounted read-only (docs/OPERATIONS.md).
#
# Node: the current LTS line on Debian bookworm slim, the version CI runs the whole suite on
# (README, "Node.js versions"). NODE_IMAGE picks another (docker build --build-arg
# NODE_IMAGE=node:22-bookworm-slim), untested; not older: some production dependencies
# (cookie 2, content-disposition 3) declare node >= 22, and so will the AWS SDK.
# For reproducible production builds, pin the digest too (node:24-bookworm-slim@sha256:...).
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: compile with the dev dependencies -------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- deps: production dependencies only -------------------------------------------------------
# A separate stage so the runtime layer holds no dev dependency and no npm cache. The one
# production dependency with an install script (protobufjs, under the OpenTelemetry exporter)
# only prints a version notice, so --ignore-scripts changes nothing but closes a door.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- runtime ------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime

# Listen on every interface inside the container (the application's default is loopback only).
# The keystore and audit log default to the volumes below; everything else comes from the
# environment at run time (README's configuration table). POLICY_FILE must be given: without
# one the service would be in dev mode, which refuses to start here (NODE_ENV=production, and
# HOST is not loopback), so the image never starts open.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    LOCAL_KEYSTORE=/var/lib/envelope/keystore.json \
    AUDIT_LOG=/var/log/envelope/audit.log

# Data directories owned by the unprivileged `node` user (uid 1000) of the base image; a named
# volume mounted there starts with this ownership. /etc/envelope is for the policy mount.
RUN mkdir -p /var/lib/envelope /var/log/envelope /etc/envelope \
 && chown node:node /var/lib/envelope /var/log/envelope \
 && chmod 0700 /var/lib/envelope /var/log/envelope

WORKDIR /app
# Application files belong to root and are read-only for the service user.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./

# Numeric (the base image's `node` user): Kubernetes' runAsNonRoot can only verify a numeric user.
USER 1000:1000
EXPOSE 8080
VOLUME ["/var/lib/envelope", "/var/log/envelope"]

# Liveness with node itself (the slim image has no curl or wget). Uses the PORT the service
# listens on; answers within 2 s or counts as a failure.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz',{signal:AbortSignal.timeout(2000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# node runs as PID 1, on purpose, without npm (which would rebuild and not forward signals) and
# without an init: the service installs its own SIGTERM/SIGINT handlers (graceful shutdown,
# SHUTDOWN_GRACE_MS) and SIGHUP (policy reload), so PID 1's "ignore signals without a handler"
# rule does not bite, and it starts no child processes, so there are no zombies to reap.
# `docker run --init` (tini) is harmless if your platform adds it: tini forwards the signals.
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/server.js"]
