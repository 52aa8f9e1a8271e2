#!/usr/bin/env bash
# Wheels the lent GPU machine lacks for `python -m bench.run` (engine + benchmark, no server), for its
# Python 3.12. That machine cannot reach any index; its image already has torch 2.11.0, torchaudio,
# numpy, safetensors, pyyaml, huggingface-hub, tqdm and typing-extensions (/work/.library/device/KINDS.md).
# Versions are the ones this repository's .venv runs. Usage, from the repository root, before a session's
# first device call:  bash bench/device_wheels.sh   (writes .whl/, which .gitignore keeps out of git)
# then, on the device (carry [".whl"]):
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=$PWD/src:$PWD:/tmp/site && python3 -m bench.run --config base --device cuda ...
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
rm -rf .whl && mkdir -p .whl
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl \
  pydantic==2.14.4 pydantic-core==2.50.5 pydantic-settings==2.16.3 annotated-types==0.8.0 \
  typing-inspection==0.4.5 python-dotenv==1.2.4 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 \
  rjieba==0.2.2 vinorm==2.0.7 g2p-hamster==0.2.8
ls -l .whl
du -sh .whl
