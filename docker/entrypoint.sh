#!/bin/sh
# f5vi container entrypoint: pick the mode, point the loader at baked weights, then exec Python
# (exec: Python becomes tini's child and receives SIGTERM directly).
#
#   entrypoint.sh [auto|http|runpod] [extra args for the chosen program]
#
# auto (default): RunPod mode when the RunPod serverless environment is present
# (RUNPOD_WEBHOOK_GET_JOB is set by RunPod for serverless workers), HTTP otherwise.
# F5VI_MODE=http|runpod overrides auto.
set -eu

mode="${1:-auto}"
case "$mode" in
  auto|http|runpod|serve) [ "$#" -gt 0 ] && shift ;;
  *) mode=auto ;;  # first argument is not a mode: pass everything through
esac
[ "$mode" = "serve" ] && mode=http
if [ "$mode" = "auto" ]; then
  mode="${F5VI_MODE:-}"
  if [ -z "$mode" ]; then
    if [ -n "${RUNPOD_WEBHOOK_GET_JOB:-}" ]; then mode=runpod; else mode=http; fi
  fi
fi

# Weights baked at build time (BAKE_WEIGHTS=1) live here; an explicit F5VI_* setting wins.
BAKED="${F5VI_BAKED_MODELS_DIR:-/opt/f5vi/models}"
if [ -z "${F5VI_MODEL:-}" ] && [ -f "$BAKED/f5tts/model_last.pt" ]; then export F5VI_MODEL="$BAKED/f5tts"; fi
if [ -z "${F5VI_VOCODER:-}" ] && [ -f "$BAKED/vocos/config.yaml" ]; then export F5VI_VOCODER="$BAKED/vocos"; fi
if [ -z "${F5VI_ASR_MODEL:-}" ] && [ -f "$BAKED/asr/config.json" ]; then export F5VI_ASR_MODEL="$BAKED/asr"; fi
if [ -n "${F5VI_MODEL:-}" ] && [ -d "${F5VI_MODEL}" ] && [ -z "${HF_HUB_OFFLINE:-}" ]; then
  # Everything is local: do not let a hub lookup stall start-up.
  export HF_HUB_OFFLINE=1
fi

# A RunPod network volume keeps a worker's job table and outputs across restarts (idempotency).
# One directory per worker id: the SQLite job table takes an exclusive lock and must not be shared
# by concurrently running workers (several workers mount the same network volume).
VOLUME="${F5VI_RUNPOD_VOLUME:-/runpod-volume}"
if [ -d "$VOLUME" ] && [ -w "$VOLUME" ]; then
  worker_dir="$VOLUME/f5vi/workers/${RUNPOD_POD_ID:-local}"
  : "${F5VI_DATA_DIR:=$worker_dir/data}"
  : "${F5VI_OUTPUT_DIR:=$worker_dir/output}"
  export F5VI_DATA_DIR F5VI_OUTPUT_DIR
fi
for dir in "${F5VI_DATA_DIR:-/app/var/data}" "${F5VI_OUTPUT_DIR:-/app/var/output}"; do
  if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
    echo "f5vi: directory $dir is not writable by uid $(id -u); mount it writable or set F5VI_DATA_DIR/F5VI_OUTPUT_DIR" >&2
    exit 78
  fi
done

case "$mode" in
  http)
    exec python -m f5vi serve --host "${F5VI_HOST:-0.0.0.0}" --port "${F5VI_PORT:-8000}" "$@"
    ;;
  runpod)
    exec python -m f5vi.runpod.handler "$@"
    ;;
  *)
    echo "f5vi: unknown mode '$mode' (expected http or runpod)" >&2
    exit 64
    ;;
esac
