"""VMware disks (VMDK) for imported profiles: inspect, check, convert or attach.

A VMDK comes in several shapes, all of which QEMU's ``vmdk`` driver reads:

* monolithic sparse (one file, ``KDMV`` header, embedded descriptor);
* stream-optimized (one compressed file, what OVF/OVA exports carry);
* a text *descriptor* plus extents (``monolithicFlat``: ``disk.vmdk`` +
  ``disk-flat.vmdk``; ``twoGbMaxExtentSparse/Flat``: ``disk-s001.vmdk``…).

The descriptor form breaks when one file is left behind in a copy, and
qemu-img then says only that it "could not open" something; so a text
descriptor is read here first and each missing extent is named with the
descriptor line that wants it.  Then ``qemu-img info --output=json`` tells
format, subformat (``create-type``) and size; a file that is not a VMDK is
refused.  ``convert`` writes a qcow2 (or raw) copy with ``qemu-img convert``;
``attach`` uses the VMDK as it is (QEMU opens it read-only).  All tools are
run with argv lists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from guestcompat.errors import DiskImageError

_DESCRIPTOR_MAGIC = b"# Disk DescriptorFile"
_SPARSE_MAGIC = b"KDMV"
# RW 4192256 SPARSE "disk-s001.vmdk"   /   RW 2048 FLAT "disk-flat.vmdk" 0
_EXTENT = re.compile(r'^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+(FLAT|SPARSE|ZERO|VMFS|VMFSSPARSE|VMFSRDM|VMFSRAW)'
                     r'(?:\s+"([^"]*)")?', re.IGNORECASE)
CONVERT_FORMATS = ("qcow2", "raw")


@dataclass(frozen=True)
class VmdkInfo:
    """What qemu-img (and the descriptor) say about a VMDK."""

    path: Path
    subformat: str                 # create-type: monolithicSparse, streamOptimized, monolithicFlat, ...
    virtual_size: int              # bytes the guest sees
    extents: tuple[Path, ...]      # files holding the data (the file itself for single-file forms)


def _qemu_img() -> str:
    found = shutil.which("qemu-img")
    if not found:
        raise DiskImageError("qemu-img is not installed (Debian package qemu-utils); it reads and converts VMDKs")
    return found


def descriptor_extents(path: Path) -> tuple[Path, ...]:
    """Extents a *text* descriptor names, checked to exist; () for a single-file VMDK."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
            if head == _SPARSE_MAGIC:
                return ()
            fh.seek(0)
            raw = fh.read(1 << 16)
    except OSError as exc:
        raise DiskImageError(f"{path}: cannot read the disk: {exc.strerror}") from None
    if not raw.startswith(_DESCRIPTOR_MAGIC):
        return ()
    extents = []
    for number, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
        match = _EXTENT.match(line)
        if not match or match[3].upper() == "ZERO":
            continue
        if not match[4]:
            raise DiskImageError(f"{path}: line {number}: extent without a file name: {line.strip()[:80]!r}")
        extent = (path.parent / match[4]) if not os.path.isabs(match[4]) else Path(match[4])
        if not extent.is_file():
            raise DiskImageError(f"{path}: line {number}: extent {match[4]!r} is missing "
                                 f"(looked for {extent}); copy every file of the disk, not only the descriptor")
        extents.append(extent)
    if not extents:
        raise DiskImageError(f"{path}: a VMDK descriptor with no extent line (RW <sectors> FLAT|SPARSE \"file\"); "
                             f"truncated?")
    return tuple(extents)


def inspect_vmdk(path: Path) -> VmdkInfo:
    """Check ``path`` is a readable VMDK with all its extents; its subformat and size."""
    if not path.is_file():
        raise DiskImageError(f"{path}: no such disk file")
    extents = descriptor_extents(path)
    proc = subprocess.run([_qemu_img(), "info", "--output=json", str(path)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise DiskImageError(f"{path}: qemu-img cannot read it: {proc.stderr.strip().splitlines()[-1:] or ['?']}")
    try:
        info = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise DiskImageError(f"{path}: qemu-img info printed no JSON") from None
    if info.get("format") != "vmdk":
        raise DiskImageError(f"{path}: not a VMDK (qemu-img reads it as {info.get('format')!r})")
    data = (info.get("format-specific") or {}).get("data") or {}
    subformat = data.get("create-type") or "unknown"
    return VmdkInfo(path=path, subformat=subformat, virtual_size=int(info.get("virtual-size", 0)),
                    extents=extents or (path,))


def convert_vmdk(path: Path, dest: Path, out_format: str = "qcow2") -> Path:
    """Convert the VMDK at ``path`` into ``dest`` (qcow2 or raw), atomically; returns ``dest``."""
    if out_format not in CONVERT_FORMATS:
        raise DiskImageError(f"cannot convert to {out_format!r}; formats: {', '.join(CONVERT_FORMATS)}")
    inspect_vmdk(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    proc = subprocess.run([_qemu_img(), "convert", "-f", "vmdk", "-O", out_format, str(path), str(tmp)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise DiskImageError(f"{path}: qemu-img convert failed: {proc.stderr.strip()}")
    os.replace(tmp, dest)
    return dest
