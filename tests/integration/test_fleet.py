"""A fleet for real: two libvirtd daemons (tests/support/libvirt_daemons.py), one on this machine over its
unix socket and one in a network namespace over ``qemu+tcp://``, sharing no path with each other or with
guestcompat (guestcompat's cache and /tmp are hidden from both): images go over the storage API, the
console comes back over libvirt. Killing the second daemon mid-run fails its share only; the next matrix on
the returned host destroys the domain it kept running, and ``fleet clean`` leaves neither host a domain,
a volume or a QEMU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from interrupting import wait_for_every_host_started
from libvirt_daemons import local_daemon, namespace_daemon

from guestcompat.harness import libvirt_owner as owner

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("fleet")]

GUESTCOMPAT = str(Path(sys.executable).with_name("guestcompat"))
# two ppc64 (VOF: the fastest boots; console through a downloaded volume) and two x86_64 SeaBIOS cells
# (console through virDomainOpenConsole)
CELLS = ["power/pseries-vscsi", "vmware/esxi-6.0", "power/pseries-pci", "vmware/esxi-5.5"]
POOL_DIR = "/var/lib/libvirt/images/guestcompat"


@pytest.fixture
def fleet():
    with local_daemon() as a, namespace_daemon() as b:
        yield a, b


def _leftovers(uri: str) -> tuple[list[str], list[str]]:
    """Domains of any name, and guestcompat's storage pool if it is still defined."""
    conn = libvirt.open(uri)
    try:
        return [d.name() for d in conn.listAllDomains(0)], [p.name() for p in conn.listAllStoragePools(0)]
    finally:
        conn.close()


def _matrix(uris, *extra: str) -> list[str]:
    return [GUESTCOMPAT, "matrix", *CELLS, *(a for u in uris for a in ("--libvirt", u)), "--jobs-per-host", "1",
            "--timeout", "180", *extra]


