"""What the harness does when things go wrong, on real QEMU boots.

Each case must end in one RunError that names the problem, and leave no
QEMU process and no temp dir behind.
"""

from __future__ import annotations

import dataclasses
import os
import signal

import pytest

from guestcompat.detection.payload import ProbePayload
from guestcompat.emulation.artefact import Artefact
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.arches import resolve_target
from guestcompat.errors import CompileError, RunError
from guestcompat.harness.qemu_runner import boot
from guestcompat.harness.run import boot_image
from guestcompat.images.build import ImageSpec, ensure_image
from guestcompat.profiles.loader import load

pytestmark = [pytest.mark.boot, pytest.mark.usefixtures("leaves_nothing_behind")]

SMALL = """
description = "small profile for failure tests"
[backdoor]
enabled = true
[smbios.system]
serial = "VMware-56 4d 00"
[[pci.devices]]
name = "nic"
kind = "vmxnet3"
address = "00:10.0"
mac = "00:50:56:00:00:01"
"""


@pytest.fixture
def small(profile_dir):
    profile_dir("t/small", SMALL)
    return compile_profile(load("t/small"), resolve_target())


def image_with_probe(compiled, script: str):
    payload = ProbePayload({"/probe/probe.sh": (("#!/bin/sh\n" + script + "\n").encode(), 0o755)})
    image = ensure_image(ImageSpec(arch=compiled.arch, modaliases=compiled.modaliases, payload=payload))
    return boot_image(compiled, image)


def test_corrupted_fingerprint_is_rejected_not_decoded(small):
    image = image_with_probe(small, "echo '@@GUESTCOMPAT-BEGIN v1 sha256=" + "0" * 64 + " bytes=5'\n"
                                    "echo '@@aGVsbG8='\necho '@@GUESTCOMPAT-END'\nsleep 600")
    with pytest.raises(RunError, match="fingerprint is unreadable: .*sha256"):
        boot(small, image, timeout=120)


def test_garbage_then_power_off(small):
    image = image_with_probe(small, "echo '@@GUESTCOMPAT-BEGIN v1 sha256=abc'; head -c 3000 /dev/urandom")
    with pytest.raises(RunError) as err:
        boot(small, image, timeout=120)
    assert "powered off" in str(err.value) or "unreadable" in str(err.value)


def test_guest_that_powers_off_silently(small):
    image = image_with_probe(small, "echo 'probe: nothing to say'")
    with pytest.raises(RunError, match="powered off before it delivered its fingerprint") as err:
        boot(small, image, timeout=120)
    assert "probe: nothing to say" in str(err.value)  # the console tail is shown


def test_hung_guest_times_out_with_console_tail(small):
    image = image_with_probe(small, "echo 'probe: about to hang'; sleep 600")
    with pytest.raises(RunError, match=r"did not deliver its fingerprint within 4 s") as err:
        boot(small, image, timeout=4)
    assert "command: qemu-system-x86_64" in str(err.value)


def test_qemu_killed_mid_boot(small, our_qemus):
    image = image_with_probe(small, "sleep 600")
    killed = []

    def kill_qemu(_line: str) -> None:
        for pid in our_qemus():
            if pid not in killed:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    with pytest.raises(RunError, match="QEMU was killed by signal 9 before the guest delivered"):
        boot(small, image, timeout=120, on_console=kill_qemu)


def test_qemu_refusing_an_option(small):
    broken = dataclasses.replace(small, argv=(*small.argv, "-device", "no-such-device"))
    image = image_with_probe(small, "true")
    with pytest.raises(RunError, match="QEMU refused to start .*no-such-device"):
        boot(broken, image, timeout=30)


