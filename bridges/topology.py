"""PCI topology: which function sits where, and which bus numbers firmware gives bridges.

Profiles write guest-visible addresses (``0b:00.0``), but bus numbers are not
chosen by anyone: firmware assigns them depth-first, in (device, function)
order, one per bridge. So the topology is solved, not declared:

* :func:`plan` walks the profile's bridges the way firmware does, finds the
  bridge each function sits behind, checks the profile's stated secondary bus
  numbers against that walk, and works out the physical slot number the guest
  will read for each function (root port PSN, or ACPI ``_SUN`` behind a
  conventional bridge);
* the same walk over what QEMU will actually get (machine functions, substitutes,
  omissions) gives the presented addresses, which the compiler turns into
  ``bus=``/``addr=`` and the harness compares with the guest.

Conflicts (two functions at one address, a device behind a missing bridge,
bus > 255, a function without function 0, a second device behind a root
port) are :class:`~guestcompat.errors.TopologyError` with the entry's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from guestcompat.bridges.address import PciAddress
from guestcompat.errors import TopologyError

ROOT_BUS = 0
MAX_BUS = 255


@dataclass(frozen=True)
class Function:
    """One PCI function to place: a bridge (it gets a bus) or an endpoint."""

    name: str
    address: PciAddress
    is_bridge: bool = False
    is_root_port: bool = False
    stated_secondary: int | None = None
    slot_number: int | None = None
    """Root port: the physical slot number its downstream device reports."""
    child_slot_base: int | None = None
    """Conventional bridge: device dd behind it reports slot base + dd."""
    physical_slot: int | None = None
    """Explicit slot number of this function (overrides what its parent implies)."""
    parent: str | None = None
    """For :func:`place`: the bridge this function sits behind (None = root bus)."""


@dataclass(frozen=True)
class Placed:
    """A function with everything firmware and the topology decide about it."""

    function: Function
    address: PciAddress
    """Where the guest finds it (bus number as firmware assigned it)."""
    parent: str | None
    """Name of the bridge it sits behind; None = the root bus."""
    secondary_bus: int | None
    subordinate_bus: int | None
    physical_slot: int | None

    @property
    def name(self) -> str:
        return self.function.name


@dataclass(frozen=True)
class Topology:
    """A solved topology, in firmware scan order."""

    functions: tuple[Placed, ...]

    def by_name(self, name: str) -> Placed:
        for placed in self.functions:
            if placed.name == name:
                return placed
        raise KeyError(name)

    def at(self, address: PciAddress) -> Placed | None:
        for placed in self.functions:
            if placed.address == address:
                return placed
        return None

    @property
    def bridges(self) -> tuple[Placed, ...]:
        return tuple(p for p in self.functions if p.function.is_bridge)


def plan(functions: Iterable[Function], *, check_stated: bool = True) -> Topology:
    """Solve parents and bus numbers for functions whose addresses are guest-visible (``0b:00.0``)."""
    functions = list(functions)
    _check_unique(functions)
    _check_function_zero(functions)
    by_bus: dict[int, list[Function]] = {}
    for fn in functions:
        by_bus.setdefault(fn.address.bus, []).append(fn)
    topology, reached = _walk(lambda parent, bus: by_bus.get(bus, []), check_stated)
    orphans = [fn for fn in functions if fn.address.bus not in reached]
    if orphans:
        fn = orphans[0]
        bridges = sorted((p for p in topology.functions if p.secondary_bus is not None),
                         key=lambda p: p.secondary_bus or 0)
        have = ", ".join(f"{p.secondary_bus:02x} ({p.name})" for p in bridges) or "none"
        raise TopologyError(f"{fn.name} at {fn.address}: no bridge leads to bus {fn.address.bus:02x} "
                            f"(buses behind bridges: {have})")
    return topology


def place(functions: Iterable[Function]) -> Topology:
    """Solve bus numbers for functions placed by parent bridge (``Function.parent``), as QEMU places them.

    Only device and function of ``Function.address`` count; the bus is what firmware will assign.
    """
    functions = list(functions)
    names = {fn.name for fn in functions if fn.is_bridge}
    by_parent: dict[str | None, list[Function]] = {}
    for fn in functions:
        if fn.parent is not None and fn.parent not in names:
            raise TopologyError(f"{fn.name}: its bridge {fn.parent} does not exist")
        by_parent.setdefault(fn.parent, []).append(fn)
    for parent, children in by_parent.items():
        seen: dict[tuple[int, int], str] = {}
        for fn in children:
            key = (fn.address.device, fn.address.function)
            if key in seen:
                where = f"behind {parent}" if parent else "on the root bus"
                raise TopologyError(f"{fn.name} and {seen[key]} are both at device {key[0]:02x}.{key[1]} {where}")
            seen[key] = fn.name
    topology, _ = _walk(lambda parent, bus: by_parent.get(parent.name if parent else None, []), False)
    return topology


def _walk(children_of, check_stated: bool) -> tuple[Topology, set[int]]:
    """Firmware's bus walk: depth-first, in (device, function) order, one bus per bridge."""
    placed: list[Placed] = []
    next_bus = [ROOT_BUS + 1]
    reached: set[int] = set()

    def walk(bus: int, parent: Function | None) -> int:
        reached.add(bus)
        highest = bus
        children = sorted(children_of(parent, bus), key=lambda f: (f.address.device, f.address.function))
        for fn in children:
            _check_behind_root_port(fn, parent)
            slot = _slot_for(fn, parent)
            address = PciAddress(bus, fn.address.device, fn.address.function)
            parent_name = parent.name if parent else None
            if not fn.is_bridge:
                placed.append(Placed(fn, address, parent_name, None, None, slot))
                continue
            secondary = next_bus[0]
            if secondary > MAX_BUS:
                raise TopologyError(f"{fn.name} at {address}: no bus number left (bus numbers end at ff)")
            if check_stated and fn.stated_secondary is not None and fn.stated_secondary != secondary:
                raise TopologyError(
                    f"{fn.name} at {address}: secondary_bus is {fn.stated_secondary:02x}, but firmware numbering "
                    f"(depth-first in slot order) gives it bus {secondary:02x}")
            next_bus[0] += 1
            index = len(placed)
            placed.append(Placed(fn, address, parent_name, secondary, None, slot))
            subordinate = walk(secondary, fn)
            placed[index] = Placed(fn, address, parent_name, secondary, subordinate, slot)
            highest = max(highest, subordinate)
        return highest

    walk(ROOT_BUS, None)
    return Topology(tuple(placed)), reached


