"""The imported Debian guest boots from its own disk on every controller VMware may give it (issue 20).

The same VM (VMDK + .vmx, images/fullguest.py) with its root disk moved to each VMware storage
controller (``controller_vmx``: the .vmx as VMware would write it for that controller), imported and
booted on guestcompat's patched QEMU: the guest's own kernel and targeted initrd (which carries the
drivers of VMware's controllers, as a guest installed on VMware does), root by UUID as its fstab
says, systemd to multi-user, the NIC still ens192 with its static address, and every check of the
imported profile passed (the disk at its unit, with VMware's strings where the build presents them).
"""

from __future__ import annotations

import pytest

from guestcompat.emulation import arches
from guestcompat.harness.compare import Status
from guestcompat.harness.fullguest_cmd import ensure_default_full_guest
from guestcompat.harness.imported import imported_profile, run_imported
from guestcompat.emulation.target import Target
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
}


@pytest.fixture(scope="module")
def guest():
    return ensure_default_full_guest()


PATCHED = Target("x86_64", "pc", "tcg", qemu_binary="patched")


@pytest.mark.parametrize("bus", sorted(BUSES))
def test_imported_guest_boots_from_its_own_disk_on(bus, guest):
    kind, address = BUSES[bus]
    vmx = controller_vmx(guest, bus)
    profile, disk_name, disk = imported_profile(vmx)
    assert disk == guest.vmdk
    root = next(d for d in profile.disks if d.name == disk_name)
    controller = next((d for d in profile.pci.devices if d.name == root.controller), None)
    assert controller is not None and (controller.kind, str(controller.address)) == (kind, address)

    outcome = run_imported(vmx, target=PATCHED)
    fp = outcome.fingerprint
    assert fp.kernel == guest.kernel_version                       # the disk's own kernel
    assert fp.system is not None and fp.system.multi_user == "active", fp.system
    assert fp.system.failed_units == ()
    roots = [b for b in fp.block if b.pci and b.pci.endswith(address) and b.media == "disk"]
    assert roots, f"no disk at {address}: {fp.block}"
    assert fp.system.addresses.get(CONFIG.nic_name) == (CONFIG.address,)   # ens192 kept its static address
    failed = [c.to_json() for c in outcome.checks if c.status is Status.FAIL]
    assert outcome.passed, failed
