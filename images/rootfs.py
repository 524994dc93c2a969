"""What goes into the initramfs: the layout of the guest's root file system.

Separate from the cpio writer (which knows nothing about Linux) and from the
build orchestration (which knows nothing about paths in the guest), so the
layout can be read in one place.
"""

from __future__ import annotations

import gzip
import lzma
from collections.abc import Iterable, Mapping
from pathlib import Path

from guestcompat.errors import ImageError

from .init import MODULES_LIST
from .initramfs import Entry, archive_path

#: Guest paths the image owns; a payload file there is refused, not merged.
IMAGE_OWNED = ("init", "bin", "dev", "proc", "sys", "etc/guestcompat", "lib/modules")

#: Empty mount points and scratch space /init and the probe expect.
DIRECTORIES = ("proc", "sys", "dev", "tmp", "root", "etc/guestcompat")


def module_bytes(path: Path) -> tuple[bytes, str]:
    """Module content ready for plain ``insmod``, and the suffix to drop.

    busybox insmod passes the file to init_module() as is, so compressed
    modules (newer Debian kernels ship .ko.xz) are decompressed here.
    """
    name = path.name
    if name.endswith(".ko"):
        return path.read_bytes(), ""
    if name.endswith(".ko.xz"):
        return lzma.decompress(path.read_bytes()), ".xz"
    if name.endswith(".ko.gz"):
        return gzip.decompress(path.read_bytes()), ".gz"
    raise ImageError(f"cannot load {name}: unsupported module compression")


def check_payload(files: Mapping[str, tuple[bytes, int]], entry: str) -> None:
    """ImageError when the payload would break the image or cannot run."""
    for guest_path in files:
        if not guest_path.startswith("/"):
            raise ImageError(f"payload path {guest_path!r} is not absolute")
        rel = archive_path(guest_path)
        for owned in IMAGE_OWNED:
            if rel == owned or rel.startswith(owned + "/"):
                raise ImageError(f"payload file {guest_path} collides with /{owned}, "
                                 "which the image itself provides")
    if entry not in files:
        raise ImageError(f"payload entry {entry} is not one of the payload files")
    if not files[entry][1] & 0o111:
        raise ImageError(f"payload entry {entry} is not executable (mode {files[entry][1]:o})")


def rootfs_entries(*, busybox: Path, applets: Iterable[str], release: str,
                   modules: Iterable[tuple[str, Path]],
                   payload_files: Mapping[str, tuple[bytes, int]],
                   init_text: str,
                   tool_files: Iterable[tuple[str, Path, int]] = ()) -> list[Entry]:
    """All archive entries of the guest root.

    *modules* are (path relative to lib/modules/<release>, host file) in
    load order; their guest paths are written, in that order, to the list
    /init reads.  *tool_files* are (guest path, host file, mode) of the
    guest's own tools (images.guesttools); a path given twice is an error.
    """
    entries = [Entry.directory(d) for d in DIRECTORIES]
    # The kernel opens /dev/console for init before anything is mounted.
    entries.append(Entry.char_device("dev/console", 5, 1))
    entries.append(Entry.file("init", init_text.encode(), 0o755))
    entries.append(Entry.host_file("bin/busybox", busybox, 0o755))
    entries += [Entry.symlink(f"bin/{name}", "busybox")
                for name in applets if name != "busybox" and "/" not in name]
    listed = []
    for rel, host in modules:
        data, drop = module_bytes(host)
        guest = f"/lib/modules/{release}/{rel[: -len(drop)] if drop else rel}"
        entries.append(Entry.file(guest, data, 0o644))
        listed.append(guest)
    entries.append(Entry.file(MODULES_LIST, "".join(f"{p}\n" for p in listed).encode()))
    entries += [Entry.file(path, content, mode) for path, (content, mode) in payload_files.items()]
    entries += [Entry.host_file(path, host, mode) for path, host, mode in tool_files]
    return entries
