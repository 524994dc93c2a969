"""A guestcompat killed by SIGKILL (run, migrate, matrix) leaves no QEMU running and, after the
next guestcompat, no directory.

SIGKILL cannot be caught, so nothing in the killed process cleans up: its QEMU
dies of the parent-death signal (PR_SET_PDEATHSIG, set by
guestcompat.qemu_process), and its private directory is removed by the next
guestcompat process that starts a QEMU (the sweep of dead pids' directories).
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from qemu_processes import qemu_pids

from guestcompat.qemu_process import PREFIX, dir_pattern, private_dir, sweep_stale_dirs

pytestmark = pytest.mark.boot

CLI = [sys.executable, "-m", "guestcompat.harness.cli"]
PATIENCE = 240.0
"""Upper bound for waiting on a state change (not a measured assertion: it only ends a hung test)."""


def _wait_for(what: str, condition):
    deadline = time.monotonic() + PATIENCE
    while not (found := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)
    return found


def _qemus_of(pid: int) -> list[int]:
    mark = f"{PREFIX}{pid}-".encode()
    return qemu_pids(lambda argv: any(mark in a for a in argv))


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("command", [["run", "vmware/esxi-6.5"], ["migrate", "vmware/esxi-6.5"],
                                     ["matrix", "vmware/esxi-6.5", "vmware/esxi-6.0", "--jobs", "2"]],
                         ids=["run", "migrate", "matrix"])
def test_sigkill_during_a_boot_leaves_no_qemu_and_the_next_run_sweeps_the_directory(command, tmp_path):
    run = subprocess.Popen([*CLI, *command, "--timeout", "240"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    qemus: list[int] = []
    try:
        # QEMU is up and its monitor socket exists: the boot is under way.
        # (a boot's, not a short-lived capability or accelerator probe's, which removes its own directory)
        sockets = _wait_for("the run's QMP socket", lambda: [
            s for s in glob.glob(os.path.join(dir_pattern(run.pid), "qmp.sock"))
            if not any(f"-{probe}-" in s for probe in ("accels", "caps"))])
        qemus = _wait_for("the run's QEMU", lambda: _qemus_of(run.pid))
        run.send_signal(signal.SIGKILL)
        assert run.wait() == -signal.SIGKILL
        _wait_for("the QEMU to die with its parent", lambda: not _qemus_of(run.pid))
        # gone, or a zombie awaiting its reaper (a dying process's cmdline reads empty a moment before)
        _wait_for("the QEMUs to be gone", lambda: all(_state(pid) in (None, "Z") for pid in qemus))
        run_dirs = glob.glob(dir_pattern(run.pid))
        assert Path(sockets[0]).parent.is_dir()  # nothing in a SIGKILLed process can remove it ...
        probe = subprocess.run([*CLI, "capabilities"], env={**os.environ, "GUESTCOMPAT_CACHE": str(tmp_path)},
                               capture_output=True, text=True, timeout=120)
        assert probe.returncode == 0, probe.stderr
        assert run_dirs and not [d for d in run_dirs if os.path.exists(d)]  # ... the next guestcompat does
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid in _qemus_of(run.pid):  # only if an assertion above failed
            os.kill(pid, signal.SIGKILL)


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def test_the_sweep_kills_what_still_names_a_dead_processs_directory_and_keeps_live_ones(tmp_path, monkeypatch):
    # A temp dir of this test's own: every guestcompat starting a QEMU meanwhile (other xdist workers)
    # sweeps the shared one, and once killed this straggler first (seen in CI: it never showed its argv).
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    mine = private_dir("sweeptest")  # this process is alive: its directory stays (the first call sweeps too)
    stale = Path(dir_pattern(_dead_pid()).removesuffix("*") + "run-test")
    stale.mkdir()
    (stale / "qmp.sock").write_text("")
    # A process that outlived its guestcompat (a wrapper's child, beyond the parent-death signal).
    straggler = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", str(stale / "qmp.sock")])
    _wait_for("the straggler to exec", lambda: str(stale).encode() in Path(f"/proc/{straggler.pid}/cmdline").read_bytes())
    try:
        removed = sweep_stale_dirs()
        assert stale in removed and not stale.exists()
        assert straggler.wait(timeout=60) == -signal.SIGKILL
        assert mine.is_dir() and mine not in removed
    finally:
        straggler.kill()
        straggler.wait()
        mine.rmdir()
