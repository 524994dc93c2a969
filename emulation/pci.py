"""PCI placement: the profile's functions → QEMU ``-device`` options and expectations.

Two topologies are solved with the same firmware walk (bridges/topology.py):
the *wanted* one, at the profile's addresses, and the *presented* one, with
what QEMU will really hold: the machine's own functions, substitutes at
their addresses, omissions left out. Expectations compare the two per
guest-visible address; a difference is a known deviation carrying the
catalogue's or the profile's reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from guestcompat.bridges.address import PciAddress
from guestcompat.bridges.topology import Function, Topology, place, plan
from guestcompat.emulation.arches.base import SlotPart
from guestcompat.emulation.artefact import Artefact
from guestcompat.detection.netnames import PciLocation, name_at
from guestcompat.detection.selectors import NetName, Pci
from guestcompat.emulation.fidelity import UNKNOWN, Expectation
from guestcompat.emulation.capabilities import Capabilities
from guestcompat.emulation.qemuopts import opts
from guestcompat.emulation.recipes import (ID_FIELDS, chosen_layout, device_identity, layout_globals, presentable,
                                          presentable_here)
from guestcompat.errors import TopologyError
from guestcompat.profiles.catalog import Catalog, DeviceKind, FixedFunction, Machine, MachineLayout, PciIds
from guestcompat.profiles.model import Bridge, Device, Profile, Substitute



@dataclass(frozen=True)
class Entry:
    """One wanted function, with the profile entry and catalogue kind it comes from."""

    function: Function
    kind: DeviceKind
    source: Bridge | Device
    key: str
    """Profile key path, for errors (``pci.devices[ethernet0]``)."""


@dataclass(frozen=True)
class Presented:
    """One function QEMU will hold."""

    function: Function
    kind: DeviceKind
    qemu_id: str | None
    """None for a function the machine creates by itself."""
    entry: Entry | None
    reason: str | None = None
    """Why this function is not the wanted one (substitute, machine function)."""
    ids: PciIds | None = None
    """What the guest reads in config space (None: the kind's presented ids)."""
    identity: dict[str, str] = field(default_factory=dict)
    """Identity properties the device is given so it shows ``ids`` (recipes.py)."""


@dataclass
class PciPlan:
    wanted: Topology
    presented: Topology
    by_name: dict[str, Presented]
    argv: list[str] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)
    modaliases: list[str] = field(default_factory=list)
    artefacts: list[Artefact] = field(default_factory=list)
    slots: SlotPart = field(default_factory=SlotPart)
    layout: MachineLayout | None = None
    """The machine layout this target gives the profile (machines.toml), if any."""
    machine_options: dict[str, object] = field(default_factory=dict)
    """``-machine`` options the layout needs (the platform emits them)."""

    def presented_address(self, name: str) -> PciAddress:
        return self.presented.by_name(name).address


def wanted_entries(profile: Profile, catalog: Catalog) -> list[Entry]:
    entries: list[Entry] = []
    for bridge in profile.pci.bridges:
        key = f"pci.bridges[{bridge.name}]"
        kind = catalog.kind(bridge.kind, f"{key}.kind")
        if kind.role not in ("bridge", "root-port"):
            raise TopologyError(f"{key}: kind {bridge.kind!r} is a {kind.role}, not a bridge")
        base = PciAddress.parse(bridge.address)
        if base.function + bridge.functions > 8:
            raise TopologyError(f"{key}: {bridge.functions} functions from {base} run past function 7")
        for i in range(bridge.functions):
            name = bridge.name if bridge.functions == 1 else f"{bridge.name}-{i}"
            entries.append(Entry(Function(
                name=name, address=base.with_function(base.function + i), is_bridge=True,
                is_root_port=kind.role == "root-port",
                stated_secondary=None if bridge.secondary_bus is None else bridge.secondary_bus + i,
                slot_number=None if bridge.slot_number is None else bridge.slot_number + i,
                child_slot_base=bridge.child_slot_base), kind, bridge, key))
    for device in profile.pci.devices:
        key = f"pci.devices[{device.name}]"
        kind = catalog.kind(device.kind, f"{key}.kind")
        if kind.ids is None:
            raise TopologyError(f"{key}: kind {device.kind!r} is a VIO device; declare it under vio.devices")
        if kind.role in ("bridge", "root-port"):
            raise TopologyError(f"{key}: kind {device.kind!r} is a bridge; declare it under pci.bridges")
        entries.append(Entry(Function(name=device.name, address=PciAddress.parse(device.address),
                                      physical_slot=device.physical_slot), kind, device, key))
    return entries


