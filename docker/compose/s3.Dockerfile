# An S3-compatible store for docker/compose.yaml: moto's server mode (PyPI), the same implementation the
# tests use. It keeps objects in memory: fine for a smoke test, not for production (use S3, R2, MinIO...).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/moto && /opt/moto/bin/pip install 'moto[server]>=5.2'
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["sh", "-c", "exec /opt/moto/bin/moto_server -H 0.0.0.0 -p ${S3_PORT:-5000}"]
