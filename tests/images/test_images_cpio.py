"""The newc writer, checked by an independent reader: busybox cpio."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from guestcompat.errors import ImageError
from guestcompat.images.initramfs import Entry, write_archive, write_newc

BUSYBOX = shutil.which("busybox") or "/usr/bin/busybox"


def sample_entries(host_file: Path) -> list[Entry]:
    return [
        Entry.file("/etc/guestcompat/modules", b"/lib/a.ko\n"),
        Entry.file("init", b"#!/bin/sh\necho hi\n", 0o755),
        Entry.host_file("/bin/busybox", host_file, 0o755),
        Entry.symlink("/bin/sh", "busybox"),
        Entry.directory("/proc"),
        Entry.file("/odd/size", b"x" * 5),  # exercises data padding
        Entry.file("/empty", b""),
    ]


def cpio(args: list[str], archive: Path, cwd: Path | None = None) -> str:
    with archive.open("rb") as fh:
        proc = subprocess.run([BUSYBOX, "cpio", *args], stdin=fh, cwd=cwd,
                              capture_output=True, text=True, check=True)
    return proc.stdout


def walk_newc(raw: bytes) -> list[tuple[str, list[int]]]:
    """Minimal independent newc reader: (name, 13 header fields) per member."""
    out, pos = [], 0
    while True:
        assert raw[pos:pos + 6] == b"070701", f"bad magic at {pos}"
        fields = [int(raw[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name = raw[pos + 110: pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        if name == "TRAILER!!!":
            return out
        out.append((name, fields))
        pos += filesize
        pos += -pos % 4


@pytest.fixture
def host_file(tmp_path: Path) -> Path:
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(3001))
    return path


def test_busybox_lists_every_entry_parents_first(tmp_path: Path, host_file: Path) -> None:
    archive = tmp_path / "a.cpio"
    write_archive(sample_entries(host_file), archive)
    names = cpio(["-t"], archive).split()
    assert names == ["bin", "bin/busybox", "bin/sh", "empty", "etc", "etc/guestcompat",
                     "etc/guestcompat/modules", "init", "odd", "odd/size", "proc"]


def test_busybox_extracts_content_modes_and_links(tmp_path: Path, host_file: Path) -> None:
    archive = tmp_path / "a.cpio"
    write_archive(sample_entries(host_file), archive)
    out = tmp_path / "out"
    out.mkdir()
    cpio(["-i", "-d"], archive, cwd=out)
    assert (out / "bin/busybox").read_bytes() == host_file.read_bytes()
    assert (out / "init").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (out / "odd/size").read_bytes() == b"xxxxx"
    assert (out / "empty").read_bytes() == b""
    assert os.readlink(out / "bin/sh") == "busybox"
    assert (out / "init").stat().st_mode & 0o777 == 0o755
    assert (out / "etc/guestcompat/modules").stat().st_mode & 0o777 == 0o644
    assert (out / "proc").is_dir()


def test_device_node_header(tmp_path: Path) -> None:
    archive = tmp_path / "dev.cpio"
    write_archive([Entry.char_device("/dev/console", 5, 1)], archive)
    listing = cpio(["-t", "-v"], archive).splitlines()
    console = next(line for line in listing if line.endswith("dev/console"))
    assert console.startswith("crw-------")
    raw = archive.read_bytes()
    # busybox does not print device numbers: read the newc header fields.
    members = {name: fields for name, fields in walk_newc(raw)}
    assert (members["dev/console"][9], members["dev/console"][10]) == (5, 1)
    assert members["dev"][1] & 0o170000 == 0o040000
    assert raw.startswith(b"070701")
    assert len(raw) % 512 == 0
    assert b"TRAILER!!!\0" in raw


def test_deterministic_whatever_the_input_order(host_file: Path) -> None:
    entries = sample_entries(host_file)
    a, b = io.BytesIO(), io.BytesIO()
    write_newc(entries, a)
    write_newc(list(reversed(entries)), b)
    assert a.getvalue() == b.getvalue()
    # mtime and uid/gid fields are all zero: headers carry no host state.
    head = a.getvalue()[:110]
    fields = [head[6 + 8 * i: 14 + 8 * i] for i in range(13)]
    assert fields[2] == fields[3] == fields[5] == b"00000000"


@pytest.mark.parametrize("entries", [
    [Entry.file("/a", b"1"), Entry.file("a", b"2")],           # same path twice
    [Entry.file("/a/../../etc/passwd", b"")],                   # escapes the root
    [Entry.file("/a", b""), Entry.file("/a/b", b"")],          # file used as a directory
    [Entry.file("/", b"")],                                     # no name
])
def test_refuses_ambiguous_archives(entries: list[Entry]) -> None:
    with pytest.raises(ImageError):
        write_newc(entries, io.BytesIO())
