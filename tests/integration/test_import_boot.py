"""Import a .vmx with the CLI, then boot the written profile: NICs sit where VMware put them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from guestcompat.emulation.target import Target
from guestcompat.harness.compare import Status
from guestcompat.harness.run import run_profile

pytestmark = pytest.mark.boot
SAMPLE = Path(__file__).parent.parent / "data" / "esxi67-web01.vmx"


def test_imported_vmx_boots_with_vmware_placement_and_names(tmp_path, monkeypatch):
    proc = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "import", "vmx", str(SAMPLE), "--disks", "blank",
                           "--name", "imported/web01"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "GUESTCOMPAT_PROFILE_PATH": ""})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "not reproduced: ethernet2: no pciSlotNumber" in proc.stdout
    assert (tmp_path / "profiles" / "imported" / "web01.toml").is_file()
    monkeypatch.setenv("GUESTCOMPAT_PROFILE_PATH", str(tmp_path / "profiles"))
    outcome = run_profile("imported/web01", Target("x86_64", "pc", "tcg"), timeout=240)
    assert outcome.passed, [c.line() for c in outcome.checks if c.status is Status.FAIL]
    names = {c.selector: c.observed for c in outcome.checks if c.selector.startswith("net[")}
    assert names == {"net[0b:00.0].name": "ens192", "net[02:01.0].name": "ens33"}
