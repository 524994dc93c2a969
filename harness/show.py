"""``guestcompat show``: the resolved profile and the guest's predicted PCI view as a tree.

The tree is what a guest of the *source* platform sees (the profile's wanted
topology, like ``lspci -tv``), each function annotated with its ids, physical
slot and predicted NIC name; where QEMU presents something else the line is
marked ``~`` and the presented value follows, so a reader sees at a glance
which parts of the machine will look different after the move.
"""

from __future__ import annotations

from dataclasses import dataclass

from guestcompat.bridges.topology import Placed, Topology
from guestcompat.detection.selectors import Pci, parse
from guestcompat.emulation.compiler import CompiledMachine
from guestcompat.emulation.fidelity import Expectation, Fidelity, fmt
from guestcompat.emulation.pci import nic_name, plan_pci, wanted_entries
from guestcompat.profiles.catalog import DeviceKind, load_catalog

ID_FIELDS = ("vendor", "device", "subsystem_vendor", "subsystem_device", "revision", "class_code", "present",
             "physical_slot", "secondary_bus")


@dataclass(frozen=True)
class TreeLine:
    """One function of the predicted tree; ``deviations`` maps field -> (presented, reason)."""

    depth: int
    text: str
    deviations: tuple[tuple[str, str, str], ...]


def predicted_tree(compiled: CompiledMachine) -> list[TreeLine]:
    """The wanted topology in firmware scan order, children under their bridge."""
    catalog = load_catalog()
    wanted: Topology = plan_pci(compiled.profile, catalog, catalog.machine(compiled.target.machine)).wanted
    kinds = {e.function.name: e.kind for e in wanted_entries(compiled.profile, catalog)}
    by_address: dict[str, list[tuple[str, Expectation]]] = {}
    for exp in compiled.expectations:
        selector = parse(exp.selector)
        if isinstance(selector, Pci) and exp.fidelity is not Fidelity.EXACT and selector.field in ID_FIELDS:
            by_address.setdefault(selector.address, []).append((selector.field, exp))
    children: dict[str | None, list[Placed]] = {}
    for placed in wanted.functions:
        children.setdefault(placed.parent, []).append(placed)

    lines: list[TreeLine] = []

    def walk(parent: str | None, depth: int) -> None:
        for placed in children.get(parent, []):
            lines.append(_line(placed, depth, kinds, by_address, wanted))
            walk(placed.name, depth + 1)

    walk(None, 0)
    return lines


def _line(placed: Placed, depth: int, kinds: dict[str, DeviceKind],
          by_address: dict[str, list[tuple[str, Expectation]]], wanted: Topology) -> TreeLine:
    kind = kinds.get(placed.name)
    address = str(placed.address)
    parts = [address]
    if kind is not None:
        parts.append(f"{kind.ids.vendor:04x}:{kind.ids.device:04x}")
        parts.append(kind.summary)
    parts.append(f"[{placed.name}]")
    if placed.secondary_bus is not None:
        parts.append(f"-> bus {placed.secondary_bus:02x}")
    if placed.physical_slot is not None:
        parts.append(f"slot {placed.physical_slot}")
    if kind is not None and kind.role == "nic":
        parts.append("=> " + nic_name(wanted, placed.address, placed.physical_slot))
    deviations = tuple((field, fmt(e.presented), e.reason or "") for field, e in by_address.get(address, []))
    return TreeLine(depth, "  ".join(parts), deviations)


def render(compiled: CompiledMachine) -> list[str]:
    """Text lines: the lineage, the tree (``~`` marks functions QEMU presents
    differently, with what it presents and a note number), then the notes."""
    profile = compiled.profile
    out = [f"{profile.name}: {profile.description}",
           f"lineage: {' -> '.join(profile.lineage)}",
           f"target: {compiled.target}", "",
           "guest view on the source platform (~ = presented differently under QEMU, [n] = why):", ""]
    notes: dict[str, int] = {}
    for line in predicted_tree(compiled):
        indent = "    " * line.depth
        if not line.deviations:
            out.append(f"  {indent}{line.text}")
            continue
        out.append(f"~ {indent}{line.text}")
        shown = []
        for field, presented, reason in line.deviations:
            number = notes.setdefault(reason, len(notes) + 1)
            shown.append(f"{field}={presented} [{number}]")
        out.append(f"  {indent}    QEMU: {', '.join(shown)}")
    extra = [(s.address, e) for e in compiled.expectations if not e.wanted and e.presented
             and isinstance(s := parse(e.selector), Pci) and s.field == "present"]
    if extra:
        out += ["", "functions only QEMU presents (the source platform has none there):"]
        for address, e in extra:
            number = notes.setdefault(e.reason or "", len(notes) + 1)
            out.append(f"+ {address} [{number}]")
    if notes:
        out += ["", "notes:"]
        out += [f"  [{n}] {reason}" for reason, n in notes.items()]
    return out
