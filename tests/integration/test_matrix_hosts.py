"""`guestcompat matrix --libvirt URI --libvirt URI` for real: two local libvirt hosts (two embedded
roots, each in its own worker process), every host runs cells, every cell passes, and neither root
keeps a domain or a QEMU afterwards, also when the matrix is interrupted."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from interrupting import wait_for_every_host_started
from qemu_processes import qemu_pids

pytestmark = pytest.mark.boot

GUESTCOMPAT = str(Path(sys.executable).with_name("guestcompat"))
# two ppc64 (VOF, the fastest boots) and two x86_64 SeaBIOS cells
CELLS = ["power/pseries-vscsi", "vmware/esxi-6.0", "power/pseries-pci", "vmware/esxi-5.5"]


def _qemus_using(root: Path) -> list[int]:
    """QEMU processes started by the libvirt driver embedded at ``root`` (their argv names files in it)."""
    return qemu_pids(lambda argv: any(str(root).encode() in a for a in argv))


def _domains_in(root: Path) -> list[str]:
    """Domain definitions (persistent or running) libvirt keeps in an embed root."""
    return [p for p in glob.glob(str(root / "**" / "*.xml"), recursive=True)
            if "/capabilities/" not in p and "/cache/" not in p]


@pytest.fixture
def roots():
    """Two embed roots with short paths (libvirt's monitor sockets live under them; pytest's tmp_path is
    too long for a UNIX socket path, which the runner refuses up front: see the unit tests)."""
    made = [Path(tempfile.mkdtemp(prefix="gch-")) for _ in range(2)]
    yield made
    for root in made:
        shutil.rmtree(root, ignore_errors=True)


def test_a_matrix_spread_over_two_local_libvirt_hosts(tmp_path, roots):
    uris = [f"qemu:///embed?root={r}" for r in roots]
    json_path, junit_path = tmp_path / "m.json", tmp_path / "m.xml"
    began = time.monotonic()
    cli = subprocess.run([GUESTCOMPAT, "matrix", *CELLS, "--libvirt", uris[0], "--libvirt", uris[1],
                          "--jobs-per-host", "1", "--timeout", "240", "--json", str(json_path),
                          "--junit", str(junit_path)], capture_output=True, text=True, timeout=900)
    print(f"2-host matrix of {len(CELLS)} cells: {time.monotonic() - began:.1f} s\n{cli.stdout}")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    doc = json.loads(json_path.read_text())
    assert doc["mode"] == "libvirt" and doc["hosts"] == uris and doc["jobs"] == 1
    assert [(c["profile"], c["verdict"]) for c in doc["cells"]] == [(p, "pass") for p in CELLS]
    hosts = [c["host"] for c in doc["cells"]]
    assert hosts == [uris[0], uris[1], uris[0], uris[1]]  # round-robin: each host ran two cells
    junit = ET.parse(junit_path).getroot()
    assert [p.get("value") for p in junit.iter("property") if p.get("name") == "host"] == hosts
    assert "host" in cli.stdout and all(f"pass on {u}" in cli.stderr for u in uris)
    for root in roots:
        assert (root / "etc" / "qemu.conf").exists()  # the runner prepared the root it was given
        assert not _domains_in(root), "a domain was left defined"
        assert not _qemus_using(root), "a QEMU was left running"


def test_an_unreachable_host_fails_its_cells_only(tmp_path, roots):
    root = roots[0]
    bad = f"qemu+unix:///system?socket={tmp_path}/no-daemon/libvirt-sock"
    json_path = tmp_path / "m.json"
    cli = subprocess.run([GUESTCOMPAT, "matrix", "power/pseries-vscsi", "power/pseries-pci",
                          "--libvirt", f"qemu:///embed?root={root}", "--libvirt", bad, "--timeout", "240",
                          "--json", str(json_path)], capture_output=True, text=True, timeout=600)
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert "Traceback" not in cli.stderr
    good, failed = json.loads(json_path.read_text())["cells"]
    assert (good["verdict"], good["host"]) == ("pass", f"qemu:///embed?root={root}")
    assert (failed["verdict"], failed["host"]) == ("error", bad)
    assert failed["reason"].startswith(f"libvirt host {bad} cannot be reached:") and "no-daemon" in failed["reason"]
    assert not _domains_in(root) and not _qemus_using(root)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_host_matrix_leaves_no_domain_or_qemu(roots, sig):
    # two cells per host: each host's first guest need not overlap the other's (tests/support/interrupting.py)
    proc = subprocess.Popen([GUESTCOMPAT, "matrix", "vmware/esxi-6.0", "vmware/esxi-5.5", "vmware/esxi-6.5",
                             "vmware/esxi-5.1", "--timeout", "240",
                             *(a for r in roots for a in ("--libvirt", f"qemu:///embed?root={r}"))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for_every_host_started(proc, [lambda r=r: _qemus_using(r) for r in roots])
        time.sleep(1)
        # Ctrl-C reaches the whole foreground process group; SIGTERM only the matrix process
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (2, 128 + sig), stderr
    assert "Traceback" not in stderr
    for root in roots:
        assert not _qemus_using(root), "QEMU survived the interrupted matrix"
        assert not _domains_in(root), "a domain survived the interrupted matrix"
