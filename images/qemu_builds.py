"""The QEMU builds ``--qemu`` can name, besides a path: one registry for the CLI, compiler and matrix.

* ``stock``: the machine's own QEMU (Debian 12's 7.2); its release number (``7.2``) names it too;
* ``patched``: guestcompat's series on that same Debian source (images/qemu_build.py);
* ``10.0``: Debian's QEMU 10.0 from bookworm-backports, unpatched, unpacked (images/qemu_debian.py);
* ``10.0-patched``: guestcompat's series for 10.0 on that release's source.

Which build can do what is never decided here: the capability probe asks the binary.
"""

from __future__ import annotations

import re

from guestcompat.errors import ImageError
from guestcompat.images import qemu_build, qemu_debian
from guestcompat.images.qemu_build import ARCHES, Progress, QemuBuild

STOCK = "stock"
BUILDS = (*qemu_build.SOURCE_BUILDS, *qemu_debian.DEBIAN_BUILDS)
"""Names of the builds guestcompat makes (``qemu build``), in the order setup makes them."""


def installed_release() -> str | None:
    """``7.2`` for the installed qemu-system-x86 ``1:7.2+dfsg-…``; None if it is not installed."""
    try:
        version = qemu_build.installed_source_version(qemu_build.QEMU_BINARY_PACKAGE)
    except ImageError:
        return None
    found = re.match(r"(?:\d+:)?(\d+\.\d+)", version)
    return found.group(1) if found else None


def is_alias(name: str | None) -> bool:
    """Whether ``--qemu NAME`` names a build rather than a binary path."""
    return bool(name) and (name in BUILDS or is_stock(name))


def is_stock(name: str | None) -> bool:
    """``stock`` or the installed release's number: the machine's own binary."""
    return name == STOCK or (name is not None and name not in BUILDS and name == installed_release())


def find(name: str) -> QemuBuild | None:
    """The cached build *name*, or None (no compiler, no download)."""
    if name in qemu_debian.DEBIAN_BUILDS:
        return qemu_debian.find_debian_build(name)
    return qemu_build.find_build(name)


def ensure(name: str, progress: Progress = lambda msg: None, jobs: int | None = None) -> QemuBuild:
    """Make (or reuse) the build *name*."""
    if name in qemu_debian.DEBIAN_BUILDS:
        return qemu_debian.ensure_debian_build(name, progress)
    if name not in qemu_build.SOURCE_BUILDS:
        raise ImageError(f"unknown QEMU build {name!r} (known: {', '.join(BUILDS)})")
    return qemu_build.ensure_build(progress, jobs, name=name)


def binary_for_alias(alias: str, arch: str, stock_binary: str) -> str:
    """The binary ``--qemu <alias>`` names on *arch*; a clear error when the build is missing."""
    if is_stock(alias):
        return stock_binary
    if alias not in BUILDS:
        raise ImageError(f"--qemu {alias}: not a QEMU build guestcompat knows "
                         f"({', '.join((STOCK, *BUILDS))}) nor the installed release ({installed_release()})")
    if arch not in ARCHES:
        raise ImageError(f"--qemu {alias}: guestcompat's QEMU builds are for {', '.join(ARCHES)} only, not {arch}")
    build = find(alias)
    if build is None or not build.binary(arch).is_file():
        raise ImageError(f"--qemu {alias}: that QEMU build is not in the cache; run `make setup` "
                         f"(or `guestcompat qemu build {alias}`)")
    return str(build.binary(arch))
