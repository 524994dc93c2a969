"""The .vmx importer: slot numbers to addresses, devices, identity, and what it refuses to guess."""

from __future__ import annotations

from pathlib import Path

import pytest

from guestcompat.errors import ProfileError
from guestcompat.profiles.importers.vmx import import_vmx, parse_vmx, slot_to_address

SAMPLE = Path(__file__).parent.parent / "data" / "esxi67-web01.vmx"


@pytest.mark.parametrize("slot, hw, address", [
    (160, 13, "03:00.0"), (192, 13, "0b:00.0"), (224, 13, "13:00.0"), (256, 13, "1b:00.0"),
    (161, 13, "04:00.0"), (193, 13, "0c:00.0"), (33, 13, "02:01.0"), (34, 13, "02:02.0"),
    (16, 13, "00:10.0"), (17, 4, "00:11.0"),
])
def test_vmware_slot_numbers_map_to_guest_addresses(slot, hw, address):
    assert slot_to_address(slot, hw) == address


def test_slots_outside_vmware_ranges_are_refused():
    with pytest.raises(ValueError, match="outside VMware's slot ranges"):
        slot_to_address(100, 13)
    with pytest.raises(ValueError, match="names no root port function"):
        slot_to_address(160 + 8, 13)


def test_sample_vmx_imports_devices_identity_and_notes():
    result = import_vmx(SAMPLE.read_text(), "imported/web01", str(SAMPLE))
    profile = result.data
    assert result.profile.platform.hardware_version == 14  # the typed, resolved profile
    assert [(d.name, d.controller, d.media) for d in result.profile.disks] == [("sata0-0", "sata0", "cdrom"),
                                                                               ("scsi0-0", "scsi0", "disk")]
    assert profile["extends"] == "vmware/base" and profile["platform"]["hardware_version"] == 14
    assert profile["platform"]["memory_mb"] == 4096 and profile["cpu"] == {"count": 2}
    assert profile["smbios"]["system"]["uuid_bios"] == "42 1d 8a 5e 3c 07 b2 91-6f 4e 0d a3 58 c1 2b 77"
    devices = {d["name"]: d for d in profile["pci"]["devices"]}
    assert devices["ethernet0"] == {"name": "ethernet0", "kind": "vmxnet3", "address": "0b:00.0",
                                    "mac": "00:50:56:ab:12:34"}
    assert devices["ethernet1"]["address"] == "02:01.0" and devices["scsi0"]["address"] == "03:00.0"
    assert [(d["controller"], d.get("media", "disk")) for d in profile["disks"]] == [("sata0", "cdrom"), ("scsi0", "disk")]
    joined = "\n".join(result.notes)
    assert "web01.vmdk" in joined
    # ethernet2 has no pciSlotNumber: placed where ESXi puts the next PCIe NIC (the next free root port)
    assert devices["ethernet2"]["address"] == "13:00.0" and devices["ethernet2"]["placement"] == "predicted"
    assert "placement" not in devices["ethernet0"]
    assert any("ethernet2" in line and "ens224" in line and "predicted" in line for line in result.inferred)
    assert "vmci" not in joined  # part of vmware/base


def test_truncated_or_garbled_vmx_is_a_clear_error():
    with pytest.raises(ProfileError, match="no virtualHW.version"):
        parse_vmx('displayName = "x"\n', "cut.vmx")
    # a cut last line is reported and kept as far as it goes, as VMware reads it (vmx_text.py)
    problems: list[str] = []
    values = parse_vmx('virtualHW.version = "13"\nethernet0.present = "TRU', "cut.vmx", problems)
    assert values["ethernet0.present"] == "TRU"
    assert problems == ["cut.vmx: line 2: ethernet0.present: the value's closing quote is missing; "
                        "the rest of the line is taken as the value"]


def test_efi_vmx_gets_vmware_efi_identity():
    result = import_vmx('virtualHW.version = "20"\nfirmware = "efi"\n', "x")
    assert result.data["platform"]["firmware"] == "efi"
    assert result.data["smbios"]["system"]["product"] == "VMware20,1"
    assert any("EFI firmware build" in n for n in result.notes)
