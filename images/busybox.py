"""The guest's userland: one static busybox and a symlink per applet.

Why symlinks in the archive instead of ``busybox --install -s`` in /init:
installing forks once per applet (~270 forks × ~14 ms under TCG ≈ 4 s).
The links cost nothing when they are already in the cpio.

Which applets?  The guest busybox may be of another architecture than the
host, so we cannot run ``busybox --list``.  Instead we read busybox's own
applet name table out of the binary: busybox stores the names as one sorted,
NUL-separated string starting ``[\\0[[\\0`` (``applet_names`` in
libbb/appletlib.c), the same on every architecture.  If that table is not
found (an unusual build), we fall back to the fixed set the probe and /init
are documented to use.
"""

from __future__ import annotations

import re

from guestcompat.errors import ImageError

#: Applets /init and the probe rely on; used when the table cannot be read
#: and checked against the table when it can.
REQUIRED_APPLETS = (
    "sh", "mount", "insmod", "poweroff",
)
FALLBACK_APPLETS = REQUIRED_APPLETS + (
    "awk", "base64", "cat", "cut", "dmesg", "echo", "grep", "head", "ls", "mkdir",
    "printf", "readlink", "sed", "sha256sum", "sleep", "tr", "uname", "wc",
)

_TABLE_START = b"[\0[[\0"
_NAME = re.compile(rb"[a-z0-9_.\-\[\]]{1,40}")


def applets_from_binary(binary: bytes) -> tuple[str, ...] | None:
    """The applet names compiled into a busybox *binary*, or None if not found.

    Accepts the table only when it is long and strictly sorted, as busybox
    generates it (applet lookup is a binary search over it), so a chance
    match elsewhere in the binary is rejected.
    """
    start = binary.find(_TABLE_START)
    while start != -1:
        names: list[str] = []
        pos = start
        while True:
            end = binary.find(b"\0", pos)
            if end == -1:
                break
            chunk = binary[pos:end]
            if not _NAME.fullmatch(chunk):
                break
            names.append(chunk.decode())
            pos = end + 1
        if len(names) >= len(REQUIRED_APPLETS) and names == sorted(set(names)):
            return tuple(names)
        start = binary.find(_TABLE_START, start + 1)
    return None


def applets(binary: bytes) -> tuple[tuple[str, ...], bool]:
    """(applet names to link, whether they came from the binary's own table).

    ImageError if the binary lacks an applet /init cannot do without.
    """
    found = applets_from_binary(binary)
    if found is None:
        return FALLBACK_APPLETS, False
    missing = [a for a in REQUIRED_APPLETS if a not in found]
    if missing:
        raise ImageError(f"the guest busybox lacks applets /init needs: {', '.join(missing)}")
    return found, True
