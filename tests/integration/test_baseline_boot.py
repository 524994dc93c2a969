"""Baselines for real: record vmware/esxi-6.5 from one boot, boot a profile that moves
its NIC, and `baseline check` must fail with one line naming the move and the rename.
The models are cross-checked against the real tools on the stored baseline (every
other bundled profile is cross-checked on its own boot in test_vmware_family.py,
test_esxi65_boot.py and test_ppc64_boot.py).  2 boots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from guestcompat.detection import models
from guestcompat.harness.baseline import load_fingerprint

pytestmark = pytest.mark.boot

CLI = [sys.executable, "-m", "guestcompat.harness.cli"]


def guestcompat(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=400)


def assert_models_agree_with_real_tools(fp) -> None:
    """The stored (normalised) baseline still carries what every model needs."""
    assert set(models.real_verdicts(fp)) == {"linux", "systemd-detect-virt", "virt-what", "vmware-checkvm"}
    assert [d.line() for d in models.disagreements(fp)] == []
    assert models.windows_checks(fp).result == "vmware"


def test_moved_nic_fails_baseline_check_with_the_move_and_the_rename(tmp_path, profile_dir):
    rec = guestcompat("baseline", "record", "vmware/esxi-6.5", "--dir", "bl", "--timeout", "300", cwd=tmp_path)
    assert rec.returncode == 0, rec.stderr
    stored = tmp_path / "bl" / "vmware" / "esxi-6.5.json"
    assert [p.name for p in stored.parent.iterdir()] == ["esxi-6.5.json"]   # no temp file left
    plain = json.loads(stored.read_text())
    assert all(r["centiseconds"] is None for r in plain["tools"]["runs"].values())
    fp = load_fingerprint(stored)
    assert_models_agree_with_real_tools(fp)

    # the same profile name, edited: ethernet0 moves from 0b:00.0 (slot 192) to 13:00.0 (slot 224)
    profile_dir("moved/nic", """
        extends = "vmware/esxi-6.5"
        description = "esxi-6.5 with its vmxnet3 on another root port"

        [[pci.devices]]
        name = "ethernet0"
        kind = "vmxnet3"
        address = "13:00.0"
        mac = "00:50:56:9a:60:e7"
        """)
    (tmp_path / "bl" / "moved").mkdir()
    (tmp_path / "bl" / "moved" / "nic.json").write_text(stored.read_text())
    chk = guestcompat("baseline", "check", "moved/nic", "--dir", "bl", "--timeout", "300", cwd=tmp_path)
    assert chk.returncode == 1, chk.stdout + chk.stderr
    lines = chk.stdout.splitlines()
    assert "  vmxnet3 (15ad:07b0) moved from 0b:00.0 to 13:00.0" in lines
    assert "  NIC renamed ens192 → ens224 (its PCI function moved from 0b:00.0 to 13:00.0)" in lines
    assert "  physical slot of 0b:00.0 (now 13:00.0): 192 → 224" in lines
    assert not [ln for ln in lines if "disappeared" in ln or "appeared" in ln], lines   # a move, not delete+add


def test_check_without_a_baseline_is_an_error_before_booting(tmp_path):
    res = guestcompat("baseline", "check", "vmware/esxi-6.5", "--dir", "none", cwd=tmp_path)
    assert res.returncode == 2
    assert "error: no baseline at none/vmware/esxi-6.5.json" in res.stderr

