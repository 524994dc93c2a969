"""The libvirt backend for real: every bundled profile defined by libvirt's embedded driver, boots through
libvirt with the direct backend's fingerprint, and nothing survives an interrupted run."""

from __future__ import annotations

import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from qemu_processes import interrupt_once_running, qemu_pids
from shared_boots import default_target as _target, direct_boot

from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.target import Target
from guestcompat.errors import CompileError, RunError
from guestcompat.detection.diff import diff
from guestcompat.harness.baseline import normalized
from guestcompat.harness.compare import Status
from guestcompat.emulation.libvirt_xml import render
from guestcompat.harness import libvirt_owner as owner
from guestcompat.harness.libvirt_embed import connect
from guestcompat.harness.libvirt_validate import validate
from guestcompat.harness.run import run_profile
from guestcompat.profiles.loader import list_profiles, load

PC = Target("x86_64", "pc", "tcg")
BUNDLED = [s.name for s in list_profiles() if not load(s.name).abstract]
GUESTCOMPAT = str(Path(sys.executable).with_name("guestcompat"))


def _qemus_named(prefix: str) -> list[int]:
    """QEMU processes whose libvirt domain name starts with ``prefix`` (libvirt passes -name guest=NAME)."""
    return qemu_pids(lambda argv: any(a.startswith(f"guest={prefix}".encode()) for a in argv))


def _leftover_dirs(pid: int, embed_root: bool = True) -> list[str]:
    """Run dirs of process ``pid``, and its embed root (which lives as long as the process)."""
    tmp = tempfile.gettempdir()
    return (glob.glob(os.path.join(tmp, f"guestcompat-{pid}-libvirt-*")) if embed_root else []) + \
        glob.glob(os.path.join(tmp, f"guestcompat-{pid}-lvrun-*"))


def test_every_bundled_profile_is_accepted_by_libvirt():
    with connect() as conn:
        for name in BUNDLED:
            result = validate(compile_profile(load(name), _target(name)), conn=conn)
            assert result.machine.startswith(("pc-i440fx-", "pseries-")), (name, result)
            assert any(c.startswith("CPU model") for c in result.checks)
            if load(name).platform.firmware == "efi":
                assert "firmware loader type rom" in result.checks
        assert not conn.conn.listAllDomains()


def test_a_process_can_connect_to_its_embedded_driver_any_number_of_times():
    """Each open of an embed URI registers libvirt's QEMU driver again, and libvirt allows ~20
    registrations per process; the connection is shared, so a long test worker never hits it."""
    for _ in range(40):
        with connect() as conn:
            assert conn.conn.getVersion() > 0


