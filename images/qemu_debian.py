"""A second stock QEMU release: Debian's own binary packages of another suite, unpacked into the cache.

``--qemu 10.0`` is Debian's ``qemu-system-x86`` from bookworm-backports exactly as
Debian ships it (no patches of ours): the release a platform team upgrades to.
Installing it would replace the machine's QEMU 7.2, so its packages (the binary,
its common files, its option ROMs and the SeaBIOS it depends on) are unpacked
into ``cache_root()/qemu/guestcompat-qemu-debian-<name>-<key>/`` instead, keyed by
their versions. A two-line wrapper ``bin/qemu-system-x86_64`` puts that
release's own firmware (``-L``) and modules first, so the 10.0 binary never loads
7.2's option ROMs from /usr/share/qemu; it ``exec``\\ s, so the QEMU keeps the
wrapper's pid (process group, parent-death signal).
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from guestcompat.errors import ImageError
from guestcompat.images.debian_suite import candidate_version, unpack_packages
from guestcompat.images.qemu_build import ARCHES, NAME, Progress, QemuBuild, builds_root, publish, published

FORMAT = 1


@dataclass(frozen=True)
class DebianBuild:
    """A QEMU release taken as Debian built it, from *suite*."""

    name: str
    suite: str
    qemu_package: str = "qemu-system-x86"
    companions: tuple[str, ...] = ("qemu-system-common", "qemu-system-data", "qemu-system-modules-opengl",
                                   "qemu-system-modules-spice")
    """Packages of the same version: the binary's shared files, option ROMs and every module Debian
    12's 7.2 also ships (QEMU tries its module directory, then the system's: a 7.2 module that
    the 10.0 tree lacks is refused there as "not from the same build" and QEMU aborts)."""
    seabios_package: str = "seabios"

    @property
    def directory_name(self) -> str:
        return f"{NAME}-debian-{self.name}"


DEBIAN_BUILDS = {"10.0": DebianBuild("10.0", "bookworm-backports")}


def debian_spec(name: str) -> DebianBuild:
    try:
        return DEBIAN_BUILDS[name]
    except KeyError:
        raise ImageError(f"unknown Debian QEMU build {name!r} (known: {', '.join(DEBIAN_BUILDS)})") from None


def _versions(spec: DebianBuild) -> tuple[str, str]:
    what = f"QEMU {spec.name}"
    return (candidate_version(spec.qemu_package, spec.suite, what=what),
            candidate_version(spec.seabios_package, spec.suite, what=what))


def _key(spec: DebianBuild, qemu_version: str, seabios_version: str) -> str:
    text = f"{FORMAT}|{spec}|{qemu_version}|{seabios_version}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def find_debian_build(name: str) -> QemuBuild | None:
    """The newest unpacked release *name* in the cache (`qemu build` fetches what the index lists)."""
    spec = debian_spec(name)
    builds = published(spec.directory_name)  # no apt question: `qemu build` follows the index
    return builds[-1] if builds else None


def _wrapper(root: Path, binary: str) -> str:
    """The launcher: this release's firmware and modules first, then Debian's usual directories."""
    q = shlex.quote
    return ("#!/bin/sh\n"
            "# Debian's QEMU release unpacked by guestcompat (images/qemu_debian.py): its own firmware first.\n"
            f"QEMU_MODULE_DIR={q(str(root / 'usr/lib/x86_64-linux-gnu/qemu'))}; export QEMU_MODULE_DIR\n"
            f"exec {q(str(root / 'usr/bin' / binary))} -L {q(str(root / 'usr/share/qemu'))} "
            f"-L {q(str(root / 'usr/share/seabios'))} \"$@\"\n")


def ensure_debian_build(name: str, progress: Progress = lambda msg: None) -> QemuBuild:
    """Fetch and unpack (or reuse) Debian's QEMU release *name*; returns the published directory."""
    spec = debian_spec(name)
    qemu_version, seabios_version = _versions(spec)
    final = builds_root() / f"{spec.directory_name}-{_key(spec, qemu_version, seabios_version)}"

    def make(work: Path) -> QemuBuild:
        started = time.monotonic()
        progress(f"fetching Debian's {spec.qemu_package} {qemu_version} ({spec.suite}) and "
                 f"{spec.seabios_package} {seabios_version}; unpacking, not installing")
        packages = [f"{p}={qemu_version}" for p in (spec.qemu_package, *spec.companions)]
        unpack_packages([*packages, f"{spec.seabios_package}={seabios_version}"], work / "root",
                        work / "debs", work / "fetch.log")
        shutil.rmtree(work / "debs", ignore_errors=True)
        (work / "bin").mkdir()
        for binary in ARCHES.values():
            if not (work / "root" / "usr" / "bin" / binary).is_file():
                raise ImageError(f"QEMU {name}: {spec.qemu_package} {qemu_version} has no usr/bin/{binary}")
            launcher = work / "bin" / binary
            launcher.write_text(_wrapper(final / "root", binary))
            launcher.chmod(0o755)
        return QemuBuild(final, qemu_version, seabios_version, (), round(time.monotonic() - started, 1), name,
                         (f"Debian's binary packages from {spec.suite}, unpatched",))

    return publish(final, lambda: find_debian_build(name), make)
