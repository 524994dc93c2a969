"""Integration fixtures: real QEMU boots, and a check that nothing is left behind."""

from __future__ import annotations

import glob
import os

import pytest
from qemu_processes import qemu_pids

from guestcompat.qemu_process import PREFIX, dir_pattern


def _our_qemus() -> set[int]:
    """QEMU processes of this test process: every QEMU guestcompat starts names one of this
    process's private directories (its QMP socket) or carries its libvirt domain name, both
    ``guestcompat-<pid>-…`` (xdist workers run side by side, each with its own pid)."""
    mark = f"{PREFIX}{os.getpid()}-".encode()
    return set(qemu_pids(lambda argv: any(mark in a for a in argv)))


def _private_dirs() -> set[str]:
    """This process's private directories: runs, migrations, the capability probe, libvirt runs.
    The embedded libvirt root (``-libvirt-``) is not one: it lives as long as the process, by design
    (harness/libvirt_embed.py), and test_libvirt.py checks it goes at exit."""
    return {d for d in glob.glob(dir_pattern()) if not os.path.basename(d).split("-", 3)[2] == "libvirt"}


@pytest.fixture
def leaves_nothing_behind():
    """Assert a test left no QEMU process and no private temp dir of its own."""
    before_dirs = _private_dirs()
    yield
    assert not _our_qemus(), "a QEMU process was left running"
    assert _private_dirs() <= before_dirs, f"temp dirs left behind: {_private_dirs() - before_dirs}"


@pytest.fixture
def our_qemus():
    """A function listing the QEMU processes this test process started."""
    return _our_qemus


@pytest.fixture
def comma_tmpdir():
    """A short TMPDIR holding a comma (``/tmp/gc,XXXX``): a pytest tmp_path is too deep for the
    108-byte unix socket limit once a run's private directory and qmp.sock are added to it."""
    import shutil
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="gc,", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
