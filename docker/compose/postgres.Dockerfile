# PostgreSQL from Debian's package, for docker/compose.yaml (no registry image needed: BASE_IMAGE may be
# a locally made Debian 12 image). The cluster is made at first start in the data volume.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends postgresql tini && rm -rf /var/lib/apt/lists/*
COPY postgres-entrypoint.sh /usr/local/bin/pg-entrypoint
RUN chmod 0755 /usr/local/bin/pg-entrypoint && mkdir -p /var/lib/f5vi-pg && chown postgres:postgres /var/lib/f5vi-pg
USER postgres
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/pg-entrypoint"]
