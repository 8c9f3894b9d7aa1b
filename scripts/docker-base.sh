#!/usr/bin/env bash
# Make a local stand-in for the Dockerfile's base image, `python:3.11-slim-bookworm`, where no container registry
# can be reached (no Docker engine either: podman with runc builds and runs the images).
#
# The stand-in is Debian bookworm (debootstrap --variant=minbase) with Debian's Python 3.11, laid out like the
# official image: a venv at /usr/local, so `python`, `python3`, `pip` are /usr/local/bin/* on the default PATH and
# `pip install` as root writes to /usr/local/lib/python3.11/site-packages (no "externally managed" refusal).
# It is tagged under the name the Dockerfile's FROM resolves to, so the Dockerfile builds unchanged.
#
#   scripts/docker-base.sh           # make it if missing
#   scripts/docker-base.sh --force   # make it again (the debootstrapped root filesystem is kept)
#
# Needs root, podman, runc and debootstrap (installed with apt-get when missing), Debian's mirror, and PyPI for pip.
set -euo pipefail

BASE=docker.io/library/python:3.11-slim-bookworm
ROOTFS_IMAGE=localhost/bookworm-minbase:latest   # debootstrap, imported
PY_IMAGE=localhost/bookworm-python3.11:latest    # + Debian's python3.11
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

# podman settings and the build's bind mounts for this host (podman-env.sh).
# shellcheck source=scripts/podman-env.sh
source "$(dirname "$0")/podman-env.sh"
trap podman_env_cleanup EXIT

missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "needs root to install: ${missing[*]}" >&2; exit 1; }
  echo "installing ${missing[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi

if [ "${1:-}" != "--force" ] && podman image exists "$BASE"; then
  echo "base stand-in present: $BASE"
  exit 0
fi

# 1. A minimal bookworm root filesystem, imported as an image (about 30 s).
if ! podman image exists "$ROOTFS_IMAGE"; then
  rootfs=$(mktemp -d)
  echo "debootstrap bookworm into a temporary directory"
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - "$ROOTFS_IMAGE" >/dev/null
  rm -rf "$rootfs"
fi

# 2. Debian's Python 3.11 as the official image lays it out (see the header).
context=$(mktemp -d)
cat >"$context/Containerfile" <<EOF
FROM $ROOTFS_IMAGE
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    LANG=C.UTF-8
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      python3.11 python3.11-venv ca-certificates netbase tzdata \\
 && rm -rf /var/lib/apt/lists/* \\
 && python3.11 -m venv /usr/local \\
 && test "\$(command -v python)" = /usr/local/bin/python
CMD ["python3"]
EOF
echo "building $BASE: Debian's python3.11, venv at /usr/local"
podman build --pull=never --network host -t "$PY_IMAGE" -f "$context/Containerfile" "$context"

# 3. A current pip (Debian's ensurepip gives 23.0; pip >= 24.2 reads the system's CA store, like the official
# image's). A separate build, because only now does the image have the CA bundle that BUILD_MOUNTS covers.
cat >"$context/Containerfile" <<EOF
FROM $PY_IMAGE
RUN pip install --no-cache-dir --disable-pip-version-check --cert /etc/ssl/certs/ca-certificates.crt \\
      --upgrade "pip>=24.2" \\
 && python -c "import sys; assert sys.version_info[:2] == (3, 11), sys.version"
EOF
podman build --pull=never --network host "${BUILD_MOUNTS[@]}" -t "$BASE" -f "$context/Containerfile" "$context"
rm -rf "$context"
podman run --rm --network none "$BASE" sh -c 'echo "$(command -v python): $(python --version), $(pip --version)"'
