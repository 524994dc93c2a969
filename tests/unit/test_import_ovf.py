"""OVF descriptors import like the equivalent .vmx; broken XML is a clear error, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guestcompat.errors import GuestcompatError, ProfileError
from guestcompat.profiles.importers.ovf import import_ovf, ovf_settings
from guestcompat.profiles.importers.vmx import DiskPolicy, import_vmx

DATA = Path(__file__).parent.parent / "data"
OVF = (DATA / "esxi67-web01.ovf").read_text()
VMX = (DATA / "esxi67-web01.vmx").read_text()


def test_ovf_and_vmx_of_the_same_vm_give_the_same_profile() -> None:
    from_ovf = import_ovf(OVF, "t/web01", "web01.ovf")
    from_vmx = import_vmx(VMX, "t/web01", "web01.vmx")
    for key in ("extends", "platform", "smbios", "cpu"):
        assert from_ovf.data[key] == from_vmx.data[key], key
    # devices neither descriptor numbers (the SATA controller) are placed by prediction in both; the
    # OVF carries less evidence of the product than the .vmx, so only their being predicted must agree
    assert _read(from_ovf.data["pci"]["devices"]) == _read(from_vmx.data["pci"]["devices"])
    assert [(d["controller"], d["unit"], d.get("media", "disk")) for d in from_ovf.data["disks"]] == \
        [(d["controller"], d["unit"], d.get("media", "disk")) for d in from_vmx.data["disks"]]
    assert ("scsi0", 0, "disk") in [(d["controller"], d["unit"], d.get("media", "disk")) for d in from_ovf.data["disks"]]
    devices = {d["name"]: d for d in from_ovf.data["pci"]["devices"]}
    assert devices["scsi0"] == {"name": "scsi0", "kind": "pvscsi", "address": "03:00.0"}
    assert devices["ethernet0"]["address"] == "0b:00.0" and devices["ethernet0"]["mac"] == "00:50:56:ab:12:34"
    assert devices["ethernet1"]["kind"] == "e1000" and devices["ethernet1"]["address"] == "02:01.0"
    notes = "\n".join(from_ovf.notes)
    assert devices["ethernet2"]["address"] == "13:00.0" and devices["ethernet2"]["placement"] == "predicted"
    assert devices["sata0"]["kind"] == "vmware-sata"             # since issue 20: SATA and its CD-ROM drive
    assert [d.get("media") for d in from_ovf.data["disks"] if d["controller"] == "sata0"] == ["cdrom"]
    assert "ResourceType 20" not in notes and "ResourceType 15" not in notes and "Video card" in notes
    assert from_ovf.data["description"].startswith("imported from OVF web01.ovf")


def test_ovf_disk_reference_reaches_the_vmdk(tmp_path: Path) -> None:
    raw = tmp_path / "src.raw"
    raw.write_bytes(b"ovf-disk" * 65536)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", str(raw),
                    str(tmp_path / "web01-disk1.vmdk")], check=True)
    result = import_ovf(OVF, "t/web01", str(tmp_path / "web01.ovf"), disks=DiskPolicy("attach", base_dir=tmp_path))
    assert _scsi_disk(result.data)["image"] == str((tmp_path / "web01-disk1.vmdk").resolve())
    (tmp_path / "web01-disk1.vmdk").unlink()
    with pytest.raises(ProfileError, match=r"web01.ovf: scsi0:0.fileName: .*no such disk file"):
        import_ovf(OVF, "t/web01", str(tmp_path / "web01.ovf"), disks=DiskPolicy("attach", base_dir=tmp_path))


def test_malformed_ovf_names_file_line_and_column() -> None:
    cut = OVF[: OVF.index("<Item>", OVF.index("<Item>") + 1) + 30]
    with pytest.raises(ProfileError, match=r"^web01.ovf: line \d+, column \d+: not well-formed XML"):
        ovf_settings(cut, "web01.ovf")
    with pytest.raises(ProfileError, match="not an OVF Envelope"):
        ovf_settings("<Envelope/>", "x.ovf")
    with pytest.raises(ProfileError, match="DTD or entity"):
        ovf_settings('<!DOCTYPE x [<!ENTITY a "b">]><x/>', "x.ovf")
    with pytest.raises(ProfileError, match="names no VMware hardware version"):
        ovf_settings(OVF.replace("vmx-14", "virtualbox-2.2"), "x.ovf")
    with pytest.raises(ProfileError, match="no VirtualHardwareSection"):
        ovf_settings(OVF[: OVF.index("<VirtualHardwareSection>")] + "</VirtualSystem></Envelope>", "x.ovf")


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(OVF)), st.integers(0, len(OVF)), st.text(max_size=40))
def test_cut_or_spliced_ovf_never_gives_a_traceback(start: int, end: int, junk: str) -> None:
    text = OVF[:start] + junk + OVF[max(start, end):]
    try:
        import_ovf(text, "t/x", "g.ovf")
    except GuestcompatError as exc:
        assert str(exc).startswith("g.ovf")


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(VMX)), st.text(max_size=40))
def test_cut_or_spliced_vmx_never_gives_a_traceback(cut: int, junk: str) -> None:
    try:
        import_vmx(VMX[:cut] + junk, "t/x", "g.vmx")
    except GuestcompatError as exc:
        assert str(exc).startswith("g.vmx")


def _scsi_disk(data: dict) -> dict:
    """The VM's SCSI disk (the sample also has a SATA CD-ROM drive, imported since issue 20)."""
    return next(d for d in data["disks"] if d["controller"] == "scsi0")


def _read(devices: list[dict]) -> list[dict]:
    """The devices with predicted addresses left out (read facts compared as they are)."""
    return [{k: v for k, v in d.items() if d.get("placement") != "predicted" or k not in ("address", "placement_basis")}
            for d in devices]