def test_a_drive_address_conflict_is_named_before_libvirt_sees_it(profile_dir):
    """Two disks at one SCSI unit: libvirt rejected this domain ("duplicate drive address"); since the
    storage buses (issue 20) the compiler names the conflict first, with both disks, for every backend."""
    profile_dir("t/dupunit", """
        extends = "vmware/esxi-5.1"
        [[disks]]
        name = "disk0"
        controller = "scsi0"
        [[disks]]
        name = "disk1"
        controller = "scsi0"
    """)
    with pytest.raises(CompileError, match=r"disks\[disk1\]\.unit: 00:10\.0 unit 0 is already taken by disk 'disk0'"):
        compile_profile(load("t/dupunit"), PC)
    cli = subprocess.run([GUESTCOMPAT, "compile", "t/dupunit", "--format", "libvirt", "--validate"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2
    assert "already taken by disk 'disk0'" in cli.stderr and "Traceback" not in cli.stderr


# What libvirt changes in the guest's view, predicted by the libvirt fidelity report
# (LibvirtDomain.guest_visible) and nothing else: libvirt always passes QEMU a -uuid, so a profile
# that states none shows libvirt's random UUID where the direct backend shows none. No element or
# qemu:commandline argument can take libvirt's -uuid back (QEMU has no "unset"; a second -uuid still
# sets the UUID), so this is a proven limit, compared exactly: these lines, with the domain's UUID.
UUID_DIFF = {
    "power/pseries-pci": ("devicetree.system-id[0]: <absent> → {uuid}",
                          "devicetree.vm,uuid[0]: 00000000-0000-0000-0000-000000000000 → {uuid}"),
}


def test_only_profiles_without_a_uuid_are_changed_by_libvirt():
    """The UUID_DIFF table is exactly the bundled profiles whose libvirt domain changes the guest's view."""
    changed = {name for name in BUNDLED if render(compile_profile(load(name), _target(name))).guest_visible}
    assert changed == set(UUID_DIFF)


@pytest.mark.boot
@pytest.mark.parametrize("name", BUNDLED)
def test_libvirt_boot_gives_the_direct_backends_fingerprint(name):
    """Every bundled profile (SeaBIOS, OVMF, ppc64 VOF), booted by libvirt, shows the guest the machine
    the direct backend shows it. The direct boot is the session's shared one (tests/support/shared_boots.py)."""
    direct = direct_boot(name)
    started = time.monotonic()
    via_libvirt = run_profile(name, _target(name), timeout=240, backend="libvirt")
    print(f"{name}: direct {direct.boot.seconds_from_launch:.1f} s, libvirt {via_libvirt.boot.seconds_from_launch:.1f} s "
          f"from launch ({time.monotonic() - started:.1f} s incl. libvirt start)")
    assert via_libvirt.passed, [c.line() for c in via_libvirt.checks if c.status is Status.FAIL]
    # the same semantic comparison `guestcompat baseline check` makes (volatile fields blanked by the
    # declared rules, kernel log lines compared as a set since their order depends on timing)
    differences = [c.text for c in diff(normalized(direct.fingerprint), normalized(via_libvirt.fingerprint))]
    uuid_selectors = set(via_libvirt.compiled.arch.uuid_selectors) if name in UUID_DIFF else set()
    if name in UUID_DIFF:
        uuid = via_libvirt.fingerprint.devicetree["system-id"][0]  # the UUID libvirt generated for the domain
        assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", uuid) and uuid.strip("0-"), uuid
        assert differences == [line.format(uuid=uuid) for line in UUID_DIFF[name]]
    else:
        assert differences == []
    assert [(c.selector, c.status) for c in direct.checks if c.selector not in uuid_selectors] == \
        [(c.selector, c.status) for c in via_libvirt.checks if c.selector not in uuid_selectors]
    # where libvirt's UUID shows, the libvirt run reports it as the predicted deviation, not as a pass
    assert {c.status for c in via_libvirt.checks if c.selector in uuid_selectors} <= {Status.DEVIATION}
    assert not _qemus_named(owner.domain_name("", os.getpid())) and not _leftover_dirs(os.getpid(), embed_root=False)
    with connect() as conn:
        assert not conn.conn.listAllDomains()


@pytest.mark.boot
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_libvirt_run_leaves_no_domain_qemu_or_dir(sig):
    proc = subprocess.Popen([GUESTCOMPAT, "run", "vmware/esxi-6.5", "--backend", "libvirt"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr = interrupt_once_running(proc, lambda: bool(_qemus_named(owner.domain_name("", proc.pid))), sig,
                                    settle=2, what="the libvirt run")  # libvirt has the guest running
    assert proc.returncode == 128 + sig, stderr  # 130 for SIGINT, 143 for SIGTERM, as a shell reports them
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not _qemus_named(owner.domain_name("", proc.pid)), "QEMU survived the interrupted run"
    assert not _leftover_dirs(proc.pid), "the embed root or run dir survived"


@pytest.mark.boot
def test_libvirt_failing_midway_leaves_no_domain(profile_dir):
    """The domain is defined, then libvirt cannot start it (a disk image that does not exist)."""
    profile_dir("t/noimage", """
        extends = "vmware/esxi-5.1"
        [[disks]]
        name = "disk0"
        controller = "scsi0"
        image = "/nonexistent/guestcompat-disk.raw"
    """)
    with pytest.raises(RunError, match=r"libvirt could not start the domain of t/noimage: .*guestcompat-disk\.raw.*"
                                         r"\(profile key disks\[disk0\]\.image\)"):
        run_profile("t/noimage", PC, timeout=60, backend="libvirt")
    with connect() as conn:
        assert not conn.conn.listAllDomains()
    assert not _qemus_named(owner.domain_name("", os.getpid())) and not _leftover_dirs(os.getpid(), embed_root=False)