def test_missing_qemu_binary(profile_dir):
    profile_dir("t/small", SMALL)
    with pytest.raises(CompileError, match="QEMU binary '/nonexistent/qemu-system-x86_64' not found"):
        compile_profile(load("t/small"), resolve_target(qemu_binary="/nonexistent/qemu-system-x86_64"))
    ok = compile_profile(load("t/small"), resolve_target())
    # The binary vanished between compile and boot: the runner still says so.
    compiled = dataclasses.replace(ok, argv=("/nonexistent/qemu-system-x86_64", *ok.argv[1:]))
    with pytest.raises(RunError, match="QEMU binary '/nonexistent/qemu-system-x86_64' not found"):
        boot(compiled, image_with_probe(ok, "true"), timeout=30)


def test_acpi_table_that_does_not_compile(small, tmp_path, monkeypatch):
    """A broken artefact stops the run before QEMU starts, naming the table and iasl's complaint."""
    image = image_with_probe(small, "true")
    monkeypatch.setenv("GUESTCOMPAT_CACHE", str(tmp_path))  # nothing cached: iasl really runs
    bad = Artefact("ssdt-broken.aml", "acpi-asl", 'DefinitionBlock ("", "SSDT", 2, "X", "Y", 1) { Name (ABCDE, 1) }\n')
    broken = dataclasses.replace(small, argv=(*small.argv, "-acpitable", f"file={bad.placeholder}"),
                                 artefacts=(bad,))
    with pytest.raises(RunError, match=r"(?s)cannot build ACPI table ssdt-broken.aml: iasl exited with code \d+:.*ABCDE"):
        boot(broken, image, timeout=30)


# -- issue 13: more faults, each with a clear error, no false pass and nothing left behind ---------------
def _echo_lines(lines: list[str]) -> str:
    """Shell lines printing ``lines`` verbatim (single-quoted; frame lines hold no quote)."""
    return "\n".join(f"echo '{line}'" for line in lines)


def test_qemu_segfault_mid_boot(small, our_qemus):
    image = image_with_probe(small, "sleep 600")
    killed = []

    def segv_qemu(_line: str) -> None:
        for pid in our_qemus():
            if pid not in killed:
                os.kill(pid, signal.SIGSEGV)
                killed.append(pid)

    with pytest.raises(RunError, match="QEMU was killed by signal 11 before the guest delivered"):
        boot(small, image, timeout=120, on_console=segv_qemu)


def test_truncated_frame_then_power_off_is_an_error(small):
    from guestcompat.detection.frame import encode_document

    lines = encode_document({"format": "guestcompat-probe", "version": 1, "pad": "x" * 400})
    image = image_with_probe(small, _echo_lines(lines[:3]))  # BEGIN and two chunks, no END; init powers off
    with pytest.raises(RunError, match="truncated|powered off"):
        boot(small, image, timeout=120)


def test_a_forged_document_is_refused_not_passed(small):
    """A well-formed document that does not carry this boot's nonce (printed by something that never read
    this boot's command line): the run fails, it does not compare the forged facts."""
    import asyncio

    from guestcompat.detection.frame import encode_document
    from guestcompat.errors import ProbeError
    from guestcompat.harness.run import run_with_image_async

    forged = {"format": "guestcompat-probe", "version": 1, "run": "0" * 32}
    payload = ProbePayload({"/probe/probe.sh": (("#!/bin/sh\n" + _echo_lines(encode_document(forged)) + "\n").encode(),
                                                0o755)})
    image = ensure_image(ImageSpec(arch=small.arch, modaliases=small.modaliases, payload=payload))
    with pytest.raises(ProbeError, match="not from this boot"):
        asyncio.run(run_with_image_async(small, image, timeout=120))


def test_a_console_flood_is_read_but_not_kept(small, monkeypatch):
    """1.5 times the cap of console lines before the document: the document still arrives, the kept
    console stops at the cap (harness/console_log.py) with one marker line. The cap is cut from 8 MiB to
    2 MiB here: the same path, and a flood a TCG serial line carries in a quarter of the time."""
    from guestcompat.detection.frame import encode_document
    from guestcompat.harness import console_log

    monkeypatch.setattr(console_log, "KEEP_BYTES", 2 << 20)
    lines = encode_document({"format": "guestcompat-probe", "version": 1})
    image = image_with_probe(small, "head -c 3145728 /dev/zero | tr '\\0' A | fold -w 199\n" + _echo_lines(lines))
    result = boot(small, image, timeout=600)
    assert result.document == {"format": "guestcompat-probe", "version": 1}
    kept = sum(len(line) + 1 for line in result.console)
    assert (2 << 20) - 400 <= kept <= (2 << 20) + 200, kept
    assert sum(1 for line in result.console if line.startswith("<console flood")) == 1


