"""The imported Debian guest boots from its own disk on every controller VMware may give it (issue 20).

The same VM (VMDK + .vmx, images/fullguest.py) with its root disk moved to each VMware storage
controller (``controller_vmx``: the .vmx as VMware would write it for that controller), imported and
booted: the guest's own kernel and targeted initrd (which carries the drivers of VMware's
controllers, as a guest installed on VMware does, and nothing else), root by UUID as its fstab says,
systemd to multi-user, the NIC still ens192 with its static address, and every check of the
imported profile passed (the disk at its unit, with VMware's strings where the build presents them).

The suite boots the two controllers only guestcompat's series can present (LSI Logic Parallel and
SAS) on the patched 7.2 build: a full systemd guest under TCG takes a minute or more, and the suite
has ten. ``make storage-matrix`` (GUESTCOMPAT_STORAGE_MATRIX=full) boots every controller on the
patched 7.2 and 10.0 builds and on stock QEMU (the table in docs/guide-storage.md). Where stock QEMU cannot boot the
disk, the compiler says so before anything boots, and that is tested here too.
"""

from __future__ import annotations

import os

import pytest

from guestcompat.emulation import arches
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.target import Target
from guestcompat.harness.compare import Status
from guestcompat.harness.fullguest_cmd import ensure_default_full_guest
from guestcompat.harness.imported import imported_profile, run_imported
from guestcompat.images.fullguest import FullGuestConfig, controller_vmx

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("storage-matrix")]
CONFIG = FullGuestConfig.for_arch(arches.get(arches.DEFAULT_ARCH))
#: bus -> (controller kind, guest address of the controller the root disk hangs on)
BUSES = {
    "lsilogic": ("lsilogic", "00:10.0"),
    "lsisas1068": ("lsisas1068", "03:00.0"),
    "sata": ("vmware-sata", "02:01.0"),
    "nvme": ("vmware-nvme", "13:00.0"),
    "ide": ("piix4-ide", "00:07.1"),
    "pvscsi": ("pvscsi", "03:00.0"),
}
FULL = os.environ.get("GUESTCOMPAT_STORAGE_MATRIX") == "full"
BUILDS = ("patched", "10.0-patched", "stock") if FULL else ("patched",)
#: what stock QEMU cannot boot, and the words of the compiler's reason
STOCK_CANNOT = {"lsilogic": "no LSI 53c1030 model", "lsisas1068": "never turns it into a block device"}
#: where stock QEMU shows the controller (no 440BX layout: the machine's PIIX3 IDE at 00:01.1)
STOCK_ADDRESS = {"ide": "00:01.1"}


@pytest.fixture(scope="module")
def guest():
    return ensure_default_full_guest()


def _target(build: str) -> Target:
    return Target("x86_64", "pc", "tcg", qemu_binary=None if build == "stock" else build)


#: (bus, build) booted: where stock cannot boot the disk, test_stock_says_before_booting checks the
#: compiler says so instead (no boot that is known to end in the initramfs shell)
BOOTED = [(bus, build) for build in BUILDS for bus in (BUSES if FULL else ("lsilogic", "lsisas1068"))
          if not (build == "stock" and bus in STOCK_CANNOT)]


@pytest.mark.parametrize(("bus", "build"), BOOTED)
def test_imported_guest_boots_from_its_own_disk_on(bus, build, guest):
    kind, address = BUSES[bus]
    address = STOCK_ADDRESS.get(bus, address) if build == "stock" else address
    vmx = controller_vmx(guest, bus)
    profile, disk_name, disk = imported_profile(vmx)
    assert disk == guest.vmdk
    root = next(d for d in profile.disks if d.name == disk_name)
    controller = next(d for d in profile.pci.devices if d.name == root.controller)
    assert controller.kind == kind

    outcome = run_imported(vmx, target=_target(build))
    fp = outcome.fingerprint
    assert fp.kernel == guest.kernel_version                       # the disk's own kernel
    assert fp.system is not None and fp.system.multi_user == "active", fp.system
    assert fp.system.failed_units == ()
    roots = [b for b in fp.block if b.pci and b.pci.endswith(address) and b.media == "disk"]
    assert roots, f"no disk at {address}: {fp.block}"
    assert fp.system.addresses.get(CONFIG.nic_name) == (CONFIG.address,)   # ens192 kept its static address
    failed = [c.to_json() for c in outcome.checks if c.status is Status.FAIL]
    assert outcome.passed, failed
    print(f"{bus} on {build}: PASS {sum(c.status is Status.PASS for c in outcome.checks)} passed, "
          f"{sum(c.status is Status.DEVIATION for c in outcome.checks)} known deviations; fingerprint after "
          f"{outcome.boot.seconds_to_document:.0f} s")


@pytest.mark.parametrize("bus", sorted(STOCK_CANNOT))
def test_stock_says_before_booting_that_the_disk_is_lost(bus, guest):
    """On stock QEMU, LSI Logic Parallel becomes the nearest kind (lsi53c895a, driver sym53c8xx, which
    the guest's initrd does not carry) and LSI Logic SAS shows no disk: the fidelity report says so."""
    profile, disk_name, _disk = imported_profile(controller_vmx(guest, bus))
    compiled = compile_profile(profile, _target("stock"))
    reasons = " ".join(e.reason or "" for e in compiled.expectations if e.subject in (disk_name, "scsi0"))
    assert STOCK_CANNOT[bus] in reasons, reasons
    patched = compile_profile(profile, _target("patched"))
    media = next(e for e in patched.expectations if e.subject == disk_name and e.selector.endswith(".media"))
    assert media.presented == "disk" and media.reason is None
