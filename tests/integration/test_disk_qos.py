"""Disk QoS limits reach QEMU and hold inside a booted guest (timed direct I/O within 15%)."""

from __future__ import annotations

import pytest

from guestcompat.emulation.target import Target
from guestcompat.harness.compare import Status
from guestcompat.harness.run import run_profile

pytestmark = pytest.mark.boot

LIMITS = {"bps_read": 4 << 20, "iops_write": 100}


def test_throttled_disk_measures_within_15_percent_of_its_limits(profile_dir):
    profile_dir("t/qos", """
        extends = "vmware/esxi-6.5"
        [[disks]]
        name = "disk0"
        controller = "scsi0"
        limits = { bps_read = 4194304, iops_write = 100 }
    """)
    outcome = run_profile("t/qos", Target("x86_64", "pc", "tcg"), timeout=240)
    assert outcome.passed, [c.line() for c in outcome.checks if c.status is Status.FAIL]
    rates = {r.metric: r for r in outcome.fingerprint.disk_rates}
    assert set(rates) == set(LIMITS)
    for metric, limit in LIMITS.items():
        measured = rates[metric]
        assert measured.device == "sda" and measured.status == 0
        assert abs(measured.value - limit) <= 0.15 * limit, (metric, measured.value, limit)
    checks = {c.selector: c for c in outcome.checks if ".rate." in c.selector}
    assert {c.status for c in checks.values()} == {Status.PASS} and len(checks) == 2
