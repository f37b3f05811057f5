#!/usr/bin/env bash
# make images: the base image (once), the build context (deploy/context.sh), then fovea/services,
# fovea/triton:<v>-cpu and fovea/redis; prints each build's seconds and the images' sizes. The weights must be
# built first (make models: the Makefile does it).
set -euo pipefail
cd "$(dirname "$0")/.."

DOCKER=${DOCKER:-docker}
PYTHON=${PYTHON:-.venv/bin/python}
VERSION=${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)}
BASE_IMAGE=${BASE_IMAGE:-fovea-base:bookworm}
export DOCKER BASE_IMAGE PYTHON

t0=$(date +%s)
deploy/base/build.sh

deploy/context.sh
ls model_repository/*/1/*.onnx >/dev/null 2>&1 || { echo "no weights in model_repository: make models" >&2; exit 1; }

build() {  # build NAME DOCKER-BUILD-ARGS...
  local name=$1 start
  shift
  start=$(date +%s)
  if ! $DOCKER build --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "FOVEA_EXTRAS=${FOVEA_EXTRAS:-server}" "$@" . >"dist/build-$name.log" 2>&1; then
    tail -30 "dist/build-$name.log" >&2
    echo "image $name: build failed (dist/build-$name.log)" >&2
    exit 1
  fi
  echo "image $name: $(($(date +%s) - start)) s"
}
build services -f deploy/Dockerfile --target services -t "fovea/services:$VERSION"
build triton-cpu -f deploy/Dockerfile --target triton -t "fovea/triton:$VERSION-cpu"
build redis -f deploy/redis/Dockerfile -t fovea/redis:7.0-bookworm
echo "images built in $(($(date +%s) - t0)) s:"
$DOCKER image ls --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' \
  | grep -E "fovea/(services:$VERSION|triton:$VERSION-cpu|redis:7.0-bookworm) |$BASE_IMAGE "
