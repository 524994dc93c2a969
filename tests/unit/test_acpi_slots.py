"""The slot SSDT: which slots get which _SUN, how it avoids QEMU's own objects, and that iasl accepts it."""

from __future__ import annotations

import pytest

from guestcompat.bridges.address import PciAddress
from guestcompat.bridges.topology import Function, place
from guestcompat.emulation.acpi_slots import slot_assignments, slot_table
from guestcompat.emulation.artefact import Artefact
from guestcompat.emulation.compiler import compile_profile
from guestcompat.errors import RunError, TopologyError
from guestcompat.harness.artefacts import build, substitute
from guestcompat.profiles.loader import load


def fn(name, address, **kw):
    return Function(name=name, address=PciAddress.parse(address), **kw)


def small_topology():
    return place([
        fn("host", "00:00.0"),
        fn("br", "00:11.0", is_bridge=True, child_slot_base=32),
        fn("rp0", "00:15.0", is_bridge=True, is_root_port=True, slot_number=160),
        fn("rp1", "00:15.1", is_bridge=True, is_root_port=True, slot_number=161),
        fn("nic", "00:01.0", parent="br"),
        fn("disk", "00:00.0", parent="rp0"),
    ])


def test_assignments_follow_the_bridges_numbering():
    topology = small_topology()
    assert slot_assignments(topology) == {("br", 1 << 3): 33, ("rp0", 0): 160, ("rp1", 0): 161}


def test_two_functions_of_one_device_cannot_have_two_slots():
    topology = place([fn("a", "00:05.0", physical_slot=1), fn("b", "00:05.1", physical_slot=2)])
    with pytest.raises(TopologyError, match="b at 00:05.1: physical slot 2, but a .* has slot 1"):
        slot_assignments(topology)


def test_each_object_is_created_only_where_the_firmware_has_none_and_gets_its_sun_by_scope():
    """QEMU 7.2's DSDT declares function 0 of bus-0 slots, 10.0's every present function: the table
    creates an object only if CondRefOf finds none, so it loads whole on either (booted: both PASS)."""
    topology = small_topology()
    table = slot_table(topology, root="\\_SB.PCI0", title="t")
    asl = table.asl
    for path, adr in (("\\_SB.PCI0.S88", 0x00110000), ("\\_SB.PCI0.SA8", 0x00150000),
                      ("\\_SB.PCI0.SA9", 0x00150001), ("\\_SB.PCI0.S88.S08", 0x00010000),
                      ("\\_SB.PCI0.SA8.S00", 0), ("\\_SB.PCI0.SA9.S00", 0)):
        assert f"External ({path}, DeviceObj)" in asl
        guarded = f"If (LNot (CondRefOf ({path})))"
        assert guarded in asl and f"Device ({path}) {{ Name (_ADR, 0x{adr:08X}) }}" in asl.split(guarded, 1)[1]
    assert "If (LNot (CondRefOf (\\_SB.PCI0.SA9)))  // 00:15.1 rp1" in asl
    assert "If (LNot (CondRefOf (\\_SB.PCI0.SA9.S00)))  // 03:00.0 (empty slot)" in asl
    assert "Scope (\\_SB.PCI0.S88.S08) { Name (_SUN, 33) }" in asl
    assert "Scope (\\_SB.PCI0.SA8.S00) { Name (_SUN, 160) }" in asl
    assert "Scope (\\_SB.PCI0.SA9.S00) { Name (_SUN, 161) }" in asl
    assert asl.count("Name (_SUN") == 3  # the bridges and root ports themselves get no slot
    # a child's guard comes after its parent's, so the parent exists when the child is created
    assert asl.index("CondRefOf (\\_SB.PCI0.SA8)") < asl.index("CondRefOf (\\_SB.PCI0.SA8.S00)")
    assert table.slots == {(1, 1): 33, (2, 0): 160, (3, 0): 161}


def test_no_slots_no_table():
    table = slot_table(place([fn("host", "00:00.0")]), root="\\_SB.PCI0", title="t")
    assert (table.asl, table.slots) == ("", {})


def test_esxi65_table_compiles_with_iasl(tmp_path, monkeypatch):
    monkeypatch.setenv("GUESTCOMPAT_CACHE", str(tmp_path))
    compiled = compile_profile(load("vmware/esxi-6.5"))
    (artefact,) = compiled.artefacts
    aml = build(artefact)
    assert aml.read_bytes()[:4] == b"SSDT" and aml.parent == tmp_path / "artefacts"
    assert build(artefact, iasl="/nonexistent/iasl") == aml  # cached by content: iasl not needed again
    assert any(artefact.placeholder in arg for arg in compiled.argv)


def test_missing_iasl_names_the_table(tmp_path, monkeypatch):
    monkeypatch.setenv("GUESTCOMPAT_CACHE", str(tmp_path))
    artefact = Artefact("ssdt-x.aml", "acpi-asl", 'DefinitionBlock ("", "SSDT", 2, "X", "Y", 1) {}\n')
    with pytest.raises(RunError, match="cannot build ACPI table ssdt-x.aml: '/nonexistent/iasl' .* not installed"):
        build(artefact, iasl="/nonexistent/iasl")
    assert not list((tmp_path / "artefacts").iterdir())  # no half-built leftovers


def test_substitute_escapes_paths_and_refuses_unbuilt_placeholders(tmp_path):
    artefact = Artefact("t.aml", "acpi-asl", "x")
    argv = ["-acpitable", f"file={artefact.placeholder}"]
    assert substitute(argv, {artefact.placeholder: tmp_path / "a,b.aml"}) == ["-acpitable", f"file={tmp_path}/a,,b.aml"]
    with pytest.raises(RunError, match="artefact nobody built: file=@artefact/t.aml"):
        substitute(argv, {})
