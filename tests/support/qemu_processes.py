"""Find running QEMU processes by their argv, for the tests that prove nothing is left behind."""

from __future__ import annotations

import glob
import subprocess
import time
from collections.abc import Callable


def qemu_pids(matches: Callable[[list[bytes]], bool]) -> list[int]:
    """PIDs of the qemu-system-* processes whose argv satisfies ``matches`` (processes that exit
    while being read are skipped)."""
    pids = []
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if argv and b"qemu-system" in argv[0] and matches(argv):
            pids.append(int(path.split("/")[2]))
    return pids


def interrupt_once_running(proc: subprocess.Popen, running: Callable[[], bool], sig: int, *,
                           settle: float = 0.0, what: str = "the run") -> str:
    """Send ``sig`` to ``proc`` once ``running()`` (its QEMU is up; after ``settle`` more seconds) and
    return its stderr; ``proc`` is killed on any failure, so a test never leaves it behind."""
    try:
        deadline = time.monotonic() + 120
        while not running():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"{what} never started QEMU"
            time.sleep(0.05)
        time.sleep(settle)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
        return stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
