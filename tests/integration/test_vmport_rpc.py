"""The backdoor's RPC channel and guestinfo on guestcompat's patched QEMU builds (issue 22).

The series' 0010 gives vmport ``x-rpc`` (backdoor command 30, GuestRPC), ``x-guestinfo-file`` and
``x-time-cmds``. A real guest (the probe image) boots with guestinfo keys given as ``run
--guestinfo`` gives them; the probe reads them back over the channel the way vmware-rpctool does and
writes ``guestinfo.guestcompat.run``, which the host reads back over QMP. On stock QEMU the same run
compiles the keys as unsupported and the guest reads nothing. A hostile guest program floods the
channel; QEMU's resident memory must stay within a few MiB of where it was.

The patched builds are the cached ones (``guestcompat qemu build``); GUESTCOMPAT_RPC_QEMU (a
colon-separated list of qemu-system-x86_64 binaries) tests scratch builds instead. A build without
``x-rpc`` fails: its capability probe says the patch is missing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.emulation import arches
from guestcompat.emulation.capabilities import capabilities_for
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.fidelity import Fidelity
from guestcompat.harness.compare import Status
from guestcompat.harness.qemu_runner import boot
from guestcompat.harness.run import boot_image, check_origin, image_for, new_nonce, run_profile
from guestcompat.images import qemu_builds
from guestcompat.profiles.guestinfo import with_guestinfo
from guestcompat.profiles.loader import load

pytestmark = pytest.mark.boot

PROFILE = "vmware/esxi-6.5"
#: cloud-init's user data is often 8-64 KiB: a value over 64 KiB must come through whole.
BIG = "".join(chr(ord("a") + i % 26) for i in range(70_000))
KEYS = {"gc.x": "hello", "gc.big": BIG, "gc.spaces": "a b\tc"}
FLOOD_SECONDS = 20
#: What the flood may add to QEMU's RSS: the channels' own bound is 8 x (64 KiB message + one reply)
#: < 2 MiB, the store's 2 MiB; the rest is TCG's and the allocator's noise (measured +2 MiB over 30 s).
FLOOD_RSS_LIMIT_KIB = 8 * 1024
#: vmport's bound on the whole guestinfo store (VMPORT_RPC_MAX_STORE).
STORE_LIMIT = 2 * 1024 * 1024


def _patched_binaries() -> list[str]:
    scratch = os.environ.get("GUESTCOMPAT_RPC_QEMU")
    if scratch:
        return [b for b in scratch.split(":") if b]
    return [qemu_builds.binary_for_alias(b, "x86_64", "qemu-system-x86_64") for b in ("patched", "10.0-patched")]


def _target(binary: str):
    return arches.resolve_target(arch="x86_64", qemu_binary=binary)


@pytest.fixture(params=_patched_binaries(), ids=lambda b: Path(b).parent.parent.name or b)
def patched(request) -> str:
    binary = request.param
    vmport = capabilities_for(binary).device_properties.get("vmport", ())
    assert "x-rpc" in vmport, f"{binary}: vmport has no x-rpc (the series' 0010 is not in this build)"
    return binary


def test_guestinfo_reaches_the_guest_and_back(patched: str) -> None:
    outcome = run_profile(PROFILE, _target(patched), guestinfo=KEYS)
    got = outcome.fingerprint.guestinfo
    assert got["gc.x"] == "hello"
    assert got["gc.big"] == BIG
    assert got["gc.spaces"] == "a b\tc"
    # every key compiled as exact and checked equal, not merely present
    checks = {c.selector: c for c in outcome.checks if c.selector.startswith("guestinfo[")}
    assert set(checks) == {f"guestinfo[{k}].value" for k in KEYS}
    assert all(c.status is Status.PASS for c in checks.values()), [c.line() for c in checks.values()]
    # the guest's info-set landed in the host's store (QMP qom-get vmport x-guestinfo)
    store = outcome.boot.guestinfo
    assert store is not None
    assert store["guestcompat.run"] == outcome.boot.document["run"]
    assert store["gc.x"] == "hello"
    assert outcome.passed
    # x-time-cmds: GETTIMEFULL is the host's clock, GETMHZ a rate (vmware-toolbox-cmd stat hosttime/speed)
    timed = dict(line.split() for line in outcome.boot.document["tools"]["backdoor-time"]["stdout"].splitlines())
    assert abs(int(timed["seconds"]) - time.time()) < 120, timed
    assert 0 < int(timed["usecs"]) < 1_000_000 or timed["usecs"] == "0"
    assert 100 <= int(timed["mhz"]) < 100_000, timed
    # open-vm-tools' own clients in the guest (Debian 12's): rpctool reads the first key (gc.big)
    tools = outcome.boot.document["tools"]
    assert (tools["vmware-rpctool-get"]["status"], tools["vmware-rpctool-get"]["stdout"]) == ("0", BIG), \
        tools["vmware-rpctool-get"]["stderr"]
    assert tools["vmware-rpctool-set"]["status"] == "0" and store["guestcompat.rpctool"] == "ok"
    assert tools["vmware-toolbox-hosttime"]["status"] == "0" and str(time.gmtime().tm_year) in \
        tools["vmware-toolbox-hosttime"]["stdout"]
    speed = tools["vmware-toolbox-speed"]
    assert speed["status"] == "0" and speed["stdout"] == f"{timed['mhz']} MHz", speed
    # vmtoolsd stays up on the channel: it set its guestinfo.vmtools.* keys and, asked over TCLO to
    # register its capabilities, said tools.set.versiontype with the same version number
    assert tools["vmtoolsd"]["stdout"] == "running", tools["vmtoolsd"]
    assert store["vmtools.versionString"] and outcome.boot.tools_version.split()[0] == store["vmtools.versionNumber"]


def test_stock_qemu_has_no_guestinfo() -> None:
    stock = "/usr/bin/qemu-system-x86_64"
    if "x-rpc" in capabilities_for(stock).device_properties.get("vmport", ()):
        pytest.fail(f"{stock} has x-rpc: this test needs Debian's stock QEMU")
    outcome = run_profile(PROFILE, _target(stock), guestinfo={"gc.x": "hello"})
    expectation = next(e for e in outcome.compiled.report.expectations if e.selector == "guestinfo[gc.x].value")
    assert expectation.fidelity is Fidelity.UNSUPPORTED
    assert "no backdoor RPC channel" in (expectation.reason or "")
    assert outcome.fingerprint.guestinfo == {"gc.x": None}
    assert outcome.boot.guestinfo is None
    rpctool = outcome.boot.document["tools"]["vmware-rpctool-get"]
    assert rpctool["status"] != "0" and rpctool["stdout"] == "", rpctool
    vmtoolsd = outcome.boot.document["tools"]["vmtoolsd"]
    assert vmtoolsd["stdout"].startswith("exited"), vmtoolsd
    assert "vmport.x-rpc=on" not in outcome.compiled.argv


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def _pid_with(marker: str) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    raise AssertionError(f"no process carries {marker}")


def test_hostile_guest_cannot_grow_qemu(patched: str) -> None:
    compiled = compile_profile(with_guestinfo(load(PROFILE), {"gc.x": "hello"}), _target(patched))
    marker = f"guestcompat.rpctest={secrets.token_hex(8)}"
    compiled = dataclasses.replace(compiled, guest_cmdline=(*compiled.guest_cmdline,
                                                            f"guestcompat.rpcflood={FLOOD_SECONDS}", marker))
    rss: dict[str, int] = {}

    def on_console(line: str) -> None:
        for when in ("start", "end"):
            if f"gc-rpcflood: {when}" in line:
                rss[when] = _rss_kib(_pid_with(marker))

    nonce = new_nonce()
    result = boot(compiled, boot_image(compiled, image_for(compiled), nonce), timeout=240, on_console=on_console)
    check_origin(result.document, nonce)
    flood = result.document["tools"]["rpcflood"]
    assert flood["status"] == "0"
    assert "oversized message accepted" not in flood["stdout"]
    lines = dict(line.split(" ", 1) for line in flood["stdout"].splitlines())
    set_ok, _, set_refused = lines["set"].split()
    # info-set of 60000-byte values under new keys: QEMU takes what fits its 2 MiB store, then refuses
    assert 0 < int(set_ok) <= STORE_LIMIT // 60_000 and int(set_refused) > 0, lines["set"]
    assert int(lines["opened"].split()[0]) >= 8, lines["opened"]    # it did hold every channel
    assert result.guestinfo is not None
    assert sum(len(k) + len(v) for k, v in result.guestinfo.items()) <= STORE_LIMIT
    print(f"rpc flood: {lines}, QEMU RSS KiB {rss}, store {sum(len(v) for v in result.guestinfo.values())} bytes")
    assert set(rss) == {"start", "end"}, rss
    assert rss["end"] - rss["start"] <= FLOOD_RSS_LIMIT_KIB, rss
    assert Fingerprint.from_document(result.document).guestinfo == {"gc.x": "hello"}


def _qemu(binary: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([binary, "-nodefaults", "-display", "none", "-S", "-M", "pc,vmport=on", *args],
                          input=stdin, capture_output=True, text=True, timeout=60, check=False)


def test_bad_store_refused_and_migration_blocked(patched: str, tmp_path: Path) -> None:
    store = tmp_path / "store.json"
    store.write_text("[1]")
    bad = _qemu(patched, "-global", "vmport.x-rpc=on", "-global", f"vmport.x-guestinfo-file={store}")
    assert bad.returncode == 1 and "must hold a JSON object of strings" in bad.stderr
    store.write_text(json.dumps({"k": "x" * (128 * 1024 + 1)}))
    big = _qemu(patched, "-global", "vmport.x-rpc=on", "-global", f"vmport.x-guestinfo-file={store}")
    assert big.returncode == 1 and "Value too large" in big.stderr
    off = _qemu(patched, "-global", f"vmport.x-guestinfo-file={store}")
    assert off.returncode == 1 and "needs x-rpc=on" in off.stderr
    # with the channel on, QEMU refuses to migrate rather than drop the store
    qmp = "\n".join(json.dumps(c) for c in (
        {"execute": "qmp_capabilities"},
        {"execute": "migrate", "arguments": {"uri": "exec:cat >/dev/null"}},
        {"execute": "quit"})) + "\n"
    run = _qemu(patched, "-global", "vmport.x-rpc=on", "-qmp", "stdio", stdin=qmp)
    replies = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    errors = [r["error"]["desc"] for r in replies if "error" in r]
    assert errors == ["vmport: the backdoor RPC channel (x-rpc=on) does not migrate its guestinfo store and "
                      "open channels"], replies
