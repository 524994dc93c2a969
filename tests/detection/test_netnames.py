"""The one NIC-naming model (detection/netnames.py) against systemd's net_id rules, multifunction included."""

from __future__ import annotations

import pytest

from guestcompat.detection.models import fingerprint_from_captures
from guestcompat.detection.netnames import PciLocation, multifunction_devices, name_at, predicted_name
from guestcompat.harness.replay import compare, lspci_name

DUAL_PORT = """\
Slot:\t00:00.0
Class:\tHost bridge [0600]
Vendor:\tIntel Corporation [8086]
Device:\t440BX/ZX/DX - 82443BX/ZX/DX Host bridge [7190]

Slot:\t02:00.0
Class:\tEthernet controller [0200]
Vendor:\tIntel Corporation [8086]
Device:\t82576 Gigabit Network Connection [10c9]

Slot:\t02:00.1
Class:\tEthernet controller [0200]
Vendor:\tIntel Corporation [8086]
Device:\t82576 Gigabit Network Connection [10c9]

Slot:\t0b:00.0
Class:\tEthernet controller [0200]
Vendor:\tVMware [15ad]
Device:\tVMXNET3 Ethernet Controller [07b0]
PhySlot:\t192
"""


def test_slot_then_path_names_and_the_function_suffix():
    assert predicted_name(0x0B, 0, 0, 192) == "ens192"
    assert predicted_name(0x00, 0x11, 0, None) == "enp0s17"
    assert predicted_name(0x04, 0, 1, 161) == "ens161f1"
    assert predicted_name(0x03, 0, 0, None, domain=1) == "enP1p3s0"
    assert predicted_name(0x03, 0, 0, 7, domain=1) == "enP1s7"


def test_function_0_of_a_multifunction_device_ends_in_f0_as_net_id_names_it():
    # net_id: `if (func > 0 || is_pci_multifunction(pcidev)) "f%u"` — the header-type bit 7
    assert predicted_name(0x02, 0, 0, None, multifunction=True) == "enp2s0f0"
    assert predicted_name(0x0B, 0, 0, 160, multifunction=True) == "ens160f0"
    assert predicted_name(0x02, 0, 0, None, multifunction=False) == "enp2s0"


def test_the_bit_is_inferred_from_the_functions_present_unless_it_was_read():
    port0, port1, lone = PciLocation.parse("02:00.0"), PciLocation.parse("02:00.1"), PciLocation.parse("0b:00.0")
    assert multifunction_devices([port0, port1, lone]) == {(0, 2, 0)}
    present = [port0, port1, lone]
    assert [name_at(loc, None, present) for loc in present] == ["enp2s0f0", "enp2s0f1", "enp11s0"]
    assert name_at(lone, None, present, multifunction=True) == "enp11s0f0"  # the config byte wins
    assert PciLocation.parse("0001:02:00.1") == PciLocation(1, 2, 0, 1)
    with pytest.raises(ValueError, match="not a PCI address"):
        PciLocation.parse("02:00")


def test_replay_names_a_dual_port_nic_as_net_id_does():
    fp = fingerprint_from_captures(DUAL_PORT, None)
    present = {d.address: d for d in fp.tools.lspci}
    names = {a: lspci_name(d, present, fp) for a, d in present.items() if d.class_id >> 8 == 0x02}
    assert names == {"02:00.0": "enp2s0f0", "02:00.1": "enp2s0f1", "0b:00.0": "ens192"}
    # A replay that lost the second port renames the first: the comparison sees it.
    single = fingerprint_from_captures(DUAL_PORT.replace("Slot:\t02:00.1", "Slot:\t03:00.0"), None)
    lost = [d for d in compare(fp, single).deviations if d.category == "names"]
    assert any(d.subject.startswith("NIC name of 02:00.0") and (d.wanted, d.observed) == ("'enp2s0f0'", "'enp2s0'")
               for d in lost), lost
