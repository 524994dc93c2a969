"""Disks on every bus VMware gives a guest (emulation/disks.py, devices.toml [disk_buses.*]).

The capabilities are stock QEMU's real ones (probed), extended where a test needs what
guestcompat's series adds (the lsi53c1030 device, mptsas1068's x-sas-topology): the compiler must
follow the binary's capabilities, never its name.
"""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from guestcompat.detection.fingerprint import BlockDevice
from guestcompat.emulation.arches import resolve_target
from guestcompat.emulation.capabilities import Capabilities, capabilities_for
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.disks import _libata_view
from guestcompat.errors import CompileError
from guestcompat.profiles.catalog import DiskStrings
from guestcompat.profiles.importers.vmx import import_vmx
from guestcompat.profiles.loader import load, load_mapping

HEADER = """\
.encoding = "UTF-8"
virtualHW.version = "14"
displayName = "buses"
memsize = "1024"
uuid.bios = "56 4d 12 34 56 78 9a bc-de f0 12 34 56 78 9a bc"
"""


def stock() -> Capabilities:
    return capabilities_for(resolve_target().qemu_binary or "qemu-system-x86_64")


def patched_storage(caps: Capabilities) -> Capabilities:
    """Stock plus the two storage capabilities of guestcompat's series."""
    devices = dict(caps.device_properties)
    devices["lsi53c1030"] = devices["mptsas1068"]
    devices["mptsas1068"] = devices["mptsas1068"] + ("x-sas-topology",)
    return dataclasses.replace(caps, device_properties=devices, device_types=caps.device_types + ("lsi53c1030",))


def imported(body: str):
    return import_vmx(HEADER + textwrap.dedent(body), "imported/buses").profile


def devices_of(argv: tuple[str, ...]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]


def test_sata_ide_and_nvme_disks_and_cdroms_hang_where_vmware_has_them():
    profile = imported("""\
        sata0.present = "TRUE"
        sata0.pciSlotNumber = "35"
        sata0:0.present = "TRUE"
        sata0:1.present = "TRUE"
        sata0:1.deviceType = "cdrom-image"
        nvme0.present = "TRUE"
        nvme0.pciSlotNumber = "224"
        nvme0:1.present = "TRUE"
        ide1:1.present = "TRUE"
        ide0:0.present = "TRUE"
        ide0:0.deviceType = "atapi-cdrom"
        """)
    devices = devices_of(compile_profile(profile, resolve_target(), stock()).argv)
    assert any(d.startswith("ide-hd,id=sata0-0,drive=drive-sata0-0,bus=sata0.0,model=VMware Virtual SATA Hard "
                            "Drive,ver=00000001,serial=00000000000000000001") for d in devices)
    assert "ide-cd,id=sata0-1,bus=sata0.1" in devices                   # an empty drive, no identity of QEMU's
    assert "nvme-ns,id=nvme0-1,drive=drive-nvme0-1,bus=nvme0,nsid=2" in devices
    assert any(d.startswith("nvme,id=nvme0,") and d.endswith("serial=VMware NVME_0000") for d in devices)
    assert any(d.startswith("ide-hd,id=ide1-1,drive=drive-ide1-1,bus=ide.1,unit=1,") for d in devices)
    assert "ide-cd,id=ide0-0,bus=ide.0,unit=0" in devices


def test_the_guest_view_of_each_bus_is_predicted():
    profile = imported("""\
        sata0.present = "TRUE"
        sata0.pciSlotNumber = "35"
        sata0:0.present = "TRUE"
        ide1:0.present = "TRUE"
        ide1:0.deviceType = "atapi-cdrom"
        """)
    report = compile_profile(profile, resolve_target(), stock()).report
    by = {e.selector: e for e in report.expectations if e.category == "disks"}
    # libata: vendor ATA, the model's first 16 characters, firmware characters 5-8
    assert (by["disk[02:03.0:0].vendor"].wanted, by["disk[02:03.0:0].model"].wanted,
            by["disk[02:03.0:0].revision"].wanted) == ("ATA", "VMware Virtual S", "0001")
    assert by["disk[02:03.0:0].media"].fidelity.value == "exact"
    # the ATAPI drive on the PIIX's secondary channel (unit 2), at QEMU's IDE function on stock
    cd = by["disk[00:01.1:2].model"]
    assert (cd.wanted, cd.presented) == ("VMware IDE CDR10", "QEMU DVD-ROM") and "ATAPI" in cd.reason


def test_libata_view_of_firmware_revisions():
    assert _libata_view(DiskStrings(model="M", revision="00000001")).revision == "0001"
    assert _libata_view(DiskStrings(model="M", revision="1.0")).revision == "1.0"   # chars 5-8 blank: 1-4
    assert _libata_view(DiskStrings(model="x" * 40)).model == "x" * 16


