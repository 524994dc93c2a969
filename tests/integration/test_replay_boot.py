"""Replay the two real VMware captures for real: import, boot, score, list every deviation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.boot
CAPTURES = Path("/work/shared/vmware-captures")


def test_shared_captures_replay_with_scores_and_every_deviation(tmp_path):
    report = tmp_path / "replay.json"
    proc = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "replay",
                           str(CAPTURES / "fusion-ubuntu2010-jc.lspci.txt"),
                           str(CAPTURES / "fusion-centos77-jc.dmidecode.txt"), "--json", str(report)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    print(proc.stdout)
    assert proc.returncode == 1, proc.stderr[-3000:]          # QEMU cannot be a 440BX/VMware bridge: deviations
    data = json.loads(report.read_text())
    for category in ("placement", "ids", "identity", "detection", "names"):
        score = data["scores"][category]
        assert score["compared"] > 0, category
        listed = [d for d in data["deviations"] if d["category"] == category]
        assert score["compared"] - score["matched"] == len(listed), category   # nothing hidden by a score
        assert f"  {category:<10} " in proc.stdout
    texts = [f"{d['subject']}: {d['source']} → {d['replay']}" for d in data["deviations"]]
    assert len(proc.stdout.split("\n  [")) - 1 == len(texts)
    # Known QEMU gaps show up as deviations...
    assert any(t.startswith("SMBIOS version: '2.7' → '2.8'") for t in texts), texts
    assert any(t.startswith("device of 00:15.0") for t in texts), texts          # QEMU's root port ids
    # ...and what the importer reproduces is matched: the NIC name and VMware's identity strings.
    assert not any(d["category"] == "names" for d in data["deviations"]), texts
    assert not any("System Manufacturer" in t or "System Serial Number" in t or "System UUID" in t
                   for t in texts), texts
    assert data["scores"]["names"]["score"] == 1.0
    assert data["scores"]["detection"]["score"] == 1.0


def test_on_the_patched_build_every_source_function_has_its_class_at_its_address(tmp_path):
    """Issue 10's bar: placement 100 %, ids at or above 90 %. The two chips QEMU has no model of
    (LSI 53c1030, ES1371) are the catalogue's nearest kinds at their addresses, their ids listed."""
    report = tmp_path / "replay.json"
    proc = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "replay",
                           str(CAPTURES / "fusion-ubuntu2010-jc.lspci.txt"),
                           str(CAPTURES / "fusion-centos77-jc.dmidecode.txt"), "--qemu", "patched",
                           "--json", str(report)], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    print(proc.stdout)
    assert proc.returncode == 1, proc.stderr[-3000:]  # identity (SMBIOS 2.8, SeaBIOS's layout) stays below 100 %
    data = json.loads(report.read_text())
    placement, ids = data["scores"]["placement"], data["scores"]["ids"]
    assert placement["matched"] == placement["compared"] >= 50, placement
    assert ids["score"] >= 0.98, ids    # 204/208 measured: the LSI 53c1030 is lsi53c1030 with VMware's ids
    missed = {d["subject"].split(" (")[0] for d in data["deviations"] if d["category"] == "ids"}
    assert missed == {f"{field} of 02:02.0"   # the ES1371: no QEMU model, its nearest kind keeps its own ids
                      for field in ("device", "subsystem vendor", "subsystem device", "revision")}, missed
