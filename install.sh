#!/usr/bin/env bash
# Install everything eib needs on a Debian 12 machine (as root), then build
# the embedded demo image offline.
#
#   ./install.sh              system packages + eib in .venv + the demo image
#   ./install.sh --no-demo    the same without building the demo
#
# eib goes into a virtual environment beside this file (.venv) and is linked
# as /usr/local/bin/eib.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

build_demo=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) build_demo=0 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

packages=(
  # OS trees and apps
  ostree flatpak bubblewrap
  # disk images, file systems, compression
  e2fsprogs fdisk dosfstools mtools xz-utils zstd pigz zip xorriso qemu-utils eatmydata
  # bootloaders the demo OS ships, its kernel's tools, its busybox
  grub-efi-amd64-bin grub-pc-bin grub-common busybox-static cpio kmod
  # the Debian demo OS (eib demo-os --os debian)
  mmdebstrap
  # signing, publishing
  gnupg rsync openssh-server openssh-client
  # booting images to test them
  qemu-system-x86 ovmf
  # the build farm's broker and result backend (eib farm, docs/farm.md)
  redis-server
  # Python
  python3 python3-venv python3-dev
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (it installs Debian packages)" >&2
  exit 2
fi

export DEBIAN_FRONTEND=noninteractive
# Always refresh the package lists: the demo OS fetches the current Debian
# kernel with `apt-get download`, which needs them.
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# The "compat" editable mode is a plain path entry: no import hook to load at
# every start (~25 ms of each `eib` run).
.venv/bin/python -m pip install -q -e '.[dev,farm]' --config-settings editable_mode=compat
# Byte-compile now, eib and the libraries it imports (pip leaves PyYAML's
# modules uncompiled), so start-up stays fast even where
# PYTHONDONTWRITEBYTECODE is set.
.venv/bin/python -m compileall -q eib .venv/lib >/dev/null
ln -sf "$PWD/.venv/bin/eib" /usr/local/bin/eib

if [ "$build_demo" = 1 ]; then
  .venv/bin/eib run recipes/demo.yaml
fi
