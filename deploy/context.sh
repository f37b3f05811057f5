#!/usr/bin/env bash
# What deploy/Dockerfile copies from dist/: torch's CPU wheel (dist/wheels), the fovea wheel (dist/fovea, by
# deploy/wheel.sh) and, where this host reaches PyPI through a TLS-inspecting proxy, that proxy's CA (dist/ca).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
TORCH=torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl  # its sha256 is in deploy/requirements.lock

# torch: the CPU wheel. PyPI's torch for Linux is the CUDA build (gigabytes of nvidia-* wheels the services never
# use: their CNNs run in Triton); PyTorch's CPU index is not reachable from every build host, so the wheel comes
# from a local copy when there is one (TORCH_WHEEL, /opt/wheels, a local mirror), else from that index.
mkdir -p dist/wheels dist/ca
if [ ! -f "dist/wheels/$TORCH" ]; then
  src=${TORCH_WHEEL:-$(ls /opt/wheels/"$TORCH" /opt/pypi*/files/"$TORCH" 2>/dev/null | head -1 || true)}
  if [ -n "$src" ]; then
    cp "$src" dist/wheels/
  else
    "$PYTHON" -m pip download -q --no-deps --index-url https://download.pytorch.org/whl/cpu \
      "torch==2.13.0+cpu" --python-version 3.11 --platform manylinux_2_28_x86_64 --only-binary :all: -d dist/wheels
  fi
fi
# A TLS-inspecting proxy between this host and PyPI: its CA bundle, for pip in the build only (the deps stage,
# not shipped). BUILD_CA_BUNDLE=none to leave it out.
rm -f dist/ca/ca.pem
ca=${BUILD_CA_BUNDLE:-${PIP_CERT:-}}
if [ -n "$ca" ] && [ "$ca" != none ]; then cp "$ca" dist/ca/ca.pem; fi
FOVEA_SRC=${FOVEA_SRC:-src} PYTHON=$PYTHON deploy/wheel.sh
