"""The firmware bus walk and the topology's refusal of impossible layouts."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from guestcompat.bridges.address import PciAddress
from guestcompat.bridges.topology import Function, place, plan
from guestcompat.errors import TopologyError

A = PciAddress.parse


def vmware_bridges() -> list[Function]:
    out = [Function("agp", A("00:01.0"), is_bridge=True, stated_secondary=1),
           Function("pciBridge0", A("00:11.0"), is_bridge=True, stated_secondary=2, child_slot_base=32)]
    for dev in range(0x15, 0x19):
        for fn in range(8):
            out.append(Function(f"rp{dev:x}.{fn}", PciAddress(0, dev, fn), is_bridge=True, is_root_port=True,
                                slot_number=160 + 32 * (dev - 0x15) + fn,
                                stated_secondary=3 + 8 * (dev - 0x15) + fn))
    return out


def test_vmware_layout_gets_vmware_bus_numbers_and_slots():
    topo = plan([*vmware_bridges(), Function("nic", A("0b:00.0")), Function("scsi", A("03:00.0")),
                 Function("e1000", A("02:01.0")), Function("nic2", A("0c:00.0"))])
    assert topo.by_name("pciBridge0").secondary_bus == 2
    assert topo.by_name("rp18.7").secondary_bus == 0x22
    assert topo.by_name("nic").parent == "rp16.0" and topo.by_name("nic").physical_slot == 192
    assert topo.by_name("nic2").physical_slot == 193
    assert topo.by_name("scsi").physical_slot == 160
    assert topo.by_name("e1000").parent == "pciBridge0" and topo.by_name("e1000").physical_slot == 33


def test_wrong_stated_secondary_bus():
    bridges = vmware_bridges()
    bridges[1] = Function("pciBridge0", A("00:11.0"), is_bridge=True, stated_secondary=5)
    with pytest.raises(TopologyError, match="secondary_bus is 05, but firmware numbering .* gives it bus 02"):
        plan(bridges)


def test_device_behind_missing_bridge():
    with pytest.raises(TopologyError, match=r"nic at 40:00.0: no bridge leads to bus 40"):
        plan([*vmware_bridges(), Function("nic", A("40:00.0"))])


def test_two_functions_at_one_address():
    with pytest.raises(TopologyError, match="b and a are both at 00:10.0"):
        plan([Function("a", A("00:10.0")), Function("b", A("00:10.0"))])


def test_function_without_function_zero():
    with pytest.raises(TopologyError, match=r"needs function 0 at 00:10.0"):
        plan([Function("a", A("00:10.3"))])


def test_second_device_behind_root_port():
    with pytest.raises(TopologyError, match="only device 00 exists"):
        plan([*vmware_bridges(), Function("nic", A("03:01.0"))])


def test_bus_numbers_run_out():
    # 31 bridges per bus, nested 9 deep, exceed 255 buses.
    functions, parent_bus = [], 0
    for depth in range(9):
        for dev in range(1, 32):
            functions.append(Function(f"b{depth}.{dev}", PciAddress(parent_bus, dev, 0), is_bridge=True))
        parent_bus = parent_bus + 1 if depth == 0 else parent_bus + 31
    with pytest.raises(TopologyError, match="no bus number left"):
        plan(functions)


def test_place_by_parent_matches_plan():
    """QEMU placement by parent bridge gives the same buses as the guest-address walk."""
    wanted = plan([*vmware_bridges(), Function("nic", A("0b:00.0"))])
    from dataclasses import replace
    presented = place([replace(p.function, parent=p.parent) for p in wanted.functions])
    assert {p.name: p.address for p in presented.functions} == {p.name: p.address for p in wanted.functions}


def test_substitute_bridge_in_another_slot_keeps_numbers():
    bridges = [Function("agp-sub", A("00:0e.0"), is_bridge=True),
               Function("pciBridge0", A("00:11.0"), is_bridge=True),
               Function("rp", A("00:15.0"), is_bridge=True, is_root_port=True),
               Function("nic", A("00:00.0"), parent="rp")]
    topo = place(bridges)
    assert topo.by_name("pciBridge0").secondary_bus == 2
    assert topo.by_name("nic").address == A("03:00.0")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 31), st.integers(0, 7), st.booleans()), min_size=1, max_size=40,
                unique_by=lambda t: (t[0], t[1])))
def test_walk_invariants(entries):
    """Every bridge gets a distinct bus; subordinate >= secondary; bus numbers follow scan order."""
    functions = [Function(f"f{d}.{f}", PciAddress(0, d, f), is_bridge=b) for d, f, b in entries]
    zeros = {(d) for d, f, _ in entries if f == 0}
    functions = [fn for fn in functions if fn.address.device in zeros]
    assume(functions)  # a device without function 0 is not scanned: nothing to plan
    topo = plan(functions)
    buses = [p.secondary_bus for p in topo.bridges]
    assert buses == sorted(buses) and len(set(buses)) == len(buses)
    assert all(p.subordinate_bus >= p.secondary_bus for p in topo.bridges)


@pytest.mark.parametrize("text,expected", [("0b:00.0", (11, 0, 0)), ("0000:0B:1f.7", (11, 31, 7))])
def test_address_parse(text, expected):
    assert PciAddress.parse(text) == PciAddress(*expected)
    assert str(PciAddress.parse(text)) == f"{expected[0]:02x}:{expected[1]:02x}.{expected[2]}"
