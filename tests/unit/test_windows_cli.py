"""`guestcompat windows` end to end (exit status, text, JSON, JUnit, errors), on a real boot's fingerprint."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PATCHED = "tests/data/windows/boots/esxi-6.5-patched.fingerprint.json"
FOREST = "tests/data/windows/forest-server2016-esxi-efi.wmi.md"


def gc(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os
    return subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "windows", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, env={**os.environ, **(env or {})})


def test_profile_against_a_patched_boot_boots_and_names_the_two_new_devices(tmp_path):
    done = gc("vmware/esxi-6.5", "--against", PATCHED, "--junit", str(tmp_path / "w.xml"), "--json", str(tmp_path / "w.json"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("BOOTS: 40 same, 2 new (2 driver present, 0 driver missing), 0 gone")
    doc = json.loads((tmp_path / "w.json").read_text())
    new = sorted(d["target"]["address"] for d in doc["devices"] if d["status"] == "new")
    assert new == ["03:00.0", "0b:00.0"] and doc["boot"]["boots"] is True and doc["exit_code"] == 0
    suite = ET.parse(tmp_path / "w.xml").getroot()
    assert suite.get("failures") == "0" and int(suite.get("tests")) == 43


def test_the_nic_gate_fails_when_a_nic_loses_its_settings():
    done = gc("vmware/esxi-6.5", "--against", PATCHED, "--fail-on", "nic", "--format", "json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["nics_losing_settings"][0]["where"] == "0b:00.0"


def test_virtio_conversion_without_drivers_is_0x7b_and_exit_1():
    done = gc("esxi65-win2019", "--against", "esxi65-win2019-virtio", env={"GUESTCOMPAT_PROFILE_PATH": "examples/windows"})
    assert done.returncode == 1, done.stderr
    assert "DOES NOT BOOT (0x7B)" in done.stdout and "vioscsi (virtio-win)" in done.stdout


def test_view_of_a_windows_capture_keeps_its_real_ids():
    done = gc(FOREST, "--view", "--windows", "2016")
    assert done.returncode == 0, done.stderr
    assert r"PCI\VEN_1000&DEV_0054&SUBSYS_197615AD&REV_01\4&2732702B&0&00A8" in done.stdout
    assert "boot chain (controller first): 03:00.0 <- 00:15.0" in done.stdout


def test_bad_input_is_one_error_line_and_exit_2(tmp_path):
    missing = gc("no/such-profile.json")
    assert missing.returncode == 2 and "error:" in missing.stderr and "Traceback" not in missing.stderr
    junk = tmp_path / "junk.txt"
    junk.write_text("not a capture at all\n")
    bad = gc(str(junk))
    assert bad.returncode == 2 and "not a capture this tool reads" in bad.stderr and "Windows PnP listing" in bad.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "guestcompat-fingerprint", "version": 1, "pci": 3')
    assert gc("vmware/esxi-6.5", "--against", str(broken)).returncode == 2


def test_run_and_replay_reports_carry_the_windows_verdict_only_for_windows(monkeypatch):
    from guestcompat.harness.baseline import load_fingerprint
    from guestcompat.harness.windows_cli import report_lines, verdict_for_replay, verdict_for_run
    from guestcompat.profiles.importers.forms import read_files
    from guestcompat.profiles.loader import load

    fp = load_fingerprint(ROOT / PATCHED)
    assert verdict_for_run(load("vmware/esxi-6.5"), fp) is None                 # guest.os debian-12
    monkeypatch.setenv("GUESTCOMPAT_PROFILE_PATH", str(ROOT / "examples" / "windows"))
    windows = verdict_for_run(load("esxi65-win2019"), fp)                      # LSI SAS source, pvscsi guest
    assert windows is not None and windows.target.windows.name == "2019"
    assert windows.boot.boots is False and "LSI_SAS" in windows.boot.steps[0].rule
    assert report_lines(windows)[1].startswith("Windows view of this move")
    captures = (ROOT / FOREST,)
    replayed = verdict_for_replay(captures, read_files(captures), fp)
    assert replayed is not None and replayed.source.machine.label.startswith("Windows capture")
    lspci = (ROOT / "tests" / "data" / "captures" / "esxi65.lspci-nnmmv.txt",)
    assert verdict_for_replay(lspci, read_files(lspci), fp) is None             # a Linux capture: no Windows view


def test_what_the_patched_build_changes_for_windows_on_real_boots():
    """Two real boots of vmware/esxi-6.5: stock QEMU renames nearly the whole machine for Windows, the patched
    build keeps every instance but the two serial-number devices (no PCI Express config access on pc)."""
    stock = gc("vmware/esxi-6.5", "--against", "tests/data/windows/boots/esxi-6.5-stock.fingerprint.json")
    patched = gc("vmware/esxi-6.5", "--against", PATCHED)
    assert stock.stdout.splitlines()[-1].startswith("BOOTS: 1 same, 40 new (40 driver present, 0 driver missing), 1 gone")
    assert patched.stdout.splitlines()[-1].startswith("BOOTS: 40 same, 2 new")


def test_injected_virtio_drivers_boot_the_virtio_conversion():
    done = gc("esxi65-win2019", "--against", "esxi65-win2019-virtio", "--injected", "virtio-win",
              env={"GUESTCOMPAT_PROFILE_PATH": "examples/windows"})
    assert done.returncode == 0, done.stdout
    assert "injected as boot start" in done.stdout and done.stdout.splitlines()[-1].startswith("BOOTS: 1 same, 40 new")


def test_baseline_check_of_a_windows_profile_gets_the_windows_verdict(monkeypatch, tmp_path):
    from guestcompat.harness.baseline import load_fingerprint
    from guestcompat.harness.windows_cli import verdict_for_baseline

    monkeypatch.setenv("GUESTCOMPAT_PROFILE_PATH", str(ROOT / "examples" / "windows"))
    stock = load_fingerprint(ROOT / "tests/data/windows/boots/esxi-6.5-stock.fingerprint.json")
    result = verdict_for_baseline("esxi65-win2019", ROOT / PATCHED, stock)      # patched baseline, stock boot
    assert result is not None and result.count("new") == 40 and result.count("gone") == 1
    assert verdict_for_baseline("vmware/esxi-6.5", ROOT / PATCHED, stock) is None


def test_baseline_against_baseline_and_the_view_as_json():
    """Two fingerprint files (what `diff` compares): the Windows verdict of going from the stock boot to the
    patched one; and the JSON view of one machine."""
    done = gc("tests/data/windows/boots/esxi-6.5-stock.fingerprint.json", "--against", PATCHED, "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["format"] == "guestcompat-windows-verdict" and doc["boot"]["boots"] is True
    vmci = next(d for d in doc["devices"] if d["target"] and d["target"]["address"] == "00:07.7")
    assert vmci["status"] == "new" and vmci["source"] is None          # stock QEMU had no VMCI
    assert sum(d["status"] == "same" for d in doc["devices"]) == 1       # only the SVGA adapter
    view = gc("vmware/esxi-6.5", "--view", "--format", "json")
    plain = json.loads(view.stdout)
    nic = next(d for d in plain["devices"] if d["address"] == "0b:00.0")
    assert nic["form"] == "serial" and nic["serial"] == "FF565000E7609AFE" and nic["driver"]["service"] == "vmxnet3ndis6"
    assert plain["boot_chain"] == ["scsi0", "pciBridge4-0"]


def test_a_linux_capture_is_a_source_too():
    done = gc("tests/data/captures/esxi65.lspci-nnmmv.txt", "--against", PATCHED)
    assert done.returncode == 0, done.stderr
    assert "source: profile esxi65.lspci-nnmmv" in done.stdout


def test_junit_failures_follow_the_gate(tmp_path):
    for gate, failures in (("boot", "0"), ("nic", "1")):
        path = tmp_path / f"{gate}.xml"
        gc("vmware/esxi-6.5", "--against", PATCHED, "--fail-on", gate, "--junit", str(path))
        assert ET.parse(path).getroot().get("failures") == failures, gate
