"""VMware's first power-on placement (profiles/importers/vmx_placement.py, catalog/vmware-placement.toml):
the product told from the descriptor, the rule per product, the slot encodings, and how a predicted
placement is marked in the profile and the fidelity report."""

from __future__ import annotations

import pytest

from guestcompat.emulation.arches import resolve_target
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.report import fidelity_lines
from guestcompat.errors import ProfileError
from guestcompat.profiles.importers.vmx import import_vmx, slot_to_address
from guestcompat.profiles.importers.vmx_placement import Pending, guess_product, guest_slot, predict
from guestcompat.profiles.loader import load_mapping


def _vmx(hw: int, *lines: str) -> str:
    return f'virtualHW.version = "{hw}"\n' + "".join(f"{line}\n" for line in lines)


@pytest.mark.parametrize("slot, address, guest", [
    (1184, "04:00.0", 161), (1216, "0c:00.0", 193), (2208, "05:00.0", 162), (7424, "22:00.0", 263),
    (160, "03:00.0", 160), (33, "02:01.0", 33),
])
def test_root_port_functions_in_both_spellings(slot, address, guest):
    assert slot_to_address(slot, 14) == address and guest_slot(slot) == guest
    with pytest.raises(ValueError, match="names no root port function"):
        slot_to_address(1024 + 100, 14)


@pytest.mark.parametrize("lines, product, recognised", [
    (('sched.cpu.min = "0"', 'ethernet0.addressType = "vpx"'), "esxi", True),
    (('ethernet0.connectionType = "nat"', 'gui.lastPoweredViewMode = "fullscreen"'), "desktop", True),
    (('sched.swap.derivedName = "/vmfs/volumes/x/y.vswp"',), "esxi", True),
    (('virtualHW.productCompatibility = "hosted"',), "desktop", True),
    (('chipset.motherboardLayout = "acpi"', 'gui.x = "1"'), "esxi-acpi", True),
    ((), "esxi", False),
])
def test_the_product_is_told_from_what_only_it_writes(lines, product, recognised):
    settings = dict(line.lower().split(" = ") for line in lines)
    settings = {k: v.strip('"') for k, v in settings.items()}
    guess = guess_product(settings, 14)
    assert (guess.product, guess.recognised) == (product, recognised)
    assert guess_product(settings, 4).product == "legacy"


def test_esxi_puts_pcie_devices_on_root_ports_and_pci_ones_behind_the_bridge():
    pending = [Pending("ethernet0", "ethernet", 0, "vmxnet3"), Pending("ethernet1", "ethernet", 1, "e1000"),
               Pending("scsi0", "scsi", 0, "pvscsi"), Pending("sata0", "sata", 0), Pending("vmci0", "vmci", 0),
               Pending("ethernet2", "ethernet", 2, "vmxnet3")]
    slots = {p.prefix: p.slot for p in predict(pending, {17, 21, 22, 23, 24}, 14, "esxi")}
    assert slots == {"vmci0": 32, "sata0": 33, "scsi0": 160, "ethernet0": 192, "ethernet1": 34, "ethernet2": 224}
    # hardware 20 no longer numbers VMCI; numbers already used are skipped
    slots = {p.prefix: p.slot for p in predict(pending, {160}, 20, "esxi")}
    assert slots == {"sata0": 32, "ethernet1": 33, "scsi0": 192, "ethernet0": 224, "ethernet2": 256}


def test_workstation_numbers_usb_first_then_nics_sound_ehci_vmci_sata():
    pending = [Pending(p, f, 0, d) for p, f, d in (("usb", "usb", None), ("ethernet0", "ethernet", "e1000"),
                                                   ("sound", "sound", None), ("ehci", "ehci", None),
                                                   ("vmci0", "vmci", None), ("sata0", "sata", None),
                                                   ("usb_xhci", "usb_xhci", None), ("scsi0", "scsi", "lsilogic"))]
    slots = {p.prefix: p.slot for p in predict(pending, set(), 16, "desktop")}
    assert slots == {"usb": 32, "ethernet0": 33, "sound": 34, "ehci": 35, "vmci0": 36, "sata0": 37,
                     "usb_xhci": 160, "scsi0": 16}


