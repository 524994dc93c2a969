"""A dmidecode-only capture pasted the way forums and tickets mangle it (tabs turned to spaces) is
imported and booted: every real tool in the guest must call it VMware, and the imported profile must
pass its own checks.  Before the fix the paste parsed to an empty identity (no ``VMware-`` serial),
the compiler kept the CPUID hypervisor bit, TCG answered 'TCGTCGTCGTCG', and the guest's
systemd-detect-virt said ``qemu`` and virt-what ``vmware,qemu`` (2 mismatches, detection 0-33 %).
One boot (the replay); the import CLI is checked without booting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.boot
SAMPLE = Path(__file__).parent.parent / "data" / "captures" / "fusion.dmidecode-t0123-spaces.txt"


def test_pasted_dmidecode_only_capture_boots_to_a_guest_every_tool_calls_vmware(tmp_path: Path) -> None:
    env = {**os.environ, "GUESTCOMPAT_PROFILE_PATH": ""}
    imported = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "import", "capture", str(SAMPLE),
                               "--name", "imported/fusion"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert imported.returncode == 0, imported.stderr + imported.stdout
    toml = (tmp_path / "profiles" / "imported" / "fusion.toml").read_text()
    assert 'uuid_bios = "56 4d fd 28 89 33 f8 e2-64 74 01 59 92 3b 58 0e"' in toml
    assert "inferred: cpu.model_id: defaulted" in imported.stdout     # no type 4: the base's brand, said so

    report = tmp_path / "replay.json"
    proc = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "replay", str(SAMPLE), "--json",
                           str(report)], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    print(proc.stdout)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]      # 1: QEMU writes SMBIOS 2.8 (identity < 100 %)
    data = json.loads(report.read_text())
    detection = data["scores"]["detection"]
    assert detection["compared"] >= 2 and detection["score"] == 1.0, data["deviations"]
    assert data["run"]["counts"]["fail"] == 0, [c for c in data["run"]["checks"] if c["status"] == "fail"]
    observed = {c["selector"]: c["observed"] for c in data["run"]["checks"]}
    assert observed["tools.systemd_detect_virt"] == "vmware"
    assert observed["tools.virt_what"] == ["vmware"]
    assert observed["kernel.hypervisor"] == "VMware"
    assert data["scores"]["identity"]["matched"] >= 30
