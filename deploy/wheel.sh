#!/usr/bin/env bash
# dist/fovea/fovea-<version>-py3-none-any.whl, the wheel the images install: built from a clean copy of the
# sources (an in-tree build keeps build/lib, where a deleted module would live on), with fixed timestamps
# (SOURCE_DATE_EPOCH) so the same sources give the same bytes and the image layer that installs it stays cached.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
FOVEA_SRC=${FOVEA_SRC:-src}  # the package folder: src after the move to src/fovea
OUT=dist/fovea

tmp=$(mktemp -d /tmp/fovea-wheel.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for file in pyproject.toml setup.py README.md; do
  if [ -e "$file" ]; then cp "$file" "$tmp/"; fi
done
(tar -C . --exclude=__pycache__ --exclude='*.pyc' -c "$FOVEA_SRC") | tar -C "$tmp" -x
if ! SOURCE_DATE_EPOCH=315532800 "$PYTHON" -m pip wheel -q --no-deps --no-build-isolation -w "$tmp/dist" "$tmp" \
  >"$tmp/pip.log" 2>&1; then
  cat "$tmp/pip.log" >&2
  exit 1
fi
wheel=$(ls "$tmp"/dist/fovea-*.whl)
mkdir -p "$OUT"
rm -f "$OUT"/fovea-*.whl
cp "$wheel" "$OUT/"
echo "$OUT/$(basename "$wheel") sha256 $(sha256sum "$wheel" | cut -c1-16)..."
