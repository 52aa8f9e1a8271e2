#!/usr/bin/env bash
# Build the f5vi image and try it as a user would, with no weights: demo fallback, both modes.
#
#   docker/smoke.sh [BASE_IMAGE]          # `make docker-smoke [BASE_IMAGE=...]`
#
# BASE_IMAGE: the Dockerfile's CUDA_IMAGE (default: the Dockerfile's own, the CUDA runtime image);
# any Debian/Ubuntu with python3.11, python3.11-venv and tini works for a CPU-only try.
# F5VI_SMOKE_TAG names the image (default f5vi:smoke); F5VI_SMOKE_BUILD_ARGS adds `docker build`
# options (e.g. --no-cache to time a cold build). Containers use host networking and free
# ports; only docker is needed on the host (the HTTP client and the audio check run in the image).
# Checks, in order: the image imports its app; HTTP mode with --demo-fallback runs as the non-root
# user, /health is 200, a /tts job completes and its download decodes as audio; RunPod mode answers
# test_input.json; the image holds no tests/, bench/ or .git. Exit status: the number of failed checks
# (0: all passed), or 100 if the build itself failed.
set -uo pipefail

cd "$(dirname "$0")/.."
base=${1:-}
tag=${F5VI_SMOKE_TAG:-f5vi:smoke}
log_dir=$(mktemp -d "${TMPDIR:-/tmp}/f5vi-smoke.XXXXXX")
failed=0
container=""

# BuildKit without buildx fails at once; the classic builder still works then.
if [ -z "${DOCKER_BUILDKIT:-}" ] && ! docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=0
fi

cleanup() { [ -n "$container" ] && docker rm -f "$container" >/dev/null 2>&1; }
trap cleanup EXIT

check() {  # check NAME COMMAND...: run, print PASS/FAIL with the command's last words
  local name=$1
  shift
  local out
  if out=$("$@" 2>&1); then
    printf 'PASS  %s%s\n' "$name" "${out:+: $(printf '%s' "$out" | tail -n 1)}"
  else
    printf 'FAIL  %s\n%s\n' "$name" "$(printf '%s' "$out" | tail -n 30 | sed 's/^/      /')"
    failed=$((failed + 1))
  fi
}