def _clean(*uris: str) -> str:
    cli = subprocess.run([GUESTCOMPAT, "fleet", "clean", *uris], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    return cli.stdout


def test_a_matrix_on_a_local_and_a_namespace_daemon_sharing_no_path(tmp_path, fleet):
    a, b = fleet
    json_path, junit_path = tmp_path / "m.json", tmp_path / "m.xml"
    began = time.monotonic()
    cli = subprocess.run(_matrix([a.uri, b.uri], "--json", str(json_path), "--junit", str(junit_path)),
                         capture_output=True, text=True, timeout=900)
    print(f"fleet matrix of {len(CELLS)} cells on 2 daemons: {time.monotonic() - began:.1f} s\n{cli.stdout}")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    doc = json.loads(json_path.read_text())
    assert [(c["profile"], c["verdict"]) for c in doc["cells"]] == [(p, "pass") for p in CELLS]
    assert [c["host"] for c in doc["cells"]] == [a.uri, b.uri, a.uri, b.uri]
    assert [c["host_name"] for c in doc["cells"]] == ["gc-local", "gc-namespace"] * 2
    assert all(c["qemu_build"].startswith(("qemu-system-ppc64 7.2.", "qemu-system-x86_64 7.2.")) for c in doc["cells"])
    assert [(h["uri"], h["hostname"], h["jobs"]) for h in doc["host_info"]] == \
        [(a.uri, "gc-local", 1), (b.uri, "gc-namespace", 1)]
    props = [{p.get("name"): p.get("value") for p in case.iter("property")}
             for case in ET.parse(junit_path).getroot().iter("testcase")]
    assert [p["host_name"] for p in props] == ["gc-local", "gc-namespace"] * 2 and all("qemu_build" in p for p in props)
    # each host got its own copies, named by content, in its own pool: the same path inside each
    # daemon's namespace, two different directories on this machine (neither visible to the other)
    for daemon in (a, b):
        files = sorted(p.name for p in (daemon.state / "lib" / "images" / "guestcompat").iterdir())
        assert len(files) >= 3 and all(len(f.split(".")[0]) == 64 for f in files), files  # a kernel, 2 initrds (+ tables)
        conn = libvirt.open(daemon.uri)
        vols = conn.storagePoolLookupByName("guestcompat").listAllVolumes(0)
        assert {v.path() for v in vols} == {f"{POOL_DIR}/{f}" for f in files}  # no run's scratch volume is left
        conn.close()
    assert _clean(a.uri, b.uri).count(": 0 domains destroyed and undefined") == 2
    for daemon in (a, b):
        assert _leftovers(daemon.uri) == ([], [])
        assert not daemon.qemus()
        assert not (daemon.state / "lib" / "images" / "guestcompat").exists()


def test_a_daemon_killed_mid_run_fails_its_share_and_fleet_clean_removes_what_it_left(tmp_path, fleet):
    a, b = fleet
    json_path = tmp_path / "m.json"
    proc = subprocess.Popen(_matrix([a.uri, b.uri], "--json", str(json_path)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not b.guests():  # the namespace host's first guest is running
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the namespace daemon never started QEMU"
            time.sleep(0.1)
        time.sleep(1)  # past libvirt's start of the domain: the run is waiting for the guest's fingerprint
        b.kill()  # the host disappears; the guest it started keeps running, as on a real host
        _, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, stderr
    assert "Traceback" not in stderr
    cells = json.loads(json_path.read_text())["cells"]
    assert [(c["host"], c["verdict"]) for c in cells] == [(a.uri, "pass"), (b.uri, "error")] * 2
    lost, never = cells[1]["reason"], cells[3]["reason"]
    assert lost.startswith(f"on libvirt host {b.uri}: libvirt host {b.uri} stopped answering during the run"), lost
    assert never.startswith(f"on libvirt host {b.uri}: cannot open libvirt connection {b.uri}"), never
    b.start()  # the host returns: its daemon finds the domain it was running
    (left,), _pools = _leftovers(b.uri)
    assert owner.stale(left), left  # started from this machine by a process that is gone
    again = subprocess.run([GUESTCOMPAT, "matrix", "power/pseries-vscsi", "--libvirt", b.uri, "--timeout", "180"],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (f"libvirt host {b.uri}: destroyed and undefined 1 domain(s) left by guestcompat runs that are gone: "
            f"{left}") in again.stderr, again.stderr  # the progress lines
    assert _leftovers(b.uri)[0] == []  # the next matrix on the returned host removed it
    out = _clean(a.uri, b.uri)
    assert f"{b.uri}: 0 domains destroyed and undefined" in out, out
    for daemon in (a, b):
        assert _leftovers(daemon.uri) == ([], [])
        assert not daemon.qemus()


def test_a_cell_goes_only_where_its_qemu_is_installed(fleet):
    """guestcompat's patched QEMU lives in its cache, which the namespace host cannot see: the capability
    probe says so and the cell is placed on the local host (no guest is booted here)."""
    from guestcompat.harness.fleet import place
    from guestcompat.harness.matrix_hosts import probe_hosts
    from guestcompat.harness.matrix_plan import plan

    a, b = fleet
    planned = plan(["vmware/esxi-6.5", "vmware/esxi-6.0"], qemu_binaries=["patched", "stock"])
    runnable = {i: None for i, p in enumerate(planned) if p.compiled is not None}
    assert len(runnable) == 4, [p.error or p.skip_reason for p in planned]
    hosts = probe_hosts(planned, runnable, [a.uri, b.uri], None)
    assert [(h.hostname, h.cpus, h.error) for h in hosts] == [("gc-local", os.cpu_count(), None),
                                                            ("gc-namespace", os.cpu_count(), None)]
    assert all(1 <= h.jobs <= h.cpus and h.free_mib > 0 for h in hosts)
    patched = planned[0].compiled.argv[0]
    assert not hosts[0].cannot and list(hosts[1].cannot) == [(patched, "x86_64", "pc", "qemu")]
    assert patched in hosts[1].cannot[(patched, "x86_64", "pc", "qemu")]
    shares, unplaceable = place(sorted(runnable), planned, hosts)
    assert not unplaceable
    assert shares == {a.uri: [0, 2], b.uri: [1, 3]}  # the patched cells (0, 2) on the host that has the build


def test_uploads_are_reused_by_content_and_a_half_written_volume_is_replaced(tmp_path, monkeypatch):
    """The storage API alone (no guest): one volume per content, found again by name; a volume created
    but never filled (an upload that was interrupted) is waited for, then uploaded anew."""
    from guestcompat.harness import libvirt_storage as storage

    payload = tmp_path / "kernel"
    payload.write_bytes(os.urandom(3 << 20))
    monkeypatch.setattr(storage, "UPLOAD_WAIT", 1.0)
    with local_daemon() as a:
        conn = libvirt.open(a.uri)
        try:
            pool = storage.pool(conn, a.uri)
            first = storage.ship(conn, a.uri, pool, payload)
            again = storage.ship(conn, a.uri, pool, payload)
            assert first.uploaded and not again.uploaded and first.path == again.path
            assert first.path == f"{POOL_DIR}/{storage.digest(payload)}"
            host_copy = a.state / "lib" / "images" / "guestcompat" / storage.digest(payload)
            assert host_copy.read_bytes() == payload.read_bytes()
            pool.storageVolLookupByName(storage.digest(payload)).delete(0)
            storage.scratch(pool, a.uri, storage.digest(payload), payload.stat().st_size)  # sparse, never written
            began = time.monotonic()
            redone = storage.ship(conn, a.uri, pool, payload)
            assert redone.uploaded and 1.0 <= time.monotonic() - began < 10
            assert host_copy.read_bytes() == payload.read_bytes()
        finally:
            conn.close()
        assert "1 volumes deleted, removed the guestcompat pool" in _clean(a.uri)


def test_an_interrupted_fleet_matrix_leaves_no_domain_or_scratch_volume(fleet):
    a, b = fleet
    # two cells per host: each host's first guest need not overlap the other's (tests/support/interrupting.py)
    proc = subprocess.Popen(_matrix([a.uri, b.uri]), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_every_host_started(proc, [a.guests, b.guests])
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (2, 143), stderr
    assert "Traceback" not in stderr
    for daemon in (a, b):
        domains, _pools = _leftovers(daemon.uri)
        assert domains == [] and not daemon.guests()
        left = sorted(p.name for p in (daemon.state / "lib" / "images" / "guestcompat").iterdir())
        assert left and all(not name.startswith("guestcompat-") for name in left), left  # only the shared uploads
    _clean(a.uri, b.uri)


def _define(conn, name: str) -> None:
    conn.defineXML(f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>"
                   "<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>")


def test_a_sweep_removes_only_the_domains_of_this_machines_dead_runs():
    """What a returned host's next matrix removes (libvirt_owner.sweep), and what a worker whose host
    came back removes of its own (remove_own), on a real daemon: never a live run's, another
    machine's or a foreign domain."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with local_daemon() as a:
        conn = libvirt.open(a.uri)
        try:
            gone = owner.domain_name("deadrun1", pid=dead.pid)
            live = owner.domain_name("liverun1")  # this process: alive
            other_machine = f"guestcompat-{'0' * 8 if owner.machine_tag() != '0' * 8 else '1' * 8}-{dead.pid}-x"
            for name in (gone, live, other_machine, "somebody-elses-vm"):
                _define(conn, name)
            assert owner.sweep(conn) == [gone]
            assert sorted(d.name() for d in conn.listAllDomains(0)) == sorted([live, other_machine,
                                                                              "somebody-elses-vm"])
            assert owner.remove_own(conn) == [live]
            assert sorted(d.name() for d in conn.listAllDomains(0)) == sorted([other_machine, "somebody-elses-vm"])
            conn.lookupByName("somebody-elses-vm").undefine()
        finally:
            conn.close()
        assert "1 domains destroyed and undefined" in _clean(a.uri)  # fleet clean: every guestcompat-* domain
