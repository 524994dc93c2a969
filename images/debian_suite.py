"""Debian packages of another suite (bookworm-backports), fetched and unpacked without installing.

A second QEMU release must not replace the machine's own QEMU (stock 7.2 stays a
first-class target), so its binary packages are never installed: ``apt-get
download`` fetches the exact versions and ``dpkg-deb -x`` unpacks them into a
cache directory. apt's index says which version a suite offers.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Sequence
from pathlib import Path

from guestcompat.errors import ImageError


@functools.lru_cache(maxsize=None)
def candidate_version(package: str, suite: str, *, what: str = "QEMU build") -> str:
    """The version of binary *package* the apt index lists for *suite* (``apt-cache madison``)."""
    try:
        result = subprocess.run(["apt-cache", "madison", package], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ImageError(f"{what}: cannot run apt-cache: {exc}") from None
    found = madison_version(result.stdout, package, suite)
    if found:
        return found
    raise ImageError(f"{what}: apt's index has no {package} in {suite} "
                     f"(`make setup` adds a {suite} entry; run `apt-get update`)")


def madison_version(madison: str, package: str, suite: str) -> str | None:
    """The binary package's version in *suite* from ``apt-cache madison`` output (source lines skipped)."""
    for line in madison.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) == 3 and fields[0] == package and fields[2].endswith(" Packages") \
                and any(word.split("/")[0] == suite for word in fields[2].split()):
            return fields[1]
    return None


def unpack_packages(packages: Sequence[str], dest: Path, downloads: Path, log: Path) -> list[Path]:
    """``apt-get download`` each ``name=version`` into *downloads* and unpack it into *dest*."""
    downloads.mkdir(parents=True, exist_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n$ apt-get download {' '.join(packages)}\n".encode())
        out.flush()
        fetched = subprocess.run(["apt-get", "download", "-q", *packages], cwd=downloads, stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if fetched.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-6:]
        raise ImageError(f"apt-get download {' '.join(packages)} failed (exit {fetched.returncode}):\n"
                         + "\n".join("  | " + line for line in tail))
    debs = []
    for spec in packages:
        name = spec.split("=", 1)[0]
        found = sorted(downloads.glob(f"{name}_*.deb"))
        if not found:
            raise ImageError(f"apt-get download {spec} left no {name}_*.deb in {downloads}")
        unpacked = subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(dest)], capture_output=True, text=True)
        if unpacked.returncode != 0:
            raise ImageError(f"dpkg-deb -x {found[-1].name} failed: {unpacked.stderr.strip()}")
        debs.append(found[-1])
    return debs
