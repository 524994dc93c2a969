#!/usr/bin/env bash
# Idempotent set-up of everything guestcompat needs on a Debian 12 machine (run as root):
# system packages, the .venv with guestcompat installed editable (with test extras),
# the libvirt-qemu user, and the guest images. A repeated run on a ready machine
# only checks and returns within seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }

APT_PACKAGES=(
  qemu-system-x86 qemu-system-ppc qemu-utils seabios ovmf
  libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu pkg-config
  busybox-static kmod acpica-tools pciutils dmidecode gcc libc6-dev cpio python3-venv python3-dev
  debootstrap e2fsprogs
  # the fleet tests' libvirtd daemons (libvirtd and the storage driver's dir pools come with libvirt-daemon;
  # no libvirt-daemon-system or systemd): network namespaces and veth pairs, private mount namespaces
  iproute2 util-linux mount
  # guestcompat's patched QEMU (images/qemu_build.py): Debian's qemu/seabios sources and their build tools
  dpkg-dev ninja-build meson ccache libglib2.0-dev libpixman-1-dev libslirp-dev zlib1g-dev libfdt-dev flex bison patch
  # guestcompat's OVMF (images/ovmf_build.py): Debian's edk2 source, its BaseTools and the GCC5 toolchain
  g++ make nasm uuid-dev python3-distutils
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Multiarch: the ppc64el guest image is built from Debian ppc64el packages.
if ! dpkg --print-foreign-architectures | grep -qx ppc64el; then
  say "adding dpkg architecture ppc64el"
  dpkg --add-architecture ppc64el
  need_update=1
fi
# Debian's source packages (apt-get source qemu seabios edk2) for the patched QEMU and OVMF builds.
src_list=/etc/apt/sources.list.d/guestcompat-src.sources
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
  say "adding a deb-src entry for bookworm ($src_list)"
  cat > "$src_list" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  need_update=1
fi
# bookworm-backports: QEMU 10.0 (`--qemu 10.0`, `--qemu 10.0-patched`), fetched and unpacked into the cache,
# never installed (apt's default priority 100 for backports keeps every installed package at bookworm's).
bpo_list=/etc/apt/sources.list.d/guestcompat-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list.d/ /etc/apt/sources.list; then
  say "adding a bookworm-backports entry (deb, deb-src) for QEMU 10.0 ($bpo_list)"
  cat > "$bpo_list" <<'SRC'
Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  need_update=1
fi
if [ ${#missing[@]} -gt 0 ] || [ -n "${need_update:-}" ] || [ ! -e /var/lib/apt/lists/lock ] || \
   [ -z "$(find /var/lib/apt/lists -name '*_Packages' -newermt '-7 days' -print -quit 2>/dev/null)" ]; then
  say "apt-get update"
  # A stale or unreachable index of one source must not stop the set-up.
  apt-get update -q || say "apt-get update reported errors; continuing with the indexes we have"
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# libvirt's embedded driver insists on its default user and group existing.
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null || useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  say "python3 >= 3.11 is required (found: $("$PY" --version 2>&1))"; exit 2
fi
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.guestcompat-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing guestcompat (editable, with test extras) into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi

say "building guest images (cached in $(.venv/bin/python -c 'from guestcompat.paths import cache_root; print(cache_root())'))"
.venv/bin/guestcompat images build
# The full Debian guest (debootstrap + mke2fs -d + VMDK) the boot-imported tests boot:
# ~4-7 min cold on a shared 2-core machine, seconds when cached.
say "building the full Debian 12 guest (VMDK + .vmx)"
.venv/bin/guestcompat images fullguest
# guestcompat's own QEMU: Debian's qemu + seabios sources with images/patches/ (~4-5 min cold on
# 2 cores, seconds when cached). Without the sources everything keeps working on stock QEMU.
say "building the patched QEMU (images/patches/)"
if ! .venv/bin/guestcompat qemu build patched; then
  say "the patched QEMU could not be built (see above); stock QEMU stays usable, --qemu patched is not"
fi
# QEMU 10.0 (bookworm-backports): Debian's binaries unpacked (seconds) and our series on its source
# (~3 min cold on 2 cores). Without them the 7.2 builds keep working; --qemu 10.0* says what is missing.
for build in 10.0 10.0-patched; do
  say "QEMU build $build"
  .venv/bin/guestcompat qemu build "$build" || say "QEMU build $build failed (see above); --qemu $build is unavailable"
done
# guestcompat's OVMF: Debian's edk2 source + images/patches/edk2-*, one 4 MiB image with the PVSCSI and
# MPT SCSI boot drivers (~8 min cold on 2 cores, seconds when cached). Without it EFI profiles keep
# Debian's OVMF and QEMU's own chipset layout.
say "building guestcompat's OVMF (images/patches/edk2-*)"
if ! .venv/bin/guestcompat firmware build; then
  say "guestcompat's OVMF could not be built (see above); EFI profiles keep Debian's OVMF and QEMU's chipset layout"
fi
say "ready"
