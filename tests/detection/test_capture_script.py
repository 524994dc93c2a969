"""The standalone capture script, run for real: on this host, with tools missing, and in a booted guest."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from guestcompat.detection.capture_script import load_capture_document, render_capture_script
from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.errors import ProbeError


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("capture") / "gc-capture.sh"
    proc = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "capture", "--output", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert path.read_text() == render_capture_script()
    return path


def _host_lspci() -> dict[str, tuple[str, str]]:
    """address -> (vendor, device) from the host's own `lspci -n` (independent of the probe's sysfs walk)."""
    out = subprocess.run(["lspci", "-n"], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"^(\S+) [0-9a-f]{4}: ([0-9a-f]{4}):([0-9a-f]{4})", line)
        assert m, line
        found[m[1]] = (m[2], m[3])
    return found


def _run(script: Path, env: dict[str, str] | None = None) -> tuple[Fingerprint, subprocess.CompletedProcess]:
    proc = subprocess.run(["sh", str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return Fingerprint.from_document(load_capture_document(proc.stdout, "capture")), proc


def test_script_is_posix_sh_and_generated_from_the_probe(script: Path) -> None:
    text = script.read_text()
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    probe_dir = Path(__file__).parents[2] / "detection" / "probe"
    assert (probe_dir / "probe.awk").read_text() in text          # the probe's awk, embedded verbatim
    assert "# --- PCI functions" in text and "@@GUESTCOMPAT-BEGIN" not in text
    assert not script.stat().st_mode & 0o022 and script.stat().st_mode & 0o100


def test_on_this_host_matches_lspci_and_sysfs(script: Path) -> None:
    fp, _ = _run(script)
    assert fp.arch == os.uname().machine and fp.kernel == os.uname().release
    seen = {fn.address: (f"{fn.vendor:04x}", f"{fn.device:04x}") for fn in fp.pci}
    assert seen == _host_lspci() and seen
    assert fp.tools is not None and {d.address for d in fp.tools.lspci} == set(seen)
    dmi_dir = Path("/sys/class/dmi/id")
    if dmi_dir.is_dir():  # this host (a microVM) has no DMI at all: then the capture must say nothing either
        assert fp.dmi.get("sys_vendor") == (dmi_dir / "sys_vendor").read_text().strip()
    else:
        assert fp.dmi == {} and fp.smbios is None
        assert any(e.startswith("tool dmidecode exited with status") for e in fp.probe_errors)
    macs = {p.parent.name: p.read_text().strip() for p in Path("/sys/class/net").glob("*/address")}
    assert {n.name: n.mac for n in fp.net} == macs
    assert fp.cpuid == {} and fp.backdoor is None   # no native helper in a capture


def test_without_lspci_and_dmidecode_degrades_and_says_so(script: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "awk", "od", "wc", "cat", "mktemp", "rm", "id", "dmesg", "uname", "sleep"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    fp, proc = _run(script, env={"PATH": str(bin_dir), "LC_ALL": "C"})
    assert fp.pci, "the sysfs part needs no tool and must still be there"
    missing = {m[1] for e in fp.probe_errors for m in [re.match(r"capture: (\S+) not found on PATH", e)] if m}
    assert missing == {"lspci", "dmidecode", "systemd-detect-virt", "virt-what", "vmware-checkvm", "udevadm"}
    assert fp.tools is None or not fp.tools.runs
    assert proc.stdout.lstrip().startswith('{"format":"guestcompat-probe"')


def test_truncated_capture_is_a_clear_error(script: Path) -> None:
    fp_text = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=True).stdout
    with pytest.raises(ProbeError, match=r"cap.json: line \d+: not valid JSON .*truncated capture"):
        load_capture_document(fp_text[: len(fp_text) // 2], "cap.json")
    with pytest.raises(ProbeError, match="not a guestcompat probe document"):
        load_capture_document('{"format": "something-else"}', "x.json")


def test_capture_json_feeds_import_and_replay(script: Path, tmp_path: Path) -> None:
    from guestcompat.harness.replay import load_sources

    capture = tmp_path / "capture.json"
    capture.write_text(subprocess.run(["sh", str(script)], capture_output=True, text=True, check=True).stdout)
    source = load_sources((capture,))
    assert source.lspci is not None and "Slot:" in source.lspci
    assert {d.address for d in source.fingerprint.tools.lspci} == set(_host_lspci())
    proc = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "import", "capture", "--fingerprint",
                           str(capture), "--name", "imported/host"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "GUESTCOMPAT_PROFILE_PATH": ""})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "profiles" / "imported" / "host.toml").is_file()
    assert "compiles for x86_64/pc/tcg" in proc.stdout
