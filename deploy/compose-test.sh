#!/usr/bin/env bash
# make compose-test: the CPU profile of docker-compose.yml end to end. Fresh secrets in .data/compose-test (an API
# key, the internal token, a Redis password), `up`, wait for every health check, `fovea demo` from the host venv
# against the composed gateway, then `down -v` (also on failure). Prints last:
#   compose-test: N services healthy, demo ok in S s
set -euo pipefail
cd "$(dirname "$0")/.."

COMPOSE=${COMPOSE:-docker-compose}
DOCKER=${DOCKER:-docker}
PROJECT=${COMPOSE_PROJECT:-fovea-test}
FOVEA=${FOVEA:-.venv/bin/fovea}
PYTHON=${PYTHON:-.venv/bin/python}
TIMEOUT_S=${COMPOSE_TEST_TIMEOUT_S:-600}  # to healthy; Triton alone took 100 s to load every model on 2 busy cores
GATEWAY=127.0.0.1:51051                   # docker-compose.yml: FOVEA_GATEWAY_PORT

dir=.data/compose-test
rm -rf "$dir"
mkdir -p "$dir/secrets"
chmod 0700 "$dir" "$dir/secrets"
# The secrets, as `fovea up` makes its own: readable by uid 10001 in the containers (0644), kept from other users
# on this host by the 0700 folder.
"$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$dir/secrets/internal-token"
key=$("$FOVEA" keys create --name compose-test --scopes '*' --file "$dir/secrets/api-keys.json")
chmod 0644 "$dir/secrets/internal-token" "$dir/secrets/api-keys.json"
FOVEA_SECRETS_DIR=$(pwd)/$dir/secrets
FOVEA_REDIS_PASSWORD=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(32))')
export FOVEA_SECRETS_DIR FOVEA_REDIS_PASSWORD

compose=("$COMPOSE" -p "$PROJECT" -f docker-compose.yml --profile cpu)
logs() {
  "${compose[@]}" ps >&2 || true
  for c in $("${compose[@]}" ps -q 2>/dev/null); do
    echo "--- $($DOCKER inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c")" >&2
    $DOCKER logs --tail 15 "$c" 2>&1 | sed 's/^/    /' >&2
  done
}
cleanup() {
  "${compose[@]}" down -v --remove-orphans >"$dir/down.log" 2>&1 || cat "$dir/down.log" >&2
}
trap cleanup EXIT

start=$(date +%s)
# up returns once the gateway's dependencies are healthy and every container is started
if ! timeout "$TIMEOUT_S" "${compose[@]}" up -d --no-build >"$dir/up.log" 2>&1; then
  cat "$dir/up.log" >&2
  logs
  echo "compose-test: docker-compose up failed" >&2
  exit 1
fi
while :; do
  ids=$("${compose[@]}" ps -q)
  states=$($DOCKER inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $ids)
  total=$(echo "$states" | wc -l)
  healthy=$(echo "$states" | grep -c ' running healthy$' || true)
  if [ "$healthy" -eq "$total" ]; then
    break
  fi
  if echo "$states" | grep -qE ' (exited|dead|restarting) | unhealthy$'; then
    echo "$states" >&2
    logs
    echo "compose-test: a container stopped or is unhealthy" >&2
    exit 1
  fi
  if [ $(($(date +%s) - start)) -gt "$TIMEOUT_S" ]; then
    echo "$states" >&2
    logs
    echo "compose-test: not healthy after $TIMEOUT_S s" >&2
    exit 1
  fi
  sleep 2
done
echo "compose-test: $healthy containers healthy $(($(date +%s) - start)) s after up:"
$DOCKER stats --no-stream --format '  {{.Name}}  {{.MemUsage}}' $ids | sed 's/ \/ .*//'

demo_start=$(date +%s%N)
if ! FOVEA_GATEWAY=$GATEWAY FOVEA_API_KEY=$key timeout 900 "$FOVEA" demo >"$dir/demo.log" 2>&1; then
  cat "$dir/demo.log" >&2
  logs
  echo "compose-test: fovea demo failed" >&2
  exit 1
fi
demo_ms=$((($(date +%s%N) - demo_start) / 1000000))
# every capability answered (run_demo passes capabilities that are not built; here all four must be)
for capability in detection classify faces style; do
  grep -q "^== $capability\$" "$dir/demo.log" || { cat "$dir/demo.log" >&2; echo "compose-test: no $capability answer" >&2; exit 1; }
done
grep -q '"state": "SUCCEEDED"' "$dir/demo.log" || { cat "$dir/demo.log" >&2; echo "compose-test: the style job did not succeed" >&2; exit 1; }
sed 's/^/  /' "$dir/demo.log" | head -60
trap - EXIT
cleanup
printf 'compose-test: %d services healthy, demo ok in %d.%d s\n' "$healthy" $((demo_ms / 1000)) $((demo_ms % 1000 / 100))
