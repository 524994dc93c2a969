"""A deterministic ``newc`` cpio writer for the guest's initramfs.

Why pure Python rather than ``cpio``/``gen_init_cpio``: it needs no root (the
archive contains ``/dev/console``, a device node we could not ``mknod``), no
staging tree on disk, and it is byte-for-byte reproducible (sorted entries,
mtime 0, uid/gid 0, inode numbers in order), so the same inputs give the
same image on every machine.

The archive is left uncompressed: under TCG the guest kernel's own
decompression costs more boot time than reading a few more MB from memory.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from guestcompat.errors import ImageError

NEWC_MAGIC = b"070701"
TRAILER = "TRAILER!!!"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One archive member.  Exactly one of the kinds applies:

    * a regular file: ``data`` (bytes) or ``source`` (a host file, streamed);
    * a directory: ``kind="dir"``;
    * a symlink: ``target``;
    * a character device: ``kind="chr"`` with ``rdev=(major, minor)``.
    """

    path: str
    mode: int = 0o644  # permission bits only; the type comes from the kind
    kind: str = "file"  # "file" | "dir" | "symlink" | "chr"
    data: bytes | None = None
    source: Path | None = None
    target: str | None = None
    rdev: tuple[int, int] = (0, 0)

    @staticmethod
    def file(path: str, data: bytes, mode: int = 0o644) -> Entry:
        return Entry(path, mode, "file", data=data)

    @staticmethod
    def host_file(path: str, source: Path, mode: int = 0o644) -> Entry:
        return Entry(path, mode, "file", source=source)

    @staticmethod
    def directory(path: str, mode: int = 0o755) -> Entry:
        return Entry(path, mode, "dir")

    @staticmethod
    def symlink(path: str, target: str) -> Entry:
        return Entry(path, 0o777, "symlink", target=target)

    @staticmethod
    def char_device(path: str, major: int, minor: int, mode: int = 0o600) -> Entry:
        return Entry(path, mode, "chr", rdev=(major, minor))


_TYPE_BITS = {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "symlink": stat.S_IFLNK,
              "chr": stat.S_IFCHR}


def archive_path(path: str) -> str:
    """Normalise a guest path to the archive's form: relative, no ``.``/``..``."""
    parts = [p for p in PurePosixPath(path).parts if p not in ("/", ".")]
    if not parts or ".." in parts:
        raise ImageError(f"invalid path for the initramfs: {path!r}")
    return "/".join(parts)


def _header(ino: int, mode: int, nlink: int, size: int, rdev: tuple[int, int],
            name: bytes) -> bytes:
    fields = (ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev[0], rdev[1], len(name) + 1, 0)
    head = NEWC_MAGIC + b"".join(b"%08X" % f for f in fields) + name + b"\0"
    return head + b"\0" * (-len(head) % 4)


def _complete(entries: Iterable[Entry]) -> list[Entry]:
    """Sorted, de-duplicated entries with every parent directory present.

    A path given twice is an error (two builders disagreeing about a file
    would otherwise be decided silently by order); implicit parents are
    0755 directories.
    """
    by_path: dict[str, Entry] = {}
    for entry in entries:
        path = archive_path(entry.path)
        if path in by_path:
            raise ImageError(f"initramfs path given twice: /{path}")
        by_path[path] = Entry(path, entry.mode, entry.kind, entry.data, entry.source,
                              entry.target, entry.rdev)
    for path in list(by_path):
        parent = PurePosixPath(path).parent
        while str(parent) != ".":
            key = str(parent)
            existing = by_path.get(key)
            if existing is None:
                by_path[key] = Entry.directory(key)
            elif existing.kind != "dir":
                raise ImageError(f"initramfs path /{key} is both a {existing.kind} and a directory")
            parent = parent.parent
    # Sorting full paths puts every directory before its contents.
    return [by_path[p] for p in sorted(by_path)]


def write_newc(entries: Iterable[Entry], out: BinaryIO) -> int:
    """Write *entries* as a newc archive to *out*; return the bytes written."""
    written = 0
    for ino, entry in enumerate(_complete(entries), start=1):
        if entry.kind not in _TYPE_BITS:
            raise ImageError(f"unknown initramfs entry kind {entry.kind!r} for /{entry.path}")
        mode = _TYPE_BITS[entry.kind] | (entry.mode & 0o7777)
        name = entry.path.encode()
        if entry.kind == "symlink":
            payload: bytes | None = (entry.target or "").encode()
            size = len(payload)
        elif entry.kind == "file" and entry.source is not None:
            payload, size = None, entry.source.stat().st_size
        elif entry.kind == "file":
            payload = entry.data or b""
            size = len(payload)
        else:
            payload, size = b"", 0
        nlink = 2 if entry.kind == "dir" else 1
        head = _header(ino, mode, nlink, size, entry.rdev, name)
        out.write(head)
        written += len(head)
        if payload is None:
            written += _copy_exact(entry.source, out, size)  # type: ignore[arg-type]
        else:
            out.write(payload)
            written += len(payload)
        pad = -written % 4
        out.write(b"\0" * pad)
        written += pad
    trailer = _header(0, 0, 1, 0, (0, 0), TRAILER.encode())
    out.write(trailer)
    written += len(trailer)
    # Pad to a 512-byte block like cpio(1); the kernel skips zero padding,
    # which also keeps the archive safe to concatenate with another one.
    pad = -written % 512
    out.write(b"\0" * pad)
    return written + pad


def _copy_exact(source: Path, out: BinaryIO, size: int) -> int:
    """Stream *source* into *out*; fail if it changed size since we stat'ed it."""
    copied = 0
    with source.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            out.write(chunk)
            copied += len(chunk)
    if copied != size:
        raise ImageError(f"{source} changed size while being archived")
    return copied


def write_archive(entries: Iterable[Entry], path: Path) -> int:
    """Write the archive to the file *path*; return its size."""
    with path.open("wb") as fh:
        return write_newc(entries, fh)
