"""The screen-dump helpers (harness/screenshot.py) and how a RunError shows the picture (issue 26)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from guestcompat.errors import RunError
from guestcompat.harness.screenshot import is_black, png_size


def _png(path: Path, width: int, height: int, lit: tuple[int, int] | None = None, filt: int = 0) -> Path:
    rows = []
    for y in range(height):
        row = bytearray(width * 3)
        if lit and lit[1] == y:
            row[lit[0] * 3:lit[0] * 3 + 3] = b"\xaa\xaa\xaa"
        if filt == 1:  # Sub: each byte minus the byte one pixel left
            row = bytearray((row[i] - (row[i - 3] if i >= 3 else 0)) & 0xFF for i in range(len(row)))
        rows.append(bytes([filt]) + bytes(row))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(rows)))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("filt", [0, 1])
def test_black_and_lit_screens(tmp_path, filt):
    black = _png(tmp_path / "black.png", 720, 400, filt=filt)
    lit = _png(tmp_path / "lit.png", 720, 400, lit=(719, 399), filt=filt)
    assert png_size(black) == (720, 400)
    assert is_black(black)
    assert not is_black(lit)


def test_not_a_png_is_refused(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"P6\n720 400\n255\n" + bytes(30))
    with pytest.raises(ValueError, match="is not a PNG"):
        png_size(path)


def test_run_error_points_to_the_screen():
    error = RunError("the guest printed nothing", screenshot=Path("/tmp/s.png"), console_tail=["x"])
    text = str(error)
    assert "the guest's screen at that moment: /tmp/s.png" in text
    assert text.index("/tmp/s.png") < text.index("last console lines")
    assert "no screenshot: no display" in str(RunError("m", no_screenshot="no display"))
    assert "screen" not in str(RunError("m"))


def test_run_screenshot_needs_the_qemu_backend(tmp_path):
    from click.testing import CliRunner

    from guestcompat.harness.cli import cli

    result = CliRunner().invoke(cli, ["run", "vmware/esxi-6.5", "--backend", "libvirt", "--screenshot",
                                      str(tmp_path / "s.png")])
    assert result.exit_code != 0 and "--screenshot is taken over QEMU's monitor" in str(result.exception)
    assert not (tmp_path / "s.png").exists()
