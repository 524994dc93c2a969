"""The guest's VGA screen, kept as a PNG at the end of every boot and at a failure (issue 26).

A guest that stops before Linux (a firmware's "No bootable device", a GRUB
prompt, a Windows stop screen) says why only on its screen; the serial
console is empty. The runner asks QEMU (QMP ``screendump``, ``format=png``,
QEMU >= 7.1) to write the screen into its private directory and copies it to
where the user asked (``--screenshot FILE``) or, by default, to
``cache_root()/screens/`` (the newest KEEP files are kept there; older ones
written by this module are removed). ``-display none`` does not stop it: the
screen is the display *device*'s (VMware SVGA, VGA), not a window's; a
machine without a display device has no screen and gets no picture.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import struct
import time
from pathlib import Path

from guestcompat.paths import cache_root

#: Screens kept in the default directory (a test suite boots hundreds of guests).
KEEP = 50
SCREENDUMP_TIMEOUT = 10.0
#: A PNG larger than this is not a guest's screen (8 MiB: 2560x1600x2 and then some).
MAX_BYTES = 8 << 20
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_NAME = re.compile(r"^\d{8}T\d{6}Z-\d+-\d+\.png$")


def screens_dir() -> Path:
    return cache_root() / "screens"


def default_path() -> Path:
    """A new file name in :func:`screens_dir` (time, pid, a counter: unique within one host)."""
    default_path.counter += 1  # type: ignore[attr-defined]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return screens_dir() / f"{stamp}-{os.getpid()}-{default_path.counter}.png"  # type: ignore[attr-defined]


default_path.counter = 0  # type: ignore[attr-defined]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of the PNG at *path*; ValueError if it is not one."""
    with open(path, "rb") as fh:
        head = fh.read(24)
    if len(head) < 24 or head[:8] != PNG_MAGIC or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG file")
    return struct.unpack(">II", head[16:24])


def _prune(directory: Path) -> None:
    mine = sorted((p for p in directory.iterdir() if _NAME.match(p.name)), key=lambda p: p.name)
    for old in mine[:-KEEP]:
        old.unlink(missing_ok=True)


async def take(qemu, dest: Path | None) -> tuple[Path | None, str]:
    """Ask *qemu* (a running :class:`~guestcompat.qemu_process.QemuProcess`) for its screen.

    Returns (the PNG's path, "") or (None, why there is none). Never raises: a
    missing picture must not hide the error it was meant to illustrate.
    """
    if qemu.exited:
        return None, "QEMU had exited: no screen to take"
    if qemu.dir is None:
        return None, "QEMU was not started"
    raw = qemu.dir / "screen.png"
    try:
        await asyncio.wait_for(qemu.qmp.execute("screendump", {"filename": str(raw), "format": "png"}),
                               SCREENDUMP_TIMEOUT)
    except asyncio.TimeoutError:
        return None, f"QEMU did not write its screen within {SCREENDUMP_TIMEOUT:.0f} s"
    except Exception as exc:  # QMPError (no display device: "no surface"), a QEMU that died meanwhile
        return None, f"QEMU could not write its screen: {exc}"
    try:
        png_size(raw)
        if raw.stat().st_size > MAX_BYTES:
            return None, f"QEMU's screen dump is larger than {MAX_BYTES >> 20} MiB"
        target = dest if dest is not None else default_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(raw, partial)
        os.replace(partial, target)
        if dest is None:
            _prune(target.parent)
    except (OSError, ValueError) as exc:
        return None, f"cannot keep the screen: {exc}"
    return target, ""


def is_black(path: Path) -> bool:
    """True if every pixel of the PNG at *path* is black (a blank screen). Filtering is invertible
    and every PNG filter maps zeros to zeros, so the image is black exactly when every filtered
    byte (each row's filter-type byte aside) is zero: no need to undo the filters."""
    import zlib

    width, height = png_size(path)
    data = path.read_bytes()
    if len(data) > MAX_BYTES:
        raise ValueError(f"{path}: larger than {MAX_BYTES >> 20} MiB")
    pos, idat = 8, b""
    bpp = 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            depth, colour = chunk[8], chunk[9]
            if depth != 8 or colour not in (0, 2, 6):
                raise ValueError(f"{path}: PNG colour type {colour} depth {depth} is not a screen dump's")
            bpp = {0: 1, 2: 3, 6: 4}[colour]
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompressobj().decompress(idat, height * (1 + width * bpp) + 1)
    stride = 1 + width * bpp
    if len(raw) < height * stride:
        raise ValueError(f"{path}: truncated image data")
    return not any(any(raw[row * stride + 1:(row + 1) * stride]) for row in range(height))
