#!/usr/bin/env bash
# ONE prepared run for a lent GPU machine (bare image: Python 3.12, torch 2.11, no package index), within
# BUDGET seconds (default 450: under 8 minutes with the wheel install), everything written under $OUT.
#
#   here, once:      bash bench/device_wheels.sh                  (downloads .whl/, ~50 MB)
#   device tool:     run(command="bash bench/device_run.sh", carry=[".whl"], timeout_s=540)
#   CPU path here:   DEVICE=cpu CONFIG=tiny NFE=4 LEVELS=1,2 REQUESTS=1 BUDGET=300 SERVER_THREADS=1 \
#                    COMPILE=1 SHAPES=1x256,4x256 bash bench/device_run.sh
#
# Steps, each under its own timeout (capped by what is left of BUDGET; a step that no longer fits is
# skipped and says so), in order of what the figures are needed for:
#   1. install the wheels of .whl/ into /tmp/site (skipped where the Python already imports f5vi's needs)
#   2. environment: nvidia-smi, torch, CUDA device                                  -> env.txt
#   3. the CUDA-only tests (`pytest -m cuda` over the files that carry the marker)   -> tests.log
#   4. python -m bench.run --config $CONFIG --device $DEVICE --nfe $NFE --texts $TEXTS
#   5. python -m bench.load at $LEVELS clients, batching across requests off and on (server restarted
#      per run: see bench/load.py)
#   6. COMPILE=1 (default on CUDA): python -m bench.step_graphs: one ODE step eager vs CUDA graph vs
#      torch.compile at bucketed shapes
# What comes back ($OUT, at most 8 files): summary.txt, env.txt, RESULTS-device.md (the markdown of
# steps 4 and 5), bench_run.json, bench_load.json, step_graphs.json, logs.tgz (every step's and every
# server's log). A failing step does not stop the others; the exit status is that of the first failure.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/bench/out/device}
DEVICE=${DEVICE:-cuda}
CONFIG=${CONFIG:-base}
NFE=${NFE:-32}
LOAD_NFE=${LOAD_NFE:-$NFE}
TEXTS=${TEXTS:-all}
LEVELS=${LEVELS:-1,4,16}
REQUESTS=${REQUESTS:-2}
BUDGET=${BUDGET:-450}
SHAPES=${SHAPES:-1x1024,4x1024,16x1024,1x2048,8x2048}
if [ "${DEVICE%%:*}" = cuda ]; then COMPILE=${COMPILE:-1}; else COMPILE=${COMPILE:-0}; fi
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
mkdir -p "$OUT"
LOGS=$(mktemp -d /tmp/f5vi-device-logs.XXXXXX)
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
STATUS=0
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

note() { echo "[device_run +${SECONDS}s] $*" | tee -a "$SUMMARY"; }

# step NAME CAP_SECONDS COMMAND...: runs COMMAND under min(CAP, what is left) seconds, log in $LOGS/NAME.log
step() {
  local name=$1 cap=$2 left
  shift 2
  left=$((BUDGET - SECONDS - 15)) # 15 s kept for packing the logs
  if [ "$left" -lt 30 ]; then
    note "SKIPPED $name: only ${left}s of the ${BUDGET}s budget left"
    return 0
  fi
  [ "$cap" -gt "$left" ] && cap=$left
  note "START $name (timeout ${cap}s): $*"
  local started=$SECONDS rc=0
  timeout -k 10 "$cap" "$@" >"$LOGS/$name.log" 2>&1 || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    note "TIMEOUT $name after $((SECONDS - started))s (rc $rc); last lines:"
  else
    note "END $name rc=$rc in $((SECONDS - started))s; last lines:"
  fi
  tail -n 6 "$LOGS/$name.log" | sed 's/^/    /' | tee -a "$SUMMARY"
  if [ "$rc" -ne 0 ] && [ "$STATUS" -eq 0 ]; then STATUS=$rc; fi
  return 0
}

# 1. wheels
if "$PYTHON" -c "import fastapi, uvicorn, websockets, pydantic_settings, soundfile, rjieba" 2>/dev/null; then
  note "wheels: $PYTHON already has f5vi's dependencies; nothing installed"
elif [ -d .whl ]; then
  note "wheels: installing $(ls .whl/*.whl | wc -l) from .whl/ into /tmp/site"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl >"$LOGS/install.log" 2>&1 || { note "wheel install failed"; tail -n 20 "$LOGS/install.log"; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
else
  note "wheels: .whl/ is missing (run bench/device_wheels.sh here and carry .whl)"
fi
export PYTHONPATH=$ROOT/src:$ROOT${PYTHONPATH:+:$PYTHONPATH}

# 2. environment
{
  date -u
  nvidia-smi 2>&1 || echo "no nvidia-smi"
  "$PYTHON" - <<'EOF'
import os, platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("cpu cores", os.cpu_count(), "load", os.getloadavg())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu", p.name, round(p.total_memory / 2**30, 1), "GiB", "sm", f"{p.major}.{p.minor}", p.multi_processor_count, "SMs")
import f5vi.api.app, f5vi.engine.synthesizer  # the server imports: fails here, not in step 5
print("f5vi imports ok")
EOF
} >"$OUT/env.txt" 2>&1
note "environment: $(grep -E '^(python|gpu|f5vi)' "$OUT/env.txt" | tr '\n' ';')"

# 3. CUDA-only tests
mapfile -t cuda_tests < <(grep -rl --include="test_*.py" "pytest.mark.cuda" tests)
step tests 120 "$PYTHON" -m pytest -q -m cuda -p no:cacheprovider -rs "${cuda_tests[@]}"

# 4. single-request benchmark
step bench_run 150 "$PYTHON" -m bench.run --config "$CONFIG" --device "$DEVICE" --nfe "$NFE" --texts "$TEXTS" \
  --json-out "$OUT/bench_run.json" --results-md "$OUT/RESULTS-device.md"

# 5. load: batching across requests off vs on
step bench_load 300 "$PYTHON" -m bench.load --config "$CONFIG" --device "$DEVICE" --nfe "$LOAD_NFE" \
  --concurrency "$LEVELS" --requests "$REQUESTS" --batching off,on --start-timeout 120 --request-timeout 240 \
  ${SERVER_THREADS:+--server-threads "$SERVER_THREADS"} --logs-dir "$LOGS/servers" --json-out "$OUT/bench_load.json" --results-md "$OUT/RESULTS-device.md"

# 6. optional: CUDA graphs / torch.compile of one ODE step at bucketed shapes
if [ "$COMPILE" = 1 ]; then
  if [ "${DEVICE%%:*}" = cuda ]; then dtype=float16 compiled=4x1024; else dtype=float32 compiled=; fi
  step step_graphs 150 "$PYTHON" -m bench.step_graphs --config "$CONFIG" --device "$DEVICE" --dtype "$dtype" \
    --shapes "$SHAPES" --compile-shapes "$compiled" --json-out "$OUT/step_graphs.json"
fi

tar -czf "$OUT/logs.tgz" -C "$LOGS" . 2>/dev/null || note "could not pack the logs"
rm -rf "$LOGS"
note "done in ${SECONDS}s, exit status $STATUS"
exit "$STATUS"