def test_a_full_tmpdir_is_a_clear_error(small, tmp_path, monkeypatch):
    """The run dir cannot be made (TMPDIR filled up after Python chose it: a tmpfs with no inode left):
    RunError naming TMPDIR, no QEMU started. (A TMPDIR full from the start is skipped by Python's
    gettempdir, which falls back to /tmp: measured, the run then passes.)"""
    import subprocess
    import tempfile

    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=4", "tmpfs", str(full)], check=True)
    try:
        for n in range(16):
            try:
                (full / f"f{n}").write_bytes(b"x" * 4096)
            except OSError:
                break
        image = image_with_probe(small, "true")
        monkeypatch.setattr(tempfile, "tempdir", str(full))
        with pytest.raises(RunError, match=f"cannot create the run directory in {full}: No space left"):
            boot(small, image, timeout=60)
    finally:
        monkeypatch.setattr(tempfile, "tempdir", None)
        subprocess.run(["umount", str(full)], check=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_guestcompat_interrupted_mid_boot(profile_dir, sig):
    """Ctrl-C / kill of `guestcompat run` while QEMU runs: exit 128 + signal, no QEMU, no run dir."""
    import glob
    import subprocess
    import sys
    from pathlib import Path

    from qemu_processes import interrupt_once_running, qemu_pids

    from guestcompat.qemu_process import PREFIX, dir_pattern

    profile_dir("t/small", SMALL)
    proc = subprocess.Popen([str(Path(sys.executable).with_name("guestcompat")), "run", "t/small"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mark = f"{PREFIX}{proc.pid}-".encode()
    ours = lambda: qemu_pids(lambda argv: any(mark in a for a in argv))  # noqa: E731
    stderr = interrupt_once_running(proc, ours, sig)
    assert proc.returncode == 128 + sig, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr and "internal error" not in stderr
    assert not ours(), "QEMU survived the interrupted run"
    assert not glob.glob(dir_pattern(proc.pid))


def test_qemu_that_never_opens_qmp(small, tmp_path, monkeypatch):
    """A "QEMU" that starts and then does nothing (no QMP socket): RunError after the QMP wait, process killed.
    (The wait is cut from 15 s to 3 s here: the same path, 12 s less of the suite.)"""
    from guestcompat import qemu_process

    monkeypatch.setattr(qemu_process, "QMP_APPEAR_TIMEOUT", 3.0)
    fake = tmp_path / "qemu-system-x86_64"
    pids = tmp_path / "pids"
    fake.write_text(f"#!/bin/sh\necho $$ > {pids}\nsleep 600 &\necho $! >> {pids}\nwait\n")
    fake.chmod(0o755)
    silent = dataclasses.replace(small, argv=(str(fake), *small.argv[1:]))
    with pytest.raises(RunError, match="QEMU did not open its QMP socket within 3 s"):
        boot(silent, image_with_probe(small, "true"), timeout=30)
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 2
    for pid in started:  # the "QEMU" and its child: killed with their process group, and reaped
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_qemu_stopped_after_qmp_times_out_and_is_killed(small, our_qemus):
    """QEMU answers QMP, resumes the guest, then stops (SIGSTOP): the run times out; the stopped process
    is killed (SIGKILL works on a stopped process) and nothing is left."""
    image = image_with_probe(small, "sleep 600")
    stopped = []

    def stop_qemu(_line: str) -> None:
        for pid in our_qemus():
            if pid not in stopped:
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)

    with pytest.raises(RunError, match=r"did not deliver its fingerprint within 6 s"):
        boot(small, image, timeout=6, on_console=stop_qemu)
    assert stopped
