"""Kernel forms: XZ payload extraction and the PVH / ELF checks."""

from __future__ import annotations

import lzma
import os
from pathlib import Path

import pytest

from elf_samples import plain_elf, pvh_elf
from guestcompat.errors import ImageError
from guestcompat.images.kernel import (KERNEL_FORMS, XZ_MAGIC, check_elf, check_pvh,
                                       extract_kernel, has_pvh_note, xz_payload)


def fake_bzimage(elf: bytes) -> bytes:
    """Setup code, a false magic, the XZ stream with x86 BCJ like Linux's, trailing bytes."""
    stream = lzma.compress(elf, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, filters=[
        {"id": lzma.FILTER_X86}, {"id": lzma.FILTER_LZMA2, "preset": 6}])
    return (b"MZ" + os.urandom(3000) + XZ_MAGIC + b"not a stream" + os.urandom(100)
            + stream + b"\0" * 64 + b"~Module signature appended~\n")


def test_xz_payload_finds_the_elf_behind_a_false_magic() -> None:
    elf = pvh_elf()
    assert xz_payload(fake_bzimage(elf)) == elf


def test_xz_payload_ignores_streams_that_are_not_elf() -> None:
    blob = lzma.compress(b"just text", format=lzma.FORMAT_XZ)
    with pytest.raises(ImageError, match="no XZ stream"):
        xz_payload(b"header" + blob)
    with pytest.raises(ImageError, match="no XZ stream"):
        xz_payload(os.urandom(4096).replace(XZ_MAGIC, b""))


def test_pvh_note_positive_on_synthetic_kernel(tmp_path: Path) -> None:
    path = tmp_path / "vmlinux"
    path.write_bytes(pvh_elf())
    assert has_pvh_note(path)
    check_pvh(path)


@pytest.mark.parametrize("source", ["synthetic", "/bin/true"])
def test_pvh_note_negative(tmp_path: Path, source: str) -> None:
    path = Path(source)
    if source == "synthetic":
        path = tmp_path / "plain"
        path.write_bytes(plain_elf())
    check_elf(path)  # a valid ELF ...
    assert not has_pvh_note(path)
    with pytest.raises(ImageError, match="PVH"):  # ... but not bootable through PVH
        check_pvh(path)


def test_not_an_elf(tmp_path: Path) -> None:
    path = tmp_path / "junk"
    path.write_bytes(b"\x7fELF" + b"\xff" * 10)
    with pytest.raises(ImageError):
        check_elf(path)


def fake_package(tmp_path: Path, name: str, content: bytes) -> Path:
    root = tmp_path / "pkg"
    (root / "boot").mkdir(parents=True)
    (root / "boot" / name).write_bytes(content)
    return root


def test_form_pvh_vmlinux(tmp_path: Path) -> None:
    root = fake_package(tmp_path, "vmlinuz-6.1.0-9-amd64", fake_bzimage(pvh_elf()))
    extract_kernel("pvh-vmlinux", root, "6.1.0-9-amd64", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == pvh_elf()


def test_form_pvh_vmlinux_refuses_kernel_without_pvh(tmp_path: Path) -> None:
    root = fake_package(tmp_path, "vmlinuz-6.1.0-9-amd64", fake_bzimage(plain_elf()))
    with pytest.raises(ImageError, match="PVH"):
        extract_kernel("pvh-vmlinux", root, "6.1.0-9-amd64", tmp_path / "out")


def test_form_vmlinux_copies_an_elf(tmp_path: Path) -> None:
    root = fake_package(tmp_path, "vmlinux-6.1.0-9-powerpc64le", plain_elf())
    extract_kernel("vmlinux", root, "6.1.0-9-powerpc64le", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == plain_elf()


def test_form_errors_are_clear(tmp_path: Path) -> None:
    root = fake_package(tmp_path, "vmlinuz-1", b"")
    with pytest.raises(ImageError, match="no /boot/vmlinux-2"):
        extract_kernel("vmlinux", root, "2", tmp_path / "out")
    with pytest.raises(ImageError, match="unknown kernel form 'zImage'"):
        extract_kernel("zImage", root, "1", tmp_path / "out")
    assert set(KERNEL_FORMS) >= {"pvh-vmlinux", "vmlinux"}
