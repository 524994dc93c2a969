"""Issue 13 with real QEMU: a profile string cannot add a QEMU option (checked with QMP ``qom-get`` on the
CPU the guest gets, on both backends), the libvirt backend's NIC sits on a ``restrict=on`` user network
like the direct one's (HMP ``info network``), and a ``,`` in TMPDIR does not break a run's QMP socket.

The machines are started paused (``-S`` / ``VIR_DOMAIN_START_PAUSED``): what is checked is set before
the guest runs, so no guest has to boot."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

import libvirt
import libvirt_qemu
import pytest
from qemu.qmp import QMPClient

from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.libvirt_xml import RunFiles, render
from guestcompat.emulation.qemuopts import opts
from guestcompat.emulation.target import Target
from guestcompat.harness.artefacts import build_all
from guestcompat.harness.libvirt_embed import connect
from guestcompat.harness.run import boot_image, image_for, run_profile
from guestcompat.profiles.loader import load

PC = Target("x86_64", "pc", "tcg")
# A comma-carrying brand string that, on -cpu, would set two more CPU properties (issue 13).
HOSTILE = "Xeon,vendor=AuthenticAMD,family=5,,level=1"


@pytest.fixture
def hostile_profile(profile_dir):
    profile_dir("t/hostile", f"""
        extends = "interfaces/kvm"
        [cpu]
        model_id = "{HOSTILE}"
        """)
    return compile_profile(load("t/hostile"), PC)


def _cpu_props(execute) -> dict[str, object]:
    path = execute("query-cpus-fast")[0]["qom-path"]
    return {p: execute("qom-get", {"path": path, "property": p}) for p in ("model-id", "vendor", "family", "level")}


def _reference_props(compiled) -> dict[str, object]:
    """The same CPU without any brand string: what every property but model-id must stay."""
    argv = [a for a in compiled.argv]
    i = next(i for i, a in enumerate(argv) if a.startswith("qemu64-x86_64-cpu.model-id="))
    return _direct_props(argv[:i - 1] + argv[i + 1:])


def _direct_props(argv: list[str]) -> dict[str, object]:
    async def main() -> dict[str, object]:
        with tempfile.TemporaryDirectory(prefix="gc-h13,comma-") as tmp:
            sock = Path(tmp) / "qmp.sock"
            proc = subprocess.Popen([*argv, "-S", "-chardev", opts("socket", id="qmp", path=str(sock), server=True,
                                                                    wait=False), "-mon", "chardev=qmp,mode=control"])
            try:
                qmp = QMPClient("h13")
                for _ in range(200):
                    if sock.exists():
                        break
                    await asyncio.sleep(0.05)
                await qmp.connect(str(sock))
                results = {}
                path = (await qmp.execute("query-cpus-fast"))[0]["qom-path"]
                for p in ("model-id", "vendor", "family", "level"):
                    results[p] = await qmp.execute("qom-get", {"path": path, "property": p})
                await qmp.execute("quit")
                # QEMU closes the socket as it quits: disconnect() may meet that EOF (seen in CI)
                with contextlib.suppress(EOFError, ConnectionError):
                    await qmp.disconnect()
                return results
            finally:
                proc.kill()
                proc.wait()
    return asyncio.run(main())


def test_model_id_reaches_the_cpu_literally_on_the_direct_backend(hostile_profile):
    props = _direct_props(list(hostile_profile.argv))
    reference = _reference_props(hostile_profile)
    assert props["model-id"] == HOSTILE
    assert {k: v for k, v in props.items() if k != "model-id"} == \
        {k: v for k, v in reference.items() if k != "model-id"}
    assert props["vendor"] == "GenuineIntel"  # the profile's vendor, not the injected one


def _libvirt_paused(compiled, check):
    image = boot_image(compiled, image_for(compiled))
    with tempfile.TemporaryDirectory(prefix="gc-h13-lv-") as tmp:
        artefacts = {k: str(v) for k, v in build_all(compiled.artefacts).items()}
        files = RunFiles(str(image.kernel), str(image.initrd), " ".join(image.cmdline), f"{tmp}/console.log", tmp,
                         artefacts, name=f"gc-h13-{os.getpid()}")
        domain = render(compiled, files)
        for disk in domain.disks:
            with open(disk.path, "wb") as fh:
                fh.truncate(disk.size)
        with connect() as conn:
            dom = conn.conn.createXML(domain.xml, libvirt.VIR_DOMAIN_START_PAUSED)
            try:
                return check(dom)
            finally:
                dom.destroy()


def _qmp(dom):
    def execute(command, arguments=None):
        msg = {"execute": command, **({"arguments": arguments} if arguments else {})}
        return json.loads(libvirt_qemu.qemuMonitorCommand(dom, json.dumps(msg), 0))["return"]
    return execute


def test_model_id_reaches_the_cpu_literally_on_the_libvirt_backend(hostile_profile):
    props = _libvirt_paused(hostile_profile, lambda dom: _cpu_props(_qmp(dom)))
    reference = _reference_props(hostile_profile)
    assert props["model-id"] == HOSTILE  # not doubled commas
    assert props["vendor"] == "GenuineIntel" and props["family"] == reference["family"]
    assert props["level"] == reference["level"]


def _network(dom) -> str:
    return libvirt_qemu.qemuMonitorCommand(dom, "info network", libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP)


@pytest.mark.parametrize("name", ["interfaces/kvm", "vmware/workstation-17"])
def test_libvirt_nics_sit_on_a_restricted_user_network(name):
    """Every NIC's peer is a restrict=on user netdev (HMP: ``<nic>: ... \\n \\\\ <peer>: type=user,...``)."""
    text = _libvirt_paused(compile_profile(load(name), PC), _network)
    lines = text.splitlines()
    nics = [i for i, line in enumerate(lines) if "type=nic" in line]
    assert nics, text
    for i in nics:
        peer = lines[i + 1]
        assert peer.lstrip().startswith("\\") and "type=user" in peer and "restrict=on" in peer, text


@pytest.mark.boot
def test_a_comma_in_tmpdir_does_not_break_a_run(monkeypatch, comma_tmpdir):
    """The run's QMP socket lives in TMPDIR; its path is an escaped option value (issue 13)."""
    tmp = comma_tmpdir
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    outcome = run_profile("interfaces/kvm", PC, timeout=300)
    assert outcome.passed
    assert not list(tmp.iterdir())  # the run dir went away
