"""The QEMU-upgrade questions, booted: QEMU 10.0 (Debian's bookworm-backports release, and our series
on it; both made by `make setup`) against the machine's 7.2.

Does upgrading QEMU change what my guests see? The same profile booted on 7.2 and on 10.0 must
give the same normalised fingerprint (the baseline a CI job records on one and checks on the
other), NIC names included: QEMU 10.0's DSDT declares more PCI objects than 7.2's, which once
made the slot table drop and ``ens192`` come up as ``enp11s0``. Does a live migration from 7.2
to 10.0 keep it? The guest is probed again on the 10.0 side after the move.
"""

from __future__ import annotations

import pytest

from shared_boots import direct_boot

from guestcompat.detection.diff import diff
from guestcompat.emulation.capabilities import capabilities_for
from guestcompat.emulation.target import Target
from guestcompat.harness.baseline import normalized
from guestcompat.harness.compare import Status
from guestcompat.harness.migrate import migrate_profile
from guestcompat.harness.observe import observe

pytestmark = pytest.mark.boot

QEMU_7_2 = Target("x86_64", "pc", "tcg", qemu_binary="7.2")
QEMU_10_0 = Target("x86_64", "pc", "tcg", qemu_binary="10.0")
PATCHED_7_2 = Target("x86_64", "pc", "tcg", qemu_binary="patched")
PATCHED_10_0 = Target("x86_64", "pc", "tcg", qemu_binary="10.0-patched")


@pytest.mark.parametrize(("old", "new"), [(QEMU_7_2, QEMU_10_0), (PATCHED_7_2, PATCHED_10_0)],
                         ids=["stock", "patched"])
def test_upgrading_qemu_7_2_to_10_0_leaves_the_guests_machine_unchanged(old, new):
    before, after = direct_boot("vmware/esxi-6.5", old), direct_boot("vmware/esxi-6.5", new)
    assert capabilities_for(before.compiled.argv[0]).version.startswith("7.2.")
    assert capabilities_for(after.compiled.argv[0]).version.startswith("10.0.")
    assert after.passed, [c.line() for c in after.checks if c.status is Status.FAIL]
    assert not diff(normalized(before.fingerprint), normalized(after.fingerprint))
    assert observe(after.fingerprint, "net[0b:00.0].name") == "ens192"  # the slot table loaded whole on 10.0
    assert observe(after.fingerprint, "pci[0b:00.0].physical_slot") == 192


def test_our_series_on_10_0_presents_what_it_presents_on_7_2():
    outcome = direct_boot("vmware/esxi-6.5", PATCHED_10_0)
    fp = outcome.fingerprint
    seen = {f.address: (f.vendor, f.device) for f in fp.pci}
    assert seen["00:00.0"] == (0x8086, 0x7190) and seen["00:07.0"] == (0x8086, 0x7110)
    assert seen["00:11.0"] == (0x15AD, 0x0790) and seen["00:15.0"] == (0x15AD, 0x07A0)
    assert seen["00:07.7"] == (0x15AD, 0x0740)
    assert observe(fp, "cpuid.hypervisor_signature") == "VMwareVMware"
    assert observe(fp, "kernel.vmware_tsc_from_hypervisor") is True
    assert observe(fp, "tools.vmware_checkvm") is True
    deviations = [c for c in outcome.checks if c.status is Status.DEVIATION]
    assert len(deviations) == len([c for c in direct_boot("vmware/esxi-6.5", PATCHED_7_2).checks
                                   if c.status is Status.DEVIATION])


def test_live_migration_from_7_2_to_10_0_keeps_the_machine(leaves_nothing_behind):
    outcome = migrate_profile("vmware/esxi-6.5", QEMU_7_2, dest_qemu="10.0", timeout=240)
    assert outcome.unchanged, [c.text for c in outcome.changes]
    assert outcome.stats.status == "completed"
    assert outcome.source_status == "postmigrate"
    assert "RESUME" in outcome.events["destination"]


@pytest.mark.parametrize(("profile", "driver"), [("vmware/esxi-5.0", "lsi53c1030"), ("vmware/esxi-4.0", "mptsas1068")],
                         ids=["lsilogic", "lsisas1068"])
def test_a_disk_on_the_series_lsi_controllers_migrates_from_7_2_to_10_0(profile, driver, leaves_nothing_behind):
    """Issue 20: the 53C1030 personality and the SAS topology option migrate between the patched
    releases (one vmstate in both series) and the guest keeps its disk at the same unit."""
    outcome = migrate_profile(profile, PATCHED_7_2, dest_qemu="10.0-patched", timeout=240)
    assert any(a.startswith(f"{driver},") for a in outcome.source_argv), outcome.source_argv
    assert outcome.unchanged, [c.text for c in outcome.changes]
    assert outcome.stats.status == "completed"
    assert [b for b in outcome.after.block if b.pci and b.pci.endswith(("00:10.0", "03:00.0")) and b.media == "disk"]
