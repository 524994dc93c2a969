"""`guestcompat capabilities` against the installed QEMU itself (real probes, no guest)."""

from __future__ import annotations

import json
import os
import stat

from click.testing import CliRunner

from guestcompat.emulation import capabilities
from guestcompat.emulation.capabilities import capabilities_for
from guestcompat.harness.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def kinds(doc: dict) -> dict[str, dict]:
    return {row["kind"]: row for row in doc["kinds"]}


def test_x86_64_presents_the_vmware_devices_and_not_spapr(tmp_path, monkeypatch):
    monkeypatch.setenv("GUESTCOMPAT_CACHE", str(tmp_path))
    result = run("capabilities", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["version"].startswith("7.2.")
    assert "pc" in doc["machines"] and "pseries" not in doc["machines"]
    rows = kinds(doc)
    assert rows["vmxnet3"]["present"] and rows["pvscsi"]["present"]
    assert rows["e1000e"]["properties"] == {"addr": True, "netdev": True, "mac": True, "subsys_ven": True,
                                            "subsys": True}
    assert rows["vmware-pcie-root-port"]["properties"] == {"addr": True, "chassis": True, "slot": True,
                                                           "io-reserve": True}
    assert all(rows["disk on scsi"]["properties"].values())
    assert not rows["spapr-vscsi"]["present"]
    assert all(doc["objects"]["throttle-group"].values())
    assert doc["cpu_models"] > 10
    assert list((tmp_path / "capabilities").glob("qemu-system-x86_64-*.json"))


def test_ppc64_presents_spapr_vscsi():
    result = run("capabilities", "--arch", "ppc64")
    assert result.exit_code == 0, result.output
    assert "pseries → pseries-" in result.output
    line = next(l for l in result.output.splitlines() if l.strip().startswith("spapr-vscsi"))
    assert "present" in line and "MISSING" not in line


def test_probe_is_cached(tmp_path, monkeypatch):
    """The second ask reads the cache: no QEMU is started (its speed is bench/'s business, not a test's)."""
    monkeypatch.setenv("GUESTCOMPAT_CACHE", str(tmp_path))
    first = capabilities_for("qemu-system-x86_64")
    assert first.probe_seconds > 0

    async def no_qemu(*argv, **_kw):
        raise AssertionError(f"a cached probe started {argv}")

    monkeypatch.setattr(capabilities.asyncio, "create_subprocess_exec", no_qemu)
    assert capabilities_for("qemu-system-x86_64") == first


def test_a_changed_binary_is_probed_again(tmp_path, monkeypatch):
    """The cache key includes size and mtime: a rewritten binary is asked again."""
    monkeypatch.setenv("GUESTCOMPAT_CACHE", str(tmp_path / "cache"))
    wrapper = tmp_path / "qemu-wrapper"
    real = capabilities_for("qemu-system-x86_64").binary
    wrapper.write_text(f"#!/bin/sh\nexec {real} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    capabilities_for(str(wrapper))
    assert len(list((tmp_path / "cache" / "capabilities").glob("qemu-wrapper-*.json"))) == 1
    os.utime(wrapper, ns=(0, 10**9))
    capabilities_for(str(wrapper))
    assert len(list((tmp_path / "cache" / "capabilities").glob("qemu-wrapper-*.json"))) == 2


def test_a_binary_that_is_not_qemu_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GUESTCOMPAT_CACHE", str(tmp_path / "cache"))
    fake = tmp_path / "qemu-fake"
    fake.write_text("#!/bin/sh\necho 'qemu-fake: no such machine' >&2\nexit 1\n")
    fake.chmod(0o755)
    before = set(os.listdir("/tmp"))
    result = CliRunner().invoke(cli, ["capabilities", "--qemu", str(fake)])
    assert result.exit_code != 0
    assert "does not answer as a QEMU system emulator" in str(result.exception)
    assert "qemu-fake: no such machine" in str(result.exception)
    assert not [d for d in set(os.listdir("/tmp")) - before if d.startswith(f"guestcompat-{os.getpid()}-caps-")]


def test_compile_refuses_a_profile_this_qemu_build_cannot_present(tmp_path, monkeypatch):
    """A wrapper QEMU that hides pvscsi from the type list: compile says so before any boot."""
    monkeypatch.setenv("GUESTCOMPAT_CACHE", str(tmp_path / "cache"))
    real = capabilities_for("qemu-system-x86_64").binary
    wrapper = tmp_path / "qemu-system-x86_64"
    # A QEMU configured without pvscsi: -device pvscsi is unknown, so it is absent from qom-list-types.
    wrapper.write_text(f"#!/bin/sh\nexec {real} \"$@\"\n")
    wrapper.chmod(0o755)
    from guestcompat.emulation import capabilities as capmod
    original = capmod._ask

    async def without_pvscsi(qmp, binary, request, started):
        caps = await original(qmp, binary, request, started)
        import dataclasses
        return dataclasses.replace(caps, device_types=tuple(d for d in caps.device_types if d != "pvscsi"))

    monkeypatch.setattr(capmod, "_ask", without_pvscsi)
    result = CliRunner().invoke(cli, ["compile", "vmware/esxi-6.5", "--qemu", str(wrapper)])
    assert result.exit_code != 0
    message = str(result.exception)
    assert message.startswith(f"pci.devices[scsi0]: unsupported by this QEMU ({wrapper} 7.2.")
    assert "device 'pvscsi' does not exist in this build" in message


def test_a_comma_in_tmpdir_does_not_break_the_qmp_socket_option(tmp_path, comma_tmpdir):
    """The owner escapes its socket path in the -chardev option (`,` → `,,`)."""
    import subprocess
    import sys

    odd = comma_tmpdir
    env = {**os.environ, "TMPDIR": str(odd), "GUESTCOMPAT_CACHE": str(tmp_path / "cache")}
    res = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "capabilities"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "pc → pc-i440fx-" in res.stdout
    assert list(odd.iterdir()) == []  # its private directory was made there, and removed
