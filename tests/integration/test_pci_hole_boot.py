"""The PCI hole below 4 GiB (issue 26): a .vmx's pciHole.start, imported, booted: the guest's e820 map
ends RAM below 4 GiB where VMware puts it (the rest of the RAM above 4 GiB)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from guestcompat.emulation.target import Target
from guestcompat.harness.compare import Status
from guestcompat.harness.run import run_profile

pytestmark = [pytest.mark.boot, pytest.mark.usefixtures("leaves_nothing_behind")]
SAMPLE = Path(__file__).parent.parent / "data" / "esxi67-web01.vmx"
ROOT = Path(__file__).resolve().parents[2]  # this checkout: the CLI subprocess imports its code


def test_imported_pci_hole_start_ends_ram_below_4g_there(tmp_path, monkeypatch):
    text = SAMPLE.read_text()
    assert 'memSize = "4096"' in text
    vmx = tmp_path / "hole.vmx"
    vmx.write_text(text.replace('memSize = "4096"', 'memSize = "768"') + 'pciHole.start = "512"\n')
    proc = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "import", "vmx", str(vmx), "--disks",
                           "blank", "--name", "imported/hole"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "GUESTCOMPAT_PROFILE_PATH": "", "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    written = (tmp_path / "profiles" / "imported" / "hole.toml").read_text()
    assert "pci_hole_start_mb = 512" in written
    monkeypatch.setenv("GUESTCOMPAT_PROFILE_PATH", str(tmp_path / "profiles"))
    outcome = run_profile("imported/hole", Target("x86_64", "pc", "tcg"), timeout=240)
    assert any("max-ram-below-4g=512M" in a for a in outcome.boot.argv)
    check = next(c for c in outcome.checks if c.selector == "kernel.ram_below_4g_mb")
    assert (check.status, check.wanted, check.observed) == (Status.PASS, 512, 512)
    # the other 256 MiB are above 4 GiB
    assert any("BIOS-e820: [mem 0x0000000100000000-0x000000010fffffff] usable" in line
               for line in outcome.fingerprint.kernel_log)