def plan_pci(profile: Profile, catalog: Catalog, machine: Machine,
             slots: Callable[[Topology], SlotPart] = lambda topology: SlotPart(),
             caps: Capabilities | None = None, firmware: str = "bios", machine_name: str = "",
             firmware_capabilities: frozenset[str] = frozenset(),
             extra_properties: dict[str, dict[str, object]] | None = None) -> PciPlan:
    """``slots`` (the architecture's) turns the presented topology into what gives it slot numbers;
    ``caps`` (the target binary's) says what it can present beyond its models' own ids;
    ``firmware_capabilities`` what the firmware build can do (a layout may need some);
    ``extra_properties`` (by profile name) are what a device takes from elsewhere in the profile
    (a controller's serial number from its disks: emulation/disks.py)."""
    entries = wanted_entries(profile, catalog)
    wanted = plan([e.function for e in entries])
    layout, _ = chosen_layout(machine, {str(e.function.address): e.kind.name for e in entries}, firmware, caps,
                              machine_name, firmware_capabilities)
    fixed = machine.fixed if layout is None else tuple(FixedFunction(address=f.address, kind=f.kind)
                                                       for f in layout.functions)
    presented_list = _presented(entries, wanted, catalog, fixed, caps, layout is not None)
    presented = place([p.function for p in presented_list])
    pci = PciPlan(wanted, presented, {p.function.name: p for p in presented_list}, layout=layout)
    if layout is not None:
        pci.machine_options = dict(layout.machine_options)
        for name, value in layout_globals(layout, catalog):
            pci.argv += ["-global", opts(None, **{name: value})]
    _emit_devices(pci, presented_list, machine, extra_properties or {})
    pci.slots = slots(presented)
    pci.argv += pci.slots.argv
    pci.artefacts += pci.slots.artefacts
    _expect(pci, entries, presented_list)
    return pci


def _presented(entries: list[Entry], wanted: Topology, catalog: Catalog, fixed: tuple[FixedFunction, ...],
               caps: Capabilities | None, laid_out: bool) -> list[Presented]:
    """What QEMU will hold. With a machine layout (``laid_out``) the machine's functions are the
    profile's own kinds, and a profile entry of that kind at that address is the machine's function."""
    fixed_at = {PciAddress.parse(f.address): f for f in fixed}
    out = [Presented(Function(name=f"machine:{f.kind}", address=PciAddress.parse(f.address)),
                     catalog.kind(f.kind, "machine"), None, None,
                     "created by the QEMU machine type itself") for f in fixed]
    omitted_bridges: set[str] = set()
    for entry in entries:
        placed = wanted.by_name(entry.function.name)
        parent = placed.parent
        if parent in omitted_bridges:
            raise TopologyError(f"{entry.key}: sits behind {parent}, which this target omits")
        at_fixed = fixed_at.get(placed.address) if placed.address.bus == 0 else None
        if laid_out and at_fixed is not None and at_fixed.kind == entry.kind.name:
            continue  # the machine itself presents this function, as the profile asks
        sub: Substitute | None = entry.source.substitute
        if sub is not None and presentable_here(entry.kind, caps) and at_fixed is None:
            sub = None  # this build presents the kind itself: the substitute is for builds that cannot
        if sub is None:
            if not presentable(entry.kind, caps):
                raise TopologyError(f"{entry.key}: QEMU has no model of {entry.kind.summary} ({entry.kind.name}); "
                                    f"give it a substitute (another kind) or an omission (substitute with only a reason)")
            if placed.address in fixed_at and placed.address.bus == 0:
                raise TopologyError(f"{entry.key}: {placed.address} is taken by the machine's "
                                    f"{catalog.kind(fixed_at[placed.address].kind, 'machine').summary}; give it a substitute")
            identity = device_identity(entry.kind, caps)
            out.append(Presented(_relocated(entry.function, parent, None), entry.kind,
                                 _qemu_id(entry.function.name), entry, None, identity.ids, identity.properties))
            continue
        if sub.kind is None:
            if entry.function.is_bridge:
                omitted_bridges.add(entry.function.name)
            continue
        kind = catalog.kind(sub.kind, f"{entry.key}.substitute.kind")
        if not presentable(kind, caps):
            raise TopologyError(f"{entry.key}.substitute: kind {sub.kind!r} has no QEMU model either")
        address = PciAddress.parse(sub.address) if sub.address else placed.address
        if sub.address and address.bus != placed.address.bus:
            raise TopologyError(f"{entry.key}.substitute.address: {address} must be on the same bus as {placed.address}")
        if address in fixed_at and address.bus == 0:
            raise TopologyError(f"{entry.key}.substitute.address: {address} is taken by the machine")
        identity = device_identity(kind, caps)
        out.append(Presented(_relocated(entry.function, parent, address), kind, _qemu_id(entry.function.name),
                             entry, sub.reason, identity.ids, identity.properties))
    return _unscanned_to_substitutes(out)


