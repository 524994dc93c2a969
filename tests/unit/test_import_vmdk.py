"""VMDK import with the real qemu-img: every subformat converts to the same bytes; a missing extent is named."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from guestcompat.errors import DiskImageError, ProfileError
from guestcompat.profiles.importers.vmdk import convert_vmdk, inspect_vmdk
from guestcompat.profiles.importers.vmx import DiskPolicy, import_vmx

SUBFORMATS = ("monolithicSparse", "streamOptimized", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat")
DATA = Path(__file__).parent.parent / "data" / "esxi67-web01.vmx"


@pytest.fixture(scope="module")
def content() -> bytes:
    # 1 MiB with a different byte in every sector and a marker: a conversion that drops or shifts data shows
    return b"guestcompat-vmdk" + b"".join(bytes([i % 251]) * 512 for i in range(2048))[16:]


def make_vmdk(directory: Path, subformat: str, content: bytes) -> Path:
    raw = directory / "src.raw"
    raw.write_bytes(content)
    out = directory / f"{subformat}.vmdk"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", f"subformat={subformat}",
                    str(raw), str(out)], check=True)
    raw.unlink()
    return out


@pytest.mark.parametrize("subformat", SUBFORMATS)
def test_each_subformat_is_inspected_and_converted_exactly(tmp_path: Path, subformat: str, content: bytes) -> None:
    vmdk = make_vmdk(tmp_path, subformat, content)
    info = inspect_vmdk(vmdk)
    assert info.subformat == subformat and info.virtual_size == len(content)
    if subformat in ("monolithicSparse", "streamOptimized"):
        assert info.extents == (vmdk,)
    else:
        assert len(info.extents) == 1 and info.extents[0] != vmdk and info.extents[0].is_file()
    for fmt in ("qcow2", "raw"):
        out = convert_vmdk(vmdk, tmp_path / "out" / f"disk.{fmt}", fmt)
        back = tmp_path / f"back-{fmt}.raw"
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(out), str(back)], check=True)
        assert back.read_bytes() == content
    assert not list((tmp_path / "out").glob(".*tmp*"))


@pytest.mark.parametrize("subformat", ("monolithicFlat", "twoGbMaxExtentSparse"))
def test_missing_extent_is_named_with_its_descriptor_line(tmp_path: Path, subformat: str, content: bytes) -> None:
    vmdk = make_vmdk(tmp_path, subformat, content)
    extent = inspect_vmdk(vmdk).extents[0]
    extent.unlink()
    with pytest.raises(DiskImageError, match=rf"{vmdk.name}: line \d+: extent '{extent.name}' is missing"):
        inspect_vmdk(vmdk)
    with pytest.raises(DiskImageError, match="is missing"):
        convert_vmdk(vmdk, tmp_path / "x.qcow2")
    assert not (tmp_path / "x.qcow2").exists()


def test_not_a_vmdk_and_missing_file_are_clear(tmp_path: Path) -> None:
    raw = tmp_path / "disk.vmdk"
    raw.write_bytes(b"\0" * 4096)
    with pytest.raises(DiskImageError, match="not a VMDK .*'raw'"):
        inspect_vmdk(raw)
    with pytest.raises(DiskImageError, match="no such disk file"):
        inspect_vmdk(tmp_path / "nope.vmdk")
    cut = tmp_path / "cut.vmdk"
    cut.write_text("# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\n")
    with pytest.raises(DiskImageError, match="no extent line"):
        inspect_vmdk(cut)


def _vmx_with(vmdk_name: str) -> str:
    return DATA.read_text().replace('"web01.vmdk"', f'"{vmdk_name}"')


def test_import_vmx_attaches_or_converts_the_disk(tmp_path: Path, content: bytes) -> None:
    make_vmdk(tmp_path, "monolithicFlat", content)
    attached = import_vmx(_vmx_with("monolithicFlat.vmdk"), "t/web01", str(tmp_path / "web01.vmx"),
                          disks=DiskPolicy("attach", base_dir=tmp_path))
    disk = _scsi_disk(attached.data)
    assert disk["controller"] == "scsi0" and disk["image"] == str((tmp_path / "monolithicFlat.vmdk").resolve())
    converted = import_vmx(_vmx_with("monolithicFlat.vmdk"), "t/web01", "web01.vmx",
                           disks=DiskPolicy("convert", base_dir=tmp_path, disk_dir=tmp_path / "disks"))
    image = Path(_scsi_disk(converted.data)["image"])
    assert image == (tmp_path / "disks" / "scsi0-0.qcow2").resolve()
    back = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(image), str(back)], check=True)
    assert back.read_bytes() == content
    blank = import_vmx(_vmx_with("monolithicFlat.vmdk"), "t/web01", "web01.vmx")
    assert "image" not in _scsi_disk(blank.data)
    assert any("blank disk" in n for n in blank.notes)


def test_import_vmx_with_a_missing_extent_names_the_vmx_key(tmp_path: Path, content: bytes) -> None:
    vmdk = make_vmdk(tmp_path, "monolithicFlat", content)
    (tmp_path / "monolithicFlat-flat.vmdk").unlink()
    with pytest.raises(ProfileError, match=r"web01.vmx: scsi0:0.fileName: .*monolithicFlat.vmdk: line \d+: "
                                           r"extent 'monolithicFlat-flat.vmdk' is missing"):
        import_vmx(_vmx_with(vmdk.name), "t/web01", "web01.vmx", disks=DiskPolicy("attach", base_dir=tmp_path))


def _scsi_disk(data: dict) -> dict:
    """The VM's SCSI disk (the sample also has a SATA CD-ROM drive, imported since issue 20)."""
    return next(d for d in data["disks"] if d["controller"] == "scsi0")