free_port() {  # a port nothing listens on (bash's /dev/tcp: no python needed on the host)
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

in_image() {  # run python in the HTTP container (its own python, soundfile and urllib)
  docker exec -i "$container" python - "$@"
}

# ------------------------------------------------------------------------------------------ build
build_args=(--network host -f docker/Dockerfile -t "$tag")
[ -n "$base" ] && build_args+=(--build-arg "CUDA_IMAGE=$base")
# shellcheck disable=SC2206  # word splitting wanted: a list of options
[ -n "${F5VI_SMOKE_BUILD_ARGS:-}" ] && build_args+=(${F5VI_SMOKE_BUILD_ARGS})
echo "building $tag (base: ${base:-the Dockerfile default}${F5VI_SMOKE_BUILD_ARGS:+, ${F5VI_SMOKE_BUILD_ARGS}}); log: $log_dir/build.log"
started=$(date +%s)
if ! docker build "${build_args[@]}" . >"$log_dir/build.log" 2>&1; then
  tail -n 40 "$log_dir/build.log"
  echo "FAIL  docker build (log: $log_dir/build.log)"
  exit 100
fi
build_seconds=$(($(date +%s) - started))
size_bytes=$(docker image inspect -f '{{.Size}}' "$tag")
echo "build time: ${build_seconds} s"
echo "image size: $(awk -v b="$size_bytes" 'BEGIN { printf "%.2f GB (%.0f bytes)", b / 1e9, b }')"

# ----------------------------------------------------------------------------------- checks
imports_app() {
  docker run --rm --entrypoint sh "$tag" -c '
    python -c "import f5vi, f5vi.api.app, f5vi.runpod.handler" && f5vi --help >/dev/null &&
    python -c "import f5vi; print(\"f5vi\", f5vi.__version__, \"imports its app and worker; f5vi --help ok\")"'
}

runs_as_non_root() {  # the container's user and the server process (tini's child) itself
  docker exec "$container" sh -c '
    for p in /proc/[0-9]*; do
      case "$(tr "\0" " " <"$p/cmdline" 2>/dev/null)" in
        "python -m f5vi serve "*) server=${p#/proc/} ;;
      esac
    done
    [ -n "${server:-}" ] || { echo "no f5vi server process"; exit 1; }
    server_uid=$(awk "/^Uid:/ {print \$2}" "/proc/$server/status")
    echo "user $(id -un) (uid $(id -u)); server process $server runs as uid $server_uid"
    [ "$(id -u)" != 0 ] && [ "$server_uid" != 0 ]'
}

health_is_200() {
  in_image "$http_port" <<'PY'
import json, sys, time, urllib.error, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/health"
deadline = time.monotonic() + 300
while True:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
            print(f"{r.status} status={body['status']} is_demo={body['is_demo']} model={body['model']['model']}")
            sys.exit(0 if body["is_demo"] else 1)
    except urllib.error.HTTPError as e:
        body = json.load(e)
        if body.get("status") == "unhealthy" or time.monotonic() > deadline:
            sys.exit(f"{e.code} {body}")
    except OSError as e:
        if time.monotonic() > deadline:
            sys.exit(f"no answer: {e}")
    time.sleep(1)
PY
}

tts_job_completes_and_decodes() {
  in_image "$http_port" <<'PY'
import io, json, sys, time, urllib.request
import numpy as np, soundfile as sf
base = f"http://127.0.0.1:{sys.argv[1]}"
def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.load(r)
status, job = call("POST", "/tts", {"text": "Xin chào, hôm nay trời đẹp quá.", "ref_name": "vi_north_male"})
assert status == 202, (status, job)
deadline = time.monotonic() + 600
while True:
    view = call("GET", f"/tts/progress/{job['job_id']}")[1]
    if view["state"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
        break
    time.sleep(1)
assert view["state"] == "succeeded", view
with urllib.request.urlopen(view["result"]["download_url"], timeout=30) as r:
    payload = r.read()
audio, rate = sf.read(io.BytesIO(payload))
assert rate == 24000 and audio.size > rate // 2 and np.isfinite(audio).all(), (rate, audio.shape)
print(f"job {job['job_id']} succeeded in {view['result']['processing_time_seconds']:.1f} s; "
      f"download {len(payload)} bytes decodes: {audio.shape[0] / rate:.2f} s at {rate} Hz")
PY
}

runpod_answers_test_input() {  # $1: the worker's exit status, $2: its log
  grep -q "DEMO MODEL LOADED" "$2" || { echo "no DEMO banner in the log"; return 1; }
  grep -q "Job local_test completed successfully" "$2" || { tail -n 20 "$2" | cut -c1-300; return 1; }
  grep -q "'demo': True" "$2" || { echo "the job output does not say demo"; return 1; }
  [ "$1" = 0 ] || { echo "exit status $1"; return 1; }
  echo "exit 0; job output: status completed, demo True, $(grep -o "'duration_seconds': [0-9.]*" "$2" | head -n 1)"
}

holds_nothing_extra() {
  docker run --rm --entrypoint sh "$tag" -c '
    site=$(python -c "import f5vi, os; print(os.path.dirname(os.path.dirname(f5vi.__file__)))")
    found=$(find / -xdev \( -name .git -o -path /app/tests -o -path /app/bench -o -path /build \
              -o -path "$site/tests" -o -path "$site/bench" -o -path "$site/f5vi/tests" \) -print 2>/dev/null)
    [ -z "$found" ] || { echo "found: $found"; exit 1; }
    if grep -v -E "^(f5vi/|f5vi-[^/]*\.dist-info/|\.\./\.\./\.\./bin/f5vi,)" "$site"/f5vi-*.dist-info/RECORD; then
      echo "the f5vi wheel installed files outside its package"; exit 1
    fi
    echo "no .git, tests/, bench/ or /build; /app holds: $(ls -A /app | tr "\n" " ")"'
}

# ------------------------------------------------------------------------------- run them
check "1. the image imports its app (f5vi.api.app, f5vi.runpod.handler), f5vi --help" imports_app

# No weights in the image and the hub offline: the configured model cannot load, the demo does.
http_port=$(free_port)
container=$(docker run -d --network host -e HF_HUB_OFFLINE=1 -e "F5VI_PORT=$http_port" \
  -e F5VI_NFE_STEP=8 "$tag" http --demo-fallback)
echo "HTTP mode: container ${container:0:12} on port $http_port"
check "2. HTTP mode (--demo-fallback) runs as the non-root user" runs_as_non_root
check "3. /health is 200 with the demo model" health_is_200
check "4. a /tts job completes and its download decodes as audio" tts_job_completes_and_decodes
docker logs "$container" >"$log_dir/http.log" 2>&1
cleanup
container=""

runpod_port=$(free_port)
docker run --rm --network host -e HF_HUB_OFFLINE=1 -e F5VI_DEMO_FALLBACK=1 -e "F5VI_PORT=$runpod_port" \
  -e F5VI_NFE_STEP=8 "$tag" runpod --test_input "$(cat test_input.json)" >"$log_dir/runpod.log" 2>&1
runpod_rc=$?
check "5. RunPod mode answers test_input.json (F5VI_DEMO_FALLBACK=1)" \
  runpod_answers_test_input "$runpod_rc" "$log_dir/runpod.log"

check "6. the image holds no tests/, bench/, .git" holds_nothing_extra

echo
echo "build time: ${build_seconds} s; image size: $(awk -v b="$size_bytes" 'BEGIN { printf "%.2f GB", b / 1e9 }'); logs: $log_dir"
if [ "$failed" -eq 0 ]; then echo "all checks passed"; else echo "$failed check(s) FAILED"; fi
exit "$failed"
