"""Import from lspci/dmidecode captured in real VMware guests (shared/vmware-captures)."""

from __future__ import annotations


import pytest

from guestcompat.errors import ProfileError
from guestcompat.profiles.importers.capture import import_capture

from detection_support import CAPTURES
LSPCI = (CAPTURES / "fusion-ubuntu2010-jc.lspci.txt").read_text()
DMIDECODE = (CAPTURES / "fusion-centos77-jc.dmidecode.txt").read_text()


def test_fusion_lspci_gives_the_modern_layout_and_its_devices():
    result = import_capture("imported/fusion", lspci=LSPCI)
    profile = result.data
    assert profile["extends"] == "vmware/base"
    assert result.profile.name == "imported/fusion" and result.profile.lineage[-2:] == ("vmware/base", "imported/fusion")
    devices = {d["address"]: d for d in profile["pci"]["devices"]}
    assert devices["02:01.0"]["kind"] == "e1000" and devices["02:01.0"]["physical_slot"] == 33
    # chips QEMU has no model of take the catalogue's nearest kind (same vendor and class) at their address
    assert devices["00:10.0"]["kind"] == "lsilogic" and devices["00:10.0"]["substitute"]["kind"] == "qemu-lsi53c895a"
    assert devices["02:02.0"]["kind"] == "es1371" and devices["02:02.0"]["substitute"]["kind"] == "qemu-es1370"
    assert "QEMU has no ES1371" in devices["02:02.0"]["substitute"]["reason"]
    notes = "\n".join(result.notes)
    # VMware's SATA AHCI: a kind only the patched build presents (stock: its substitute, an omission)
    # a SATA controller may hold the boot disk: every build presents it (stock with QEMU's AHCI ids)
    assert devices["02:05.0"]["kind"] == "vmware-sata" and "substitute" not in devices["02:05.0"]
    assert "slot 'ff:02:05.0': not a PCI address" in notes   # the fixture's deliberately broken record


def test_fusion_dmidecode_gives_identity_with_uuid_bios_from_the_serial():
    smbios = import_capture("imported/fusion", dmidecode=DMIDECODE).data["smbios"]
    assert smbios["version"] == "2.7"
    assert smbios["bios"] == {"vendor": "Phoenix Technologies LTD", "version": "6.00", "date": "04/13/2018",
                              "release": "4.6"}
    assert smbios["system"]["uuid_bios"] == "56 4d fd 28 89 33 f8 e2-64 74 01 59 92 3b 58 0e"
    assert smbios["oem_strings"][0].startswith("[MS_VM_CERT/SHA1/")


def test_empty_or_foreign_text_is_a_clear_error():
    with pytest.raises(ProfileError, match="needs lspci"):
        import_capture("x")
    with pytest.raises(ProfileError, match="not lspci output"):
        import_capture("x", lspci="hello: this is not lspci\n")
    # -v text (another accepted form) whose names pci.ids does not know: imported with the problem named
    result = import_capture("x", lspci="00:00.0 Host bridge: Intel Corporation 440FX\n")
    assert any("line 1: 'Intel Corporation 440FX' names no vendor/device in pci.ids" in n for n in result.notes)


def test_every_nearest_kind_of_the_catalogue_is_presentable_and_of_the_same_class():
    from guestcompat.profiles.catalog import load_catalog

    catalog = load_catalog()
    nearest = {name: k.nearest for name, k in catalog.kinds.items() if k.nearest is not None}
    assert set(nearest) >= {"lsilogic", "es1371", "buslogic"}
    for name, near in nearest.items():
        kind, other = catalog.kinds[name], catalog.kinds[near.kind]
        # no model at all, or one only guestcompat's builds have (another driver than the nearest's)
        assert other.qemu is not None and (kind.qemu is None or kind.qemu.driver != other.qemu.driver), name
        assert (kind.ids.class_code, kind.role) == (other.ids.class_code, other.role), name
    assert catalog.kinds["lsilogic"].ids.vendor == catalog.kinds["qemu-lsi53c895a"].ids.vendor
