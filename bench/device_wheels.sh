#!/usr/bin/env bash
# Wheels the lent GPU machine lacks for `python -m bench.run` (engine + benchmark) and, with the server
# set below, for `python -m f5vi serve` under `python -m bench.load` (bench/device_run.sh), for its
# Python 3.12. That machine cannot reach any index; its image already has torch 2.11.0, torchaudio,
# numpy, safetensors, pyyaml, huggingface-hub, tqdm, typing-extensions, httpx, httpcore, h11, idna,
# certifi, click, annotated-doc, prometheus-client, pytest and pytest-timeout
# (/work/.library/device/KINDS.md). Versions are the ones this repository's .venv runs.
# Usage, from the repository root, before a session's first device call:  bash bench/device_wheels.sh
# (writes .whl/, which .gitignore keeps out of git; SERVER=0 skips the server set), then, on the device
# (carry [".whl"]):  bash bench/device_run.sh   -- or by hand:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=$PWD/src:$PWD:/tmp/site && python3 -m bench.run --config base --device cuda ...
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
# g2p-hamster (4.9 MB) is left out: it is only vinorm's fallback (imported lazily; a vinorm failure then
# reads the text with our rules alone, with a warning), and with it the wheels and the working tree
# (12 MB) come within 0.1 MB of the device tool's 64 MiB limit. HAMSTER=1 adds it.
engine=(
  pydantic==2.14.4 pydantic-core==2.50.5 pydantic-settings==2.16.3 annotated-types==0.8.0
  typing-inspection==0.4.5 python-dotenv==1.2.4 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12
  rjieba==0.2.2 vinorm==2.0.7
)
# what `f5vi serve` imports beyond the engine (checked by importing the app and running one request of
# every kind: fastapi 0.165 imports opentelemetry-api; uvicorn serves WebSockets through websockets,
# which the benchmark's WebSocket client uses too). The image's anyio (4.x) satisfies starlette and
# fastapi; anyio 4.16 would want a newer typing-extensions than the image may have. Not the RunPod SDK:
# the device script loads the HTTP server only.
server=(
  fastapi==0.165.0 starlette==1.10.0 fastapi-offline==1.7.7 uvicorn==0.54.0 websockets==17.4
  python-multipart==0.0.34 opentelemetry-api==1.45.2
)
wanted=("${engine[@]}")
if [ "${SERVER:-1}" = 1 ]; then wanted+=("${server[@]}"); fi
if [ "${HAMSTER:-0}" = 1 ]; then wanted+=(g2p-hamster==0.2.8); fi
rm -rf .whl && mkdir -p .whl
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "${wanted[@]}"
ls -l .whl
du -sh .whl