def _unscanned_to_substitutes(out: list[Presented]) -> list[Presented]:
    """A guest scans functions 1-7 of a slot only when function 0 is there: a kind this build could
    present itself (its substitute overridden) at such an address falls back to its omission."""
    with_function_0 = {(p.function.parent, p.function.address.device) for p in out if p.function.address.function == 0}
    kept = []
    for p in out:
        fn, sub = p.function, p.entry.source.substitute if p.entry else None
        unscanned = fn.address.function > 0 and (fn.parent, fn.address.device) not in with_function_0
        if unscanned and sub is not None and sub.kind is None and p.reason is None:
            continue
        kept.append(p)
    return kept


def _relocated(fn: Function, parent: str | None, address: PciAddress | None) -> Function:
    from dataclasses import replace
    return replace(fn, parent=parent, address=address or fn.address)


def _qemu_id(name: str) -> str:
    return name


def _emit_devices(pci: PciPlan, presented: list[Presented], machine: Machine,
                  extra: dict[str, dict[str, object]]) -> None:
    occupied: dict[tuple[str | None, int], int] = {}
    for p in presented:
        if p.qemu_id is not None:
            key = (p.function.parent, p.function.address.device)
            occupied[key] = occupied.get(key, 0) + 1
    chassis = 0
    for p in presented:
        if p.qemu_id is None:
            continue
        fn, kind = p.function, p.kind
        assert kind.qemu is not None
        bus = pci.by_name[fn.parent].qemu_id if fn.parent else machine.root_bus
        multifunction = fn.address.function == 0 and occupied[(fn.parent, fn.address.device)] > 1
        props: dict[str, object] = {"id": p.qemu_id, "bus": bus, "addr": fn.address.qemu_addr(),
                                    **kind.qemu.properties, **p.identity}
        if p.entry is not None and p.kind is p.entry.kind:
            props.update(extra.get(p.entry.source.name, {}))
        if multifunction:
            props["multifunction"] = True
        if kind.role == "root-port":
            chassis += 1
            props["chassis"] = chassis
            props["slot"] = fn.slot_number or 0
            if not any(c.function.parent == fn.name for c in presented):
                props["io-reserve"] = 0  # SeaBIOS runs out of I/O space for 32 ports otherwise
        elif kind.role == "bridge":
            chassis += 1
            props["chassis_nr"] = chassis
        if kind.role == "nic" and p.entry is not None:
            device = p.entry.source
            netdev = f"net-{p.qemu_id}"
            pci.argv += ["-netdev", opts("user", id=netdev, restrict=True)]
            props["netdev"] = netdev
            props["mac"] = getattr(device, "mac", None)
        if kind.qemu.audio:
            audiodev = f"snd-{p.qemu_id}"
            pci.argv += ["-audiodev", opts("none", id=audiodev)]
            props["audiodev"] = audiodev
        pci.argv += ["-device", opts(kind.qemu.driver, **props)]
        if kind.guest_driver or kind.role in ("nic", "storage"):
            pci.modaliases.append((p.ids or kind.presented_ids()).modalias())


def _wanted_ids(entry: Entry | None) -> PciIds | None:
    return entry.kind.ids if entry else None


def _shown_ids(shown: Presented | None) -> PciIds | None:
    if shown is None:
        return None
    return shown.ids or shown.kind.presented_ids()


