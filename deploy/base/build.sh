#!/usr/bin/env bash
# fovea-base:bookworm: Debian 12 (minbase) from Debian's own packages, for hosts that cannot pull from an image
# hub. debootstrap (about 35 s, 200 MB), then `docker import`. Skipped when the image is already there (FORCE=1
# rebuilds it). The Dockerfiles take it as BASE_IMAGE; any Debian 12 image (debian:bookworm-slim) works as well.
set -euo pipefail

IMAGE=${BASE_IMAGE:-fovea-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DOCKER=${DOCKER:-docker}

if [ -z "${FORCE:-}" ] && $DOCKER image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "base image $IMAGE: present"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "need debootstrap (apt-get install -y debootstrap) and root" >&2; exit 1; }
rootfs=$(mktemp -d /tmp/fovea-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
start=$(date +%s)
debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"
# Security updates and point releases too: apt-get upgrade in the images then picks them up.
cat >"$rootfs/etc/apt/sources.list" <<LIST
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
LIST
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | $DOCKER import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
  -c 'CMD ["bash"]' - "$IMAGE" >/dev/null
echo "base image $IMAGE: built in $(($(date +%s) - start)) s ($($DOCKER image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
