"""A real imported Debian 12 guest, booted from its own disk (issue 7 item 4).

The VM (VMDK + .vmx) is built by images/fullguest.py (``make setup`` builds
it, so no test waits for debootstrap). Both boots share one module fixture
and one xdist group, so each boots once per run: a systemd guest under TCG
takes minutes, not seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from guestcompat.detection.diff import diff
from guestcompat.harness.boottime import boot_timing
from guestcompat.harness.compare import Status
from guestcompat.harness.diskboot import TEST_BOOT_CMDLINE
from guestcompat.harness.fullguest_cmd import ensure_default_full_guest
from guestcompat.harness.imported import imported_profile, run_imported
from guestcompat.emulation import arches
from guestcompat.images.fullguest import FullGuestConfig

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("fullguest")]
CONFIG = FullGuestConfig.for_arch(arches.get(arches.DEFAULT_ARCH))


@pytest.fixture(scope="module")
def guest():
    return ensure_default_full_guest()


@pytest.fixture(scope="module")
def on_pvscsi(guest):
    return run_imported(guest.vmx)


@pytest.fixture(scope="module")
def on_qemu_defaults(guest):
    return run_imported(guest.vmx, qemu_defaults=True)


def test_the_vmx_imports_with_the_vmdk_on_pvscsi(guest):
    profile, disk_name, disk = imported_profile(guest.vmx)
    assert disk == guest.vmdk
    controllers = {d.name: (d.kind, str(d.address)) for d in profile.pci.devices}
    assert controllers["scsi0"] == ("pvscsi", "03:00.0")
    assert controllers["ethernet0"] == ("vmxnet3", "0b:00.0")
    attached = next(d for d in profile.disks if d.name == disk_name)
    assert attached.controller == "scsi0" and Path(attached.image) == guest.vmdk.resolve()


def test_imported_guest_boots_from_its_own_disk_on_pvscsi(on_pvscsi, guest):
    fp = on_pvscsi.fingerprint
    # The root file system is the VMDK on the emulated pvscsi controller: the guest's kernel
    # is the disk's own, and its only disk hangs off 03:00.0.
    assert fp.kernel == guest.kernel_version
    assert "-drive" not in on_pvscsi.boot.argv
    assert any(b.pci and b.pci.endswith("03:00.0") for b in fp.block), fp.block
    assert fp.system is not None, "the probe did not run as the systemd unit of the full guest"
    assert fp.system.multi_user == "active"
    assert fp.system.failed_units == ()
    assert fp.system.wait_online == 0
    assert fp.system.addresses.get(CONFIG.nic_name) == (CONFIG.address,)
    nic = next(n for n in fp.net if n.name == CONFIG.nic_name)
    assert nic.pci == "0b:00.0" and nic.mac == CONFIG.mac
    assert fp.tools is not None and fp.tools.detect_virt == "vmware"
    failed = [c.to_json() for c in on_pvscsi.checks if c.status is Status.FAIL]
    assert on_pvscsi.passed, failed


def test_counter_case_on_qemu_defaults_loses_ens192_and_the_diff_says_why(on_pvscsi, on_qemu_defaults):
    fp = on_qemu_defaults.fingerprint
    assert fp.system is not None and fp.system.multi_user == "active"
    assert CONFIG.nic_name not in {n.name for n in fp.net}
    assert all(CONFIG.address not in addrs for addrs in fp.system.addresses.values())
    assert not on_qemu_defaults.passed  # judged against the same imported profile
    texts = [c.text for c in diff(on_pvscsi.fingerprint, fp)]
    assert any(t.startswith("NIC ens192") and "disappeared" in t or "NIC renamed ens192 → ens3" in t
               for t in texts), texts
    assert any("e1000" in t and "8086:100e" in t for t in texts), texts
    assert any(t == f"address {CONFIG.address} of {CONFIG.nic_name} is no longer configured; "
                    f"interface {CONFIG.nic_name} no longer exists" for t in texts), texts


def test_the_boot_is_timed_and_uses_the_targeted_initrd(on_pvscsi, guest):
    """The wrapper's timing lines arrive (what docs/guide-import-replay.md's boot-time numbers come from), the test
    boot's command line is on the argv, and the initrd is the targeted one (not MODULES=most:
    136 MB unpacked; the targeted one is ~19 MB)."""
    timing = boot_timing(on_pvscsi.boot.console)
    assert timing is not None, "no gc-boot lines on the console"
    assert timing.kernel_and_initrd is not None and 0 < timing.kernel_and_initrd < timing.probe_start
    assert timing.blame and all(sec >= 0 for _unit, sec in timing.blame)
    # shown by `pytest -rP`: where the time went in this run
    print(f"fingerprint after {on_pvscsi.boot.seconds_to_document:.1f} s; {timing.summary(8)}")
    append = on_pvscsi.boot.argv[on_pvscsi.boot.argv.index("-append") + 1]
    assert all(word in append.split() for word in TEST_BOOT_CMDLINE)
    initrd = Path(on_pvscsi.boot.argv[on_pvscsi.boot.argv.index("-initrd") + 1])
    assert initrd.stat().st_size < 12 * 2**20, initrd.stat().st_size
