#!/usr/bin/env bash
# A local Debian base image with Python 3.11 for the Dockerfiles' BASE argument, built where no image registry
# can be reached: debootstrap takes Debian from the mirror apt uses, `docker import` makes it an image.
#   deploy/local-base.sh [IMAGE]      (default sneaky-base:bookworm; nothing is done if it exists)
set -euo pipefail
IMAGE="${1:-sneaky-base:bookworm}"
MIRROR="${MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE exists"; exit 0
fi
command -v debootstrap >/dev/null || { echo "local-base: install debootstrap (apt-get install debootstrap)" >&2; exit 2; }
ROOT="$(mktemp -d /tmp/sneaky-rootfs.XXXXXX)"
trap 'rm -rf "$ROOT"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates,libjpeg-turbo-progs \
  bookworm "$ROOT" "$MIRROR" >/dev/null
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
# apt inside the image uses the same mirror
echo "deb $MIRROR bookworm main" > "$ROOT/etc/apt/sources.list"
tar -C "$ROOT" -c . | docker import -c 'ENV LANG=C.UTF-8' - "$IMAGE" >/dev/null
docker image ls "$IMAGE"
