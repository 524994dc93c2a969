"""An ACPI table (SSDT, in ASL) that gives PCI slots the profile's physical slot numbers.

Guests read a function's physical slot from ``/sys/bus/pci/slots/<N>``:
Linux's ``drivers/acpi/pci_slot.c`` registers slot ``N`` for every ACPI
device object below a PCI bus that has ``_ADR`` and ``_SUN = N`` (no
``_EJ0`` needed), and systemd names a NIC in slot 192 ``ens192``. So
declaring ``_SUN`` for each slot of the placed topology is enough, as long
as the table does not redeclare an object the firmware's DSDT already has:
a duplicate name makes the kernel drop the rest of the table.

Which objects the DSDT declares changes between QEMU releases (measured with
ACPI PCI hotplug off: 7.2 declares function 0 of each occupied bus-0 slot;
10.0 every present function, behind bridges and root ports too, and a
table written for 7.2 loses the slots of the NICs and disks behind root
ports on 10.0: ``ens192`` became ``enp11s0``). So the table does not guess:
each object is created only where the firmware has none
(``If (LNot (CondRefOf (…)))``, run when the table loads), and ``_SUN`` is
added to it with ``Scope``. The same table is right on every release.

Device objects follow the ``S<devfn in hex>`` naming of QEMU's DSDT so a
reader can match both tables. The ASL is the artefact's source, kept
readable (comments name each function) because it is reviewed in golden
files; ``iasl`` compiles it at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from guestcompat.bridges.topology import Placed, Topology
from guestcompat.errors import TopologyError

NodeKey = tuple[str | None, int]
"""(name of the bridge the object sits behind, None = root bus; devfn on that bus)."""


@dataclass
class _Node:
    devfn: int
    label: str
    sun: int | None = None
    children: dict[int, _Node] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"S{self.devfn:02X}"

    @property
    def adr(self) -> int:
        return (self.devfn >> 3) << 16 | (self.devfn & 7)


@dataclass(frozen=True)
class SlotTable:
    asl: str
    """The SSDT's source; empty when no slot needs declaring."""
    slots: dict[tuple[int, int], int]
    """(bus, device) → slot number the guest will read, for every slot the table declares."""


def slot_assignments(topology: Topology) -> dict[NodeKey, int]:
    """Which slot gets which number: each function's ``physical_slot`` (per device, not function),
    and the downstream slot of every root port with a slot number, occupied or not (its PCIe slot
    exists on the source platform either way)."""
    out: dict[NodeKey, int] = {}
    owner: dict[NodeKey, str] = {}
    for placed in topology.functions:
        if placed.physical_slot is None:
            continue
        key = (placed.parent, placed.address.device << 3)
        if key in out and out[key] != placed.physical_slot:
            raise TopologyError(f"{placed.name} at {placed.address}: physical slot {placed.physical_slot}, but "
                                f"{owner[key]} in the same PCI device has slot {out[key]} (a slot holds a whole device)")
        out.setdefault(key, placed.physical_slot)
        owner.setdefault(key, placed.name)
    for placed in topology.bridges:
        if placed.function.is_root_port and placed.function.slot_number is not None:
            out.setdefault((placed.name, 0), placed.function.slot_number)
    return out


def slot_table(topology: Topology, *, root: str, title: str,
               oem_id: str = "GCOMPT", table_id: str = "SLOTS") -> SlotTable:
    """The SSDT declaring ``_SUN`` for every slot of ``topology`` (see :func:`slot_assignments`).

    ``root`` is the ACPI path of the PCI root bus (``\\_SB.PCI0``), which the firmware declares.
    """
    assignments = slot_assignments(topology)
    if not assignments:
        return SlotTable("", {})
    by_key = {(p.parent, p.address.device << 3 | p.address.function): p for p in topology.functions}
    roots: dict[int, _Node] = {}
    nodes: dict[NodeKey, _Node] = {}

    def node(key: NodeKey, bus: int) -> _Node:
        if key in nodes:
            return nodes[key]
        parent, devfn = key
        placed = by_key.get(key)
        label = (f"{placed.address} {placed.name}" if placed else
                 f"{bus:02x}:{devfn >> 3:02x}.{devfn & 7} (empty slot)")
        new = _Node(devfn, label)
        if parent is None:
            roots[devfn] = new
        else:
            bridge = topology.by_name(parent)
            node((bridge.parent, _devfn(bridge)), bridge.address.bus).children[devfn] = new
        nodes[key] = new
        return new

    slots: dict[tuple[int, int], int] = {}
    for (parent, devfn), sun in sorted(assignments.items(), key=lambda kv: (_bus_of(topology, kv[0][0]), kv[0][1])):
        bus = _bus_of(topology, parent)
        node((parent, devfn), bus).sun = sun
        slots[(bus, devfn >> 3)] = sun
    lines = [
        "/*",
        f" * Physical slot numbers (ACPI _SUN) for {_comment_safe(title)}.",
        " * Generated by guestcompat from the profile's PCI topology; Linux's pci_slot driver turns",
        " * each _SUN into /sys/bus/pci/slots/<N>, which udev uses for names like ens<N>.",
        " * Each device object is created only where the firmware's DSDT has none (which ones it has",
        " * differs between QEMU releases); Scope then adds the _SUN to whichever object is there.",
        " */",
        f'DefinitionBlock ("", "SSDT", 2, "{oem_id}", "{table_id}", 0x00000001)',
        "{",
        f"    External ({root}, DeviceObj)",
    ]
    body: list[str] = []
    paths: list[str] = []
    for _, child in sorted(roots.items()):
        _emit(child, root, body, paths)
    # iasl resolves names at compile time: it needs to be told the conditional ones will exist.
    lines += [f"    External ({path}, DeviceObj)" for path in paths]
    lines += body + ["}"]
    return SlotTable("\n".join(lines) + "\n", slots)


def _devfn(placed: Placed) -> int:
    return placed.address.device << 3 | placed.address.function


def _bus_of(topology: Topology, bridge: str | None) -> int:
    if bridge is None:
        return 0
    secondary = topology.by_name(bridge).secondary_bus
    assert secondary is not None
    return secondary


def _emit(node: _Node, parent: str, lines: list[str], paths: list[str]) -> None:
    """``node``'s object if the firmware has none, its ``_SUN``, then its children's, by full path."""
    path = f"{parent}.{node.name}"
    paths.append(path)
    lines += ["", f"    If (LNot (CondRefOf ({path})))  // {node.label}",
              "    {",
              f"        Device ({path}) {{ Name (_ADR, 0x{node.adr:08X}) }}",
              "    }"]
    if node.sun is not None:
        lines.append(f"    Scope ({path}) {{ Name (_SUN, {node.sun}) }}")
    for _, child in sorted(node.children.items()):
        _emit(child, path, lines, paths)


def _comment_safe(text: str) -> str:
    return text.replace("*/", "* /")