def test_a_fresh_workstation_vmx_gets_ens33_and_the_profile_says_predicted():
    text = _vmx(20, 'ethernet0.present = "TRUE"', 'ethernet0.virtualDev = "e1000"',
                'ethernet0.connectionType = "nat"', 'usb.present = "TRUE"', 'sound.present = "TRUE"',
                'sound.virtualDev = "hdaudio"', 'usb_xhci.present = "TRUE"', 'serial0.present = "TRUE"',
                'serial0.fileType = "pipe"', 'floppy0.present = "TRUE"', 'ethernet1.present = "TRUE"',
                'ethernet1.virtualDev = "vmxnet"', 'ethernet1.generatedAddress = "00:0c:29:00:00:02"')
    result = import_vmx(text, "imported/ws", "ws.vmx")
    devices = {d.name: d for d in result.profile.pci.devices}
    assert str(devices["ethernet0"].address) == "02:01.0" and devices["ethernet0"].placement == "predicted"
    assert "Workstation/Fusion" in devices["ethernet0"].placement_basis
    assert devices["ethernet1"].kind == "vmxnet" and devices["ethernet1"].substitute.kind == "vmxnet3"
    assert devices["sound"].kind == "vmware-hda" and devices["sound"].substitute.kind is None
    assert devices["usb_xhci"].kind == "vmware-xhci" and str(devices["usb_xhci"].address) == "03:00.0"
    notes = "\n".join(result.notes)
    assert "serial0: serial port (ISA COM) (pipe)" in notes and "floppy0: floppy drive" in notes
    assert any(line.startswith("pci.devices[ethernet0].address = 02:01.0: predicted") and "ens33" in line
               for line in result.inferred)
    compiled = compile_profile(result.profile, resolve_target(None))
    report = "\n".join(fidelity_lines(compiled))
    assert "predicted placements" in report and "ethernet0 at 02:01.0" in report


def test_a_read_slot_number_is_never_replaced_and_a_prediction_needs_its_rule():
    text = _vmx(14, 'ethernet0.present = "TRUE"', 'ethernet0.virtualDev = "vmxnet3"', 'ethernet0.pciSlotNumber = "224"',
                'ethernet1.present = "TRUE"', 'ethernet1.virtualDev = "vmxnet3"', 'ethernet1.pciSlotNumber = "-1"')
    result = import_vmx(text, "imported/x", "x.vmx")
    devices = {d["name"]: d for d in result.data["pci"]["devices"]}
    assert devices["ethernet0"] == {"name": "ethernet0", "kind": "vmxnet3", "address": "13:00.0"}
    assert devices["ethernet1"]["address"] == "03:00.0" and devices["ethernet1"]["placement"] == "predicted"
    assert any("not recognisable" in n for n in result.notes)   # no key tells ESXi from Workstation here
    with pytest.raises(ProfileError, match="placement_basis go together"):
        load_mapping({"extends": "vmware/base", "pci": {"devices": [
            {"name": "e", "kind": "vmxnet3", "address": "03:00.0", "placement": "predicted"}]}}, "t/x")


def test_hardware_4_places_everything_on_bus_0():
    text = _vmx(4, 'scsi0.present = "TRUE"', 'ethernet0.present = "TRUE"', 'ethernet1.present = "TRUE"',
                'sound.present = "TRUE"', 'usb.present = "TRUE"')
    devices = {d["name"]: d["address"] for d in import_vmx(text, "imported/h4", "h4.vmx").data["pci"]["devices"]}
    assert devices == {"scsi0": "00:10.0", "ethernet0": "00:11.0", "ethernet1": "00:12.0", "sound": "00:13.0",
                       "usb": "00:07.2"}


def test_the_product_can_be_named_when_the_descriptor_tells_wrong():
    text = _vmx(14, 'ethernet0.present = "TRUE"', 'ethernet0.virtualDev = "e1000"', 'usb.present = "TRUE"',
                'vmci0.present = "TRUE"')
    auto = import_vmx(text, "imported/a", "a.vmx")        # usb.present: a Workstation/Fusion hint
    named = import_vmx(text, "imported/e", "e.vmx", product="esxi")
    assert {d["name"]: d["address"] for d in auto.data["pci"]["devices"]} == \
        {"ethernet0": "02:01.0", "usb": "02:00.0"}        # Workstation: usb, then the NIC (ens33)
    assert {d["name"]: d["address"] for d in named.data["pci"]["devices"]} == \
        {"ethernet0": "02:02.0", "usb": "02:00.0"}        # ESXi: usb, VMCI (numbered up to hw19), then the NIC
    assert any("--product" in line for line in named.inferred)
