# f5vi — every target sets up what it needs itself (.venv, system packages, demo model).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test lint openapi bench bench-load sysdeps clean docker-smoke compose-smoke

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# espeak-ng + sox make the synthetic Vietnamese test voices; chromium renders /docs in a test;
# postgresql is the server the shared-store tests start themselves (initdb in a temp dir, tests/pg_server.py);
# libsndfile comes with the soundfile wheel.
sysdeps:
	@command -v espeak-ng >/dev/null && command -v sox >/dev/null && command -v chromium >/dev/null \
	  && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng sox chromium \
	    postgresql >/dev/null; }

serve: $(STAMP)
	$(PY) -m f5vi serve --host $(HOST) --port $(PORT) --demo-fallback

lint: $(STAMP)
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench
	$(PY) -m mypy

test: $(STAMP) sysdeps lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

openapi: $(STAMP)
	$(PY) -m f5vi export-openapi --out openapi.json

bench: $(STAMP)
	$(PY) -m bench.run $(BENCH_ARGS)

# Builds the image and tries both modes with the demo model (docs/deployment.md). Not part of `test`:
# the first build downloads torch (~20-40 min). BASE_IMAGE: the Dockerfile's CUDA_IMAGE (default: its own).
docker-smoke:
	bash docker/smoke.sh $(BASE_IMAGE)

# docker/compose.yaml: two instances on PostgreSQL + an S3 store (moto) behind HAProxy; one is killed
# mid-job and the other finishes it (docs/deployment.md). Not part of `test` (builds images).
compose-smoke:
	bash docker/compose-smoke.sh $(BASE_IMAGE)

# the real server under N concurrent clients, batching across requests on vs off (bench/load.py)
bench-load: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m bench.load $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