def _expect(pci: PciPlan, entries: list[Entry], presented: list[Presented]) -> None:
    """One expectation per guest-visible address and property."""
    wanted_at = {pci.wanted.by_name(e.function.name).address: e for e in entries}
    presented_at = {pci.presented.by_name(p.function.name).address: p for p in presented}
    for address in sorted(set(wanted_at) | set(presented_at)):
        entry, shown = wanted_at.get(address), presented_at.get(address)
        subject = entry.function.name if entry else (shown.function.name if shown else str(address))
        reason = _deviation_reason(entry, shown)
        want_ids, shown_ids = _wanted_ids(entry), _shown_ids(shown)
        at = str(address)
        pci.expectations.append(Expectation("placement", str(Pci(at, "present")), True if entry else None,
                                            True if shown else None,
                                            reason if (entry is not None) != (shown is not None) else None, subject))
        if shown is None:
            continue  # absent here: `.present` says it all, and the guest must show nothing at this address
        for id_field in ID_FIELDS:
            want = getattr(want_ids, id_field) if want_ids else None
            got = getattr(shown_ids, id_field) if shown_ids else None
            if want is None and got is None:
                continue
            if want_ids and shown_ids and getattr(want_ids, id_field) is None:
                continue  # the profile does not state it
            pci.expectations.append(Expectation("ids", str(Pci(at, id_field)), _hex(id_field, want),
                                                _hex(id_field, got),
                                                None if want == got else reason, subject))
        _expect_bridge(pci, at, subject, entry, shown, reason)
        _expect_driver(pci, at, subject, entry, shown, reason)
        _expect_slot(pci, at, subject, entry, shown, address)


def _deviation_reason(entry: Entry | None, shown: Presented | None) -> str | None:
    presented_itself = shown is not None and shown.entry is entry and shown.reason is None
    if entry is not None and entry.source.substitute is not None and not presented_itself:
        return entry.source.substitute.reason
    if shown is not None and shown.reason:
        return shown.reason
    if shown is not None and shown.kind.qemu and shown.kind.qemu.reason:
        return shown.kind.qemu.reason
    if entry is None and shown is not None:
        return "present only on this target"
    return None


def _expect_bridge(pci: PciPlan, at: str, subject: str, entry: Entry | None, shown: Presented | None,
                   reason: str | None) -> None:
    want = pci.wanted.by_name(entry.function.name).secondary_bus if entry else None
    got = pci.presented.by_name(shown.function.name).secondary_bus if shown else None
    if want is None and got is None:
        return
    pci.expectations.append(Expectation("placement", str(Pci(at, "secondary_bus")), want, got,
                                        None if want == got else (reason or "bus numbering differs"), subject))


def _expect_driver(pci: PciPlan, at: str, subject: str, entry: Entry | None, shown: Presented | None,
                   reason: str | None) -> None:
    want = entry.kind.guest_driver if entry else None
    got = shown.kind.guest_driver if shown else None
    if want is None and got is None:
        return
    pci.expectations.append(Expectation("drivers", str(Pci(at, "driver")), want, got,
                                        None if want == got else (reason or "another driver binds"), subject))


def _expect_slot(pci: PciPlan, at: str, subject: str, entry: Entry | None, shown: Presented | None,
                 address: PciAddress) -> None:
    """The slot number the guest reads for this function's device (``/sys/bus/pci/slots``)."""
    want = pci.wanted.by_name(entry.function.name).physical_slot if entry else None
    assert shown is not None
    placed = pci.presented.by_name(shown.function.name).address
    if pci.slots.shown is None:
        if entry is not None:
            pci.expectations.append(Expectation("names", str(Pci(at, "physical_slot")), want, UNKNOWN,
                                                pci.slots.reason or "slot numbers are not predicted", subject))
        return
    got = pci.slots.shown.get((placed.bus, placed.device))
    if entry is None and got is None:
        return
    reason = None if want == got else (_deviation_reason(entry, shown) or pci.slots.reason or
                                       "this target numbers the slot differently")
    pci.expectations.append(Expectation("names", str(Pci(at, "physical_slot")), want, got, reason, subject))
    if entry is not None and entry.kind.role == "nic":
        wanted_at = pci.wanted.by_name(entry.function.name).address
        name_want = nic_name(pci.wanted, wanted_at, want)
        name_got = nic_name(pci.presented, placed, got)
        pci.expectations.append(Expectation("names", str(NetName(str(address))), name_want, name_got,
                                            None if name_want == name_got else reason, subject))


def nic_name(topology: Topology, address: PciAddress, physical_slot: int | None) -> str:
    """The name systemd gives the NIC at ``address`` of ``topology`` (detection/netnames.py): function 0
    of a device with other functions has the multifunction bit (the compiler sets ``multifunction=on``
    exactly then), so its name ends in ``f0``."""
    def at(a: PciAddress) -> PciLocation:
        return PciLocation(0, a.bus, a.device, a.function)
    return name_at(at(address), physical_slot, (at(p.address) for p in topology.functions))


HEX_DIGITS = {"revision": 2, "class_code": 6}


def _hex(id_field: str, value: int | None) -> str | None:
    """Ids as lspci shows them: 4 hex digits, revision 2, class code 6."""
    return None if value is None else f"0x{value:0{HEX_DIGITS.get(id_field, 4)}x}"
