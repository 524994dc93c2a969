"""Integration fixtures: real QEMU boots, and a check that nothing is left behind."""

from __future__ import annotations

import glob
import os
import tempfile

import pytest


def _our_qemus() -> set[int]:
    """QEMU processes whose parent is this test process (the harness's children)."""
    pids = set()
    me = os.getpid()
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(stat.replace("stat", "comm")) as fh:
                comm = fh.read().strip()
        except OSError:
            continue
        if comm.startswith("qemu-system") and int(fields[1]) == me:
            pids.add(int(stat.split("/")[2]))
    return pids


def _run_dirs() -> set[str]:
    """Run directories made by this process (xdist workers run side by side)."""
    return set(glob.glob(os.path.join(tempfile.gettempdir(), f"guestcompat-run-{os.getpid()}-*")))


@pytest.fixture
def leaves_nothing_behind():
    """Assert a test left no QEMU child process and no run temp dir of its own."""
    before_dirs = _run_dirs()
    yield
    assert not _our_qemus(), "a QEMU process was left running"
    assert _run_dirs() <= before_dirs, f"temp dirs left behind: {_run_dirs() - before_dirs}"


@pytest.fixture
def our_qemus():
    """A function listing the QEMU processes this test process started."""
    return _our_qemus