def _check_unique(functions: Sequence[Function]) -> None:
    seen: dict[PciAddress, str] = {}
    for fn in functions:
        if fn.address in seen:
            raise TopologyError(f"{fn.name} and {seen[fn.address]} are both at {fn.address}")
        seen[fn.address] = fn.name


def _check_function_zero(functions: Sequence[Function]) -> None:
    zeros = {fn.address.slot for fn in functions if fn.address.function == 0}
    for fn in functions:
        if fn.address.function and fn.address.slot not in zeros:
            raise TopologyError(
                f"{fn.name} at {fn.address}: a multifunction device needs function 0 at "
                f"{fn.address.with_function(0)} (guests only scan functions 1-7 when function 0 exists)")


def _check_behind_root_port(fn: Function, parent: Function | None) -> None:
    if parent is not None and parent.is_root_port and fn.address.device != 0:
        raise TopologyError(f"{fn.name} at {fn.address}: behind root port {parent.name} only device 00 exists "
                            f"(a PCIe link has one device); use {fn.address.bus:02x}:00.{fn.address.function}")


def _slot_for(fn: Function, parent: Function | None) -> int | None:
    if fn.physical_slot is not None:
        return fn.physical_slot
    if parent is None:
        return None
    if parent.is_root_port:
        return parent.slot_number
    if parent.child_slot_base is not None:
        return parent.child_slot_base + fn.address.device
    return None
