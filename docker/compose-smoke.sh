#!/usr/bin/env bash
# Build docker/compose.yaml's images and try the cluster: two f5vi instances, PostgreSQL, an S3 store (moto)
# and HAProxy. A job is submitted through the balancer, its progress read through it; the instance running
# it is killed (SIGKILL) mid-job; the other instance takes the job over when the lease expires and finishes
# it; the download through the balancer comes from the bucket and decodes as audio.
#
#   docker/compose-smoke.sh [BASE_IMAGE]     # `make compose-smoke [BASE_IMAGE=...]`
#
# BASE_IMAGE: a Debian 12 image every image here is built on (default debian:bookworm-slim). Needs docker
# and docker compose (the plugin or docker-compose). Exit status: the number of failed checks (0: all
# passed), or 100 if a build failed.
set -uo pipefail

cd "$(dirname "$0")/.."
export BASE_IMAGE=${1:-${BASE_IMAGE:-debian:bookworm-slim}}
export F5VI_IMAGE=${F5VI_IMAGE:-f5vi:compose}
log_dir=$(mktemp -d "${TMPDIR:-/tmp}/f5vi-compose.XXXXXX")
failed=0
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
compose+=(-f docker/compose.yaml -p f5vi-smoke)
[ -z "${DOCKER_BUILDKIT:-}" ] && ! docker buildx version >/dev/null 2>&1 && export DOCKER_BUILDKIT=0

cleanup() {
  "${compose[@]}" logs --no-color >"$log_dir/compose.log" 2>&1
  "${compose[@]}" down -v >/dev/null 2>&1
  echo "logs: $log_dir"
}
trap cleanup EXIT

build() {  # build TAG DOCKERFILE CONTEXT [build-arg]
  echo "building $1 (base: $BASE_IMAGE); log: $log_dir/build-${1%%:*}.log"
  if ! docker build --network host -t "$1" -f "$2" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
      --build-arg "CUDA_IMAGE=$BASE_IMAGE" "$3" >"$log_dir/build-${1%%:*}.log" 2>&1; then
    tail -n 30 "$log_dir/build-${1%%:*}.log"
    echo "FAIL  docker build $1"
    exit 100
  fi
}
build f5vi-postgres:compose docker/compose/postgres.Dockerfile docker/compose
build f5vi-s3:compose docker/compose/s3.Dockerfile docker/compose
build f5vi-lb:compose docker/compose/lb.Dockerfile docker/compose
build "$F5VI_IMAGE" docker/Dockerfile .

check() {  # check NAME COMMAND...
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    printf 'PASS  %s%s\n' "$name" "${out:+: $(printf '%s' "$out" | tail -n 1)}"
  else
    printf 'FAIL  %s\n%s\n' "$name" "$(printf '%s' "$out" | tail -n 30 | sed 's/^/      /')"
    failed=$((failed + 1))
  fi
}
in_image() {  # python in a throw-away f5vi container on the host network
  docker run --rm -i --network host --entrypoint python -v "$PWD/docker/compose_check.py:/check.py:ro" \
    "$F5VI_IMAGE" /check.py "$@"
}

"${compose[@]}" up -d --no-build postgres s3
bucket() {
  for _ in $(seq 60); do
    "${compose[@]}" exec -T s3 /opt/moto/bin/python -c "
import boto3
boto3.client('s3', endpoint_url='http://127.0.0.1:15000', aws_access_key_id='compose-access',
             aws_secret_access_key='compose-secret', region_name='us-east-1').create_bucket(Bucket='f5vi-results')
" 2>/dev/null && { echo "bucket f5vi-results"; return 0; }
    sleep 1
  done
  return 1
}
check "S3 store up, bucket made" bucket
check "PostgreSQL up" bash -c "for _ in \$(seq 60); do ${compose[*]} exec -T postgres sh -c 'pg_isready -h 127.0.0.1 -p 15432 2>/dev/null || /usr/lib/postgresql/*/bin/pg_isready -h 127.0.0.1 -p 15432' && exit 0; sleep 1; done; exit 1"
"${compose[@]}" up -d --no-build f5vi-a f5vi-b lb

submitted=$(in_image submit 2>"$log_dir/submit.err")
echo "$submitted" | grep -q '^job_' && echo "PASS  job submitted and running through the balancer: $submitted" \
  || { echo "FAIL  submit through the balancer: $(tail -n 5 "$log_dir/submit.err")"; exit $((failed + 1)); }
read -r job_id runner <<<"$submitted"
check "kill -9 of f5vi-$runner mid-job" "${compose[@]}" kill -s SIGKILL "f5vi-$runner"
check "the other instance finishes the job; download through the balancer from the bucket" in_image finish "$job_id"
exit "$failed"