def test_lsi_logic_parallel_is_the_real_chip_where_the_build_has_it_else_the_nearest():
    profile = imported("""\
        scsi0.present = "TRUE"
        scsi0.virtualDev = "lsilogic"
        scsi0.pciSlotNumber = "16"
        scsi0:0.present = "TRUE"
        """)
    caps = stock()
    assert any(d.startswith("lsi53c895a,id=scsi0,") for d in devices_of(compile_profile(profile, resolve_target(), caps).argv))
    patched = devices_of(compile_profile(profile, resolve_target(), patched_storage(caps)).argv)
    assert any(d.startswith("lsi53c1030,id=scsi0,bus=pci.0,addr=0x10") for d in patched)


def test_scsi_id_7_of_the_parallel_controller_is_refused():
    profile = imported("""\
        scsi0.present = "TRUE"
        scsi0.virtualDev = "lsilogic"
        scsi0.pciSlotNumber = "16"
        scsi0:7.present = "TRUE"
        """)
    with pytest.raises(CompileError, match=r"disks\[scsi0-7\]\.unit: SCSI id 7 is the LSI 53c1030's own initiator id"):
        compile_profile(profile, resolve_target(), patched_storage(stock()))


def test_lsi_sas_disks_are_expected_only_on_a_build_that_shows_them():
    profile = load("vmware/esxi-4.0")
    caps = stock()
    media = [e for e in compile_profile(profile, resolve_target(), caps).expectations if e.selector.endswith(".media")]
    assert media and all(e.presented is None and "never turns it into a block device" in e.reason for e in media)
    patched = compile_profile(profile, resolve_target(), patched_storage(caps))
    assert all(e.presented == "disk" for e in patched.expectations if e.selector.endswith(".media"))
    assert any(d.startswith("mptsas1068,") and "x-sas-topology=on" in d for d in devices_of(patched.argv))
    assert "guestcompat.disks=0" not in patched.guest_cmdline


def test_units_past_qemu_s_ahci_ports_and_taken_twice_are_clear_errors():
    with pytest.raises(CompileError, match=r"unit: 7 is past the 6 units QEMU's ich9-ahci has \(VMware's has 30\)"):
        compile_profile(imported('sata0.present = "TRUE"\nsata0.pciSlotNumber = "35"\nsata0:7.present = "TRUE"\n'),
                        resolve_target(), stock())
    base = load("vmware/esxi-6.5")
    data = {"extends": "vmware/esxi-6.5",
            "disks": [{"name": "disk0", "controller": "scsi0", "unit": 0},
                      {"name": "other", "controller": "scsi0", "unit": 0}]}
    with pytest.raises(CompileError, match=r"disks\[other\]\.unit: 03:00\.0 unit 0 is already taken by disk 'disk0'"):
        compile_profile(load_mapping(data, "user/two"), resolve_target(), stock())
    assert base.disks


def test_strings_longer_than_the_bus_carries_are_refused():
    data = {"extends": "vmware/esxi-6.5",
            "disks": [{"name": "disk0", "controller": "scsi0", "unit": 0, "model": "a model of seventeen"}]}
    with pytest.raises(CompileError, match=r"disks\[disk0\]\.model: 'a model of seventeen' is 20 characters; this bus carries 16"):
        compile_profile(load_mapping(data, "user/long"), resolve_target(), stock())


def test_buslogic_is_imported_with_its_nearest_kind_never_refused():
    profile = imported('scsi0.present = "TRUE"\nscsi0.virtualDev = "buslogic"\nscsi0.pciSlotNumber = "16"\n'
                       'scsi0:0.present = "TRUE"\n')
    scsi0 = next(d for d in profile.pci.devices if d.name == "scsi0")
    assert scsi0.kind == "buslogic" and scsi0.substitute.kind == "qemu-lsi53c895a"
    assert "BusLogic" in scsi0.substitute.reason
    compile_profile(profile, resolve_target(), stock())


@pytest.mark.parametrize(("device", "per_link", "unit"), [
    (BlockDevice("sda", "VMware", "Virtual disk", "2.0", "03:00.0", hctl=(2, 0, 3, 0)), 1, 3),
    (BlockDevice("sdb", "VMware", "Virtual disk", "1.0", "00:10.0", hctl=(2, 0, 0, 0), sas_phy=4), 1, 4),
    (BlockDevice("sdc", "ATA", "VMware Virtual S", "0001", "02:03.0", hctl=(3, 0, 0, 0), ata_link=2), 1, 2),
    (BlockDevice("sr0", "QEMU", "QEMU DVD-ROM", "2.5+", "00:07.1", hctl=(1, 0, 1, 0), ata_link=1), 2, 3),
    (BlockDevice("nvme0n2", None, "QEMU NVMe Ctrl", "7.2", "13:00.0", nsid=2), 1, 1),
])
def test_a_block_device_s_unit_is_where_vmware_hangs_it(device, per_link, unit):
    assert device.unit(per_link) == unit
