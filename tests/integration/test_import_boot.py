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
    assert "inferred: pci.devices[ethernet2].address = 13:00.0: predicted" in proc.stdout
    assert (tmp_path / "profiles" / "imported" / "web01.toml").is_file()
    monkeypatch.setenv("GUESTCOMPAT_PROFILE_PATH", str(tmp_path / "profiles"))
    outcome = run_profile("imported/web01", Target("x86_64", "pc", "tcg"), timeout=240)
    assert outcome.passed, [c.line() for c in outcome.checks if c.status is Status.FAIL]
    names = {c.selector: c.observed for c in outcome.checks if c.selector.startswith("net[")}
    assert names == {"net[0b:00.0].name": "ens192", "net[02:01.0].name": "ens33", "net[13:00.0].name": "ens224"}


def test_imported_vmx_attaches_its_vmdk_on_the_named_controller(tmp_path, monkeypatch):
    """scsi0:0.fileName (a descriptor + flat extent VMDK) reaches the guest as a disk behind the pvscsi
    controller at VMware's address, read through QEMU's vmdk driver."""
    raw = tmp_path / "src.raw"
    raw.write_bytes(b"guestcompat" * 100000)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicFlat",
                    str(raw), str(tmp_path / "web01.vmdk")], check=True)
    vmx = tmp_path / "web01.vmx"
    vmx.write_text(SAMPLE.read_text())
    proc = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "import", "vmx", str(vmx),
                           "--name", "imported/web01"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "GUESTCOMPAT_PROFILE_PATH": ""})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    toml = (tmp_path / "profiles" / "imported" / "web01.toml").read_text()
    assert f'image = "{(tmp_path / "web01.vmdk").resolve()}"' in toml
    monkeypatch.setenv("GUESTCOMPAT_PROFILE_PATH", str(tmp_path / "profiles"))
    outcome = run_profile("imported/web01", Target("x86_64", "pc", "tcg"), timeout=240)
    assert any("driver=vmdk" in arg for arg in outcome.compiled.argv)
    disks = [(b.pci, b.vendor, b.model) for b in outcome.fingerprint.block if b.pci]
    # the pvscsi disk, and the SATA CD-ROM drive the VM has (imported since issue 20: QEMU's ATAPI
    # INQUIRY strings, a known deviation)
    assert disks == [("03:00.0", "VMware", "Virtual disk"), ("02:02.0", "QEMU", "QEMU DVD-ROM")], disks
    assert outcome.passed, [c.line() for c in outcome.checks if c.status is Status.FAIL]
