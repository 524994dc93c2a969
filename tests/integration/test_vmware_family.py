"""Boot every bundled VMware profile for real; what the guest sees must be what the profile states.

vmware/esxi-6.5 has its own, more detailed module (test_esxi65_boot.py).
Each profile boots once per session (tests/support/shared_boots.py, shared with test_libvirt.py); xdist spreads them over workers.
"""

from __future__ import annotations

import pytest

from shared_boots import direct_boot

from guestcompat.detection import models
from guestcompat.emulation.target import Target
from guestcompat.harness.compare import Status
from guestcompat.harness.run import RunOutcome
from guestcompat.profiles.catalog import load_catalog
from guestcompat.profiles.identity import effective_smbios
from guestcompat.profiles.loader import list_profiles, load

pytestmark = pytest.mark.boot

FAMILY = sorted(s.name for s in list_profiles()
                if s.name.startswith("vmware/") and s.name != "vmware/esxi-6.5" and not load(s.name).abstract)


def booted(name: str) -> RunOutcome:
    return direct_boot(name, Target("x86_64", "pc", "tcg"))


def test_the_family_covers_old_and_new_layouts():
    assert {"vmware/ws-hw4", "vmware/esxi-4.0", "vmware/esxi-6.0", "vmware/workstation-17"} <= set(FAMILY)


@pytest.mark.parametrize("name", FAMILY)
def test_profile_passes_and_guest_sees_its_devices_and_identity(name):
    outcome, profile = booted(name), load(name)
    failures = [c.line() for c in outcome.checks if c.status is Status.FAIL]
    assert outcome.passed, failures
    fp = outcome.fingerprint
    assert "Hypervisor detected: VMware" in fp.hypervisor_lines
    smbios = effective_smbios(profile)
    assert fp.dmi["product_serial"] == smbios.system.serial
    assert fp.dmi["product_uuid"].lower() == smbios.system.uuid
    catalog = load_catalog()
    for device in profile.pci.devices:
        kind = catalog.kinds[device.kind]
        if kind.role != "nic":
            continue
        ids = kind.presented_ids()
        fn = fp.pci_function(device.address)
        assert fn is not None, f"{device.name} missing at {device.address}"
        assert (fn.vendor, fn.device, fn.driver) == (ids.vendor, ids.device, kind.guest_driver)
        assert [n.mac for n in fp.net if n.pci == device.address] == [device.mac]


X86_DETECTORS = {"linux", "systemd-detect-virt", "virt-what", "vmware-checkvm"}


@pytest.mark.parametrize("name", FAMILY)
def test_detection_models_agree_with_the_real_tools(name):
    """Reuses the boot above: every model concludes what the guest's real detector printed."""
    fp = booted(name).fingerprint
    real = models.real_verdicts(fp)
    assert set(real) == X86_DETECTORS, real             # every real detector ran
    assert [d.line() for d in models.disagreements(fp)] == []
    assert real["linux"] == "VMware" and real["systemd-detect-virt"] == "vmware"
    assert models.windows_checks(fp).result == "vmware"


def test_hw4_has_no_bridges_and_its_nic_on_bus_0():
    fp = booted("vmware/ws-hw4").fingerprint
    assert not [f for f in fp.pci if f.secondary_bus is not None and f.address != "00:0e.0"]
    assert fp.pci_function("00:11.0").driver == "pcnet32"


def test_workstation_17_shows_the_2018_bios_uuid_swap():
    fp = booted("vmware/workstation-17").fingerprint
    assert fp.dmi["product_serial"] == "VMware-56 4d fd 28 89 33 f8 e2-64 74 01 59 92 3b 58 0e"
    assert fp.dmi["product_uuid"].lower() == "28fd4d56-3389-e2f8-6474-0159923b580e"


@pytest.mark.parametrize("name, product", [("vmware/esxi-7.0-efi", "VMware7,1"), ("vmware/esxi-8.0-efi", "VMware20,1")])
def test_efi_profiles_boot_through_ovmf_as_vmware_efi(name, product):
    fp = booted(name).fingerprint
    assert [line for line in fp.kernel_log if line.startswith("efi: EFI v")], "the guest did not boot through EFI"
    assert fp.dmi["product_name"] == product and fp.dmi["bios_vendor"] == "VMware, Inc."
    assert fp.dmi["bios_version"].startswith("VMW")
    # EFI encodes the UUID little-endian: the guest shows it in serial order.
    serial = fp.dmi["product_serial"].removeprefix("VMware-").replace(" ", "").replace("-", "")
    assert fp.dmi["product_uuid"].replace("-", "").lower() == serial


def test_bios_profiles_do_not_boot_through_efi():
    assert not [line for line in booted("vmware/esxi-6.0").fingerprint.kernel_log if line.startswith("efi: EFI v")]


def test_lsi_sas_disks_are_a_reported_gap_not_a_silent_one():
    outcome = booted("vmware/esxi-4.0")
    disk_checks = [c for c in outcome.checks if c.selector.startswith("disk[")]
    assert disk_checks and all(c.status is Status.DEVIATION for c in disk_checks)
    assert outcome.fingerprint.block == ()
