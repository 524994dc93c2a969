"""VM-wide I/O limits (issue 26): one throttle group shared by two disks, measured in a booted guest by
reading both disks at once: their sum holds the VM's limit (each alone would be allowed all of it)."""

from __future__ import annotations

import pytest

from guestcompat.emulation.target import Target
from guestcompat.harness.compare import Status
from guestcompat.harness.run import run_profile

pytestmark = [pytest.mark.boot, pytest.mark.usefixtures("leaves_nothing_behind")]

LIMIT = 4 << 20


def test_two_disks_sharing_the_vm_limit_sum_within_it(profile_dir):
    profile_dir("t/vmlimits", f"""
        extends = "vmware/esxi-6.5"
        [limits]
        bps_read = {LIMIT}
        [[disks]]
        name = "disk1"
        controller = "scsi0"
        unit = 1
        size_mb = 1024
        vendor = "VMware"
        model = "Virtual disk"
        revision = "2.0"
    """)
    outcome = run_profile("t/vmlimits", Target("x86_64", "pc", "tcg"), timeout=240)
    assert outcome.passed, [c.line() for c in outcome.checks if c.status is Status.FAIL]
    argv = " ".join(outcome.boot.argv)
    assert argv.count("throttle-group=throttle-vm") == 2 and argv.count("-object throttle-group") == 1
    rates = outcome.fingerprint.disk_rates
    assert {r.device for r in rates} == {"sda", "sdb"} and {r.group for r in rates} == {0}
    assert all(r.status == 0 for r in rates)
    moved = sum(r.count * r.block_size for r in rates)
    seconds = max(r.centiseconds for r in rates) / 100
    assert abs(moved / seconds - LIMIT) <= 0.15 * LIMIT, (moved, seconds)
    check = next(c for c in outcome.checks if c.selector == "limits.bps_read")
    assert check.status is Status.PASS and abs(check.observed - LIMIT) <= 0.15 * LIMIT
