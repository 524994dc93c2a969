"""Physical slot numbers in a booted guest, for every way the SSDT declares them.

esxi-6.5 plus NICs behind the PCI bridge (slot 32 + device, a ``Device`` the
SSDT declares inside the bridge, ens33 on VMware), behind the third root
port group (224) and one on bus 0 with an explicit slot (a ``Scope`` adding
``_SUN`` to the object QEMU's own DSDT declares), and one on bus 0 without
a slot (VMware shows none there; QEMU's ACPI hotplug, switched off, would
give it slot 18). The NICs reuse the esxi-6.5 image (same drivers).
"""

from __future__ import annotations

import pytest

from guestcompat.emulation.target import Target
from guestcompat.harness.compare import Status
from guestcompat.harness.run import RunOutcome, run_profile

pytestmark = pytest.mark.boot

SLOTS = """
extends = "vmware/esxi-6.5"
description = "esxi-6.5 with NICs behind the PCI bridge, a third root port and on bus 0"

[[pci.devices]]
name = "ethernet1"
kind = "vmxnet3"
address = "02:01.0"
mac = "00:50:56:9a:60:e8"

[[pci.devices]]
name = "ethernet2"
kind = "vmxnet3"
address = "13:00.0"
mac = "00:50:56:9a:60:e9"

[[pci.devices]]
name = "ethernet3"
kind = "vmxnet3"
address = "00:10.0"
mac = "00:50:56:9a:60:ea"
physical_slot = 7

[[pci.devices]]
name = "ethernet4"
kind = "vmxnet3"
address = "00:12.0"
mac = "00:50:56:9a:60:eb"
"""


@pytest.fixture(scope="module")
def outcome(tmp_path_factory) -> RunOutcome:
    directory = tmp_path_factory.mktemp("profiles")
    (directory / "t").mkdir()
    (directory / "t" / "slots.toml").write_text(SLOTS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GUESTCOMPAT_PROFILE_PATH", str(directory))
        return run_profile("t/slots", Target("x86_64", "pc", "tcg"), timeout=240)


def test_every_nic_is_in_its_vmware_slot(outcome):
    fp = outcome.fingerprint
    by_nic = {n.pci: fp.pci_function(n.pci).physical_slot for n in fp.net if n.pci}
    assert by_nic == {"0b:00.0": "192", "02:01.0": "33", "13:00.0": "224", "00:10.0": "7", "00:12.0": None}
    assert fp.pci_function("03:00.0").physical_slot == "160"


def test_slot_checks_pass_exactly(outcome):
    checks = {c.selector: c for c in outcome.checks if c.selector.endswith(".physical_slot")}
    for address, slot in (("02:01.0", 33), ("13:00.0", 224), ("00:10.0", 7), ("0b:00.0", 192), ("00:12.0", None)):
        check = checks[f"pci[{address}].physical_slot"]
        assert (check.wanted, check.presented, check.observed, check.status) == (slot, slot, slot, Status.PASS)
    assert outcome.passed, [c.line() for c in outcome.checks if c.status is Status.FAIL]
