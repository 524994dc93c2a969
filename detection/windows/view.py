"""One machine as Windows names it: :class:`WindowsView`, built from a neutral :class:`Machine`.

A :class:`Machine` is what every source can say (sources.py builds one from a
profile, a compiled QEMU target or a booted fingerprint; the Windows capture
importer from pnputil/WMI listings): PCI functions with their ids, where
each sits (device/function and the bridge above it), PCIe serial numbers,
the root bridge's ACPI identity, the boot controller and the identity
strings activation looks at. :func:`build_view` turns it into what Windows
would file each function under, with the driver it would bind.

Parent prefixes are opaque: a device's instance is keyed by its parent's
*instance path* (:attr:`WinDevice.key`), so two views agree exactly when
Windows would compute the same prefix. A capture's real prefix is kept
for display (:attr:`WinDevice.prefix`), never compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from guestcompat.detection.windows import drivers, ids
from guestcompat.detection.windows.ids import PciIdentity


@dataclass(frozen=True)
class SerialNumber:
    """A PCIe Device Serial Number capability: its value (None = the device has one, value unknown) and why."""

    value: int | None
    why: str


@dataclass(frozen=True)
class RootBridge:
    """The ACPI device PCI bus 0 hangs off: its identity is the parent of every bus-0 instance."""

    hid: str                       # PNP0A03 (PCI) or PNP0A08 (PCI Express)
    uid: str | None                # _UID; None = no _UID (the instance is the ACPI_HAL child prefix)
    pcie_native: bool              # MCFG + _OSC: Windows reads serial numbers (KB 2621024)
    why: str

    @property
    def path(self) -> str:
        return f"ACPI\\{self.hid}\\{self.uid if self.uid is not None else '2&DABA3FF&1'}"

    @property
    def key(self) -> tuple:
        return ("root", self.hid, self.uid)


@dataclass(frozen=True)
class MachineFunction:
    """One PCI function as a source knows it."""

    key: str                       # stable name in its source (profile entry, BB:DD.F)
    device: int
    function: int
    parent: str | None             # key of the bridge above it; None = bus 0
    ids: PciIdentity
    label: str = ""
    address: str | None = None     # BB:DD.F as firmware numbered it, when known
    is_bridge: bool = False
    express_type: int | None = None
    serial: SerialNumber | None = None
    mac: str | None = None
    real_instance: str | None = None   # the instance part a Windows capture showed (kept, not compared)


@dataclass(frozen=True)
class Identity:
    """What Windows activation hashes or sends (reference §5), as far as the source shows it."""

    system_manufacturer: str | None = None
    system_product: str | None = None
    system_serial: str | None = None
    system_uuid: str | None = None
    bios_vendor: str | None = None
    bios_version: str | None = None
    bios_date: str | None = None
    cpu_model: str | None = None
    memory_mb: int | None = None
    disks: tuple[str, ...] = ()        # "vendor model" of each disk, in order


@dataclass(frozen=True)
class Machine:
    label: str                     # "profile vmware/esxi-6.5", "fingerprint run.json", …
    root: RootBridge
    functions: tuple[MachineFunction, ...]
    boot_controller: str | None = None     # key of the function the boot disk hangs off
    identity: Identity = Identity()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class WinDevice:
    """One PCI function as Windows files it."""

    source: MachineFunction
    hardware_ids: tuple[str, ...]
    compatible_ids: tuple[str, ...]
    form: str                      # "location" | "serial"
    location: str | None           # 0888
    serial: int | None
    level: int                     # the prefix's depth field (3 = bus 0)
    parent_path: str               # the parent's instance path (tokens for prefixes that cannot be computed)
    prefix: str                    # display: the real prefix if a capture had it, else 3&‹parent›&0
    key: tuple                     # what Windows' identity of this instance compares equal on
    driver: drivers.DriverMatch
    chain: tuple[int, ...] = ()    # devfn of the function, then of each bridge up to bus 0 (its position)
    notes: tuple[str, ...] = ()

    @property
    def position(self) -> str:
        """The position as a location string whatever the instance form (pairs a function across machines)."""
        return ids.location(self.chain)

    @property
    def device_id(self) -> str:
        return self.source.ids.device_id

    @property
    def instance(self) -> str:
        if self.form == "serial":
            return ids.serial_instance(self.serial) if self.serial is not None else "‹serial number›"
        return f"{self.prefix}&{self.location}"

    @property
    def instance_path(self) -> str:
        return f"{self.device_id}\\{self.instance}"

    @property
    def role(self) -> str:
        cc = self.source.ids.class_code
        if self.source.is_bridge or (cc is not None and cc >> 8 == 0x0604):
            return "bridge"
        if cc is None:
            return "other"
        return {0x01: "storage", 0x02: "nic", 0x03: "display"}.get(cc >> 16, "chipset" if cc >> 16 in (0x06, 0x08, 0x0C)
                                                                  else "other")

    @property
    def where(self) -> str:
        """The function's position as a person reads it: its address, or the location chain."""
        return self.source.address or f"devfn {self.location or '?'}"


@dataclass(frozen=True)
class WindowsView:
    machine: Machine
    windows: drivers.WindowsVersion
    devices: tuple[WinDevice, ...]
    boot_chain: tuple[str, ...] = ()      # keys: boot controller first, then each bridge up to bus 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def device(self, key: str) -> WinDevice:
        for d in self.devices:
            if d.source.key == key:
                return d
        raise KeyError(key)


def build_view(machine: Machine, version: drivers.WindowsVersion) -> WindowsView:
    """How ``version`` of Windows names and drives every PCI function of ``machine``."""
    by_key = {f.key: f for f in machine.functions}
    notes: list[str] = list(machine.notes)
    built: dict[str, WinDevice] = {}

    def chain_of(fn: MachineFunction) -> tuple[int, ...]:
        out, cur, seen = [], fn, set()
        while cur is not None:
            if cur.key in seen:
                raise ValueError(f"{fn.key}: its bridges form a loop")
            seen.add(cur.key)
            out.append(ids.devfn(cur.device, cur.function))
            cur = by_key.get(cur.parent) if cur.parent is not None else None
        return tuple(out)

    def build(fn: MachineFunction) -> WinDevice:
        if fn.key in built:
            return built[fn.key]
        parent = build(by_key[fn.parent]) if fn.parent is not None and fn.parent in by_key else None
        if fn.parent is not None and parent is None:
            notes.append(f"{fn.key}: its bridge {fn.parent} is not in the source; placed as if on bus 0")
        level = 3 if parent is None else parent.level + 1
        parent_path = machine.root.path if parent is None else parent.instance_path
        parent_key = machine.root.key if parent is None else parent.key
        hw = ids.hardware_ids(fn.ids, version.windows10)
        compat = ids.compatible_ids(fn.ids, fn.express_type if machine.root.pcie_native else None)
        dev_notes: list[str] = []
        if fn.serial is not None and machine.root.pcie_native:
            form, loc, serial = "serial", None, fn.serial.value
            key = (fn.ids.device_id, "serial", serial if serial is not None else ("unknown", fn.key))
            dev_notes.append(f"serial-number instance id: {fn.serial.why}")
        else:
            form, loc, serial = "location", ids.location(chain_of(fn)), None
            key = (fn.ids.device_id, "location", parent_key, loc)
            if fn.serial is not None:
                dev_notes.append("has a PCIe serial number, but this platform gives Windows no PCI Express "
                                 "config access (no MCFG/_OSC): location form (KB 2621024)")
        prefix = f"{level:X}&‹{_short_parent(parent, machine.root)}›&0"
        if fn.real_instance and form == "location" and "&" in fn.real_instance:
            real = fn.real_instance.rsplit("&", 1)
            prefix = real[0]
            if real[1].upper() != loc:
                dev_notes.append(f"the capture shows location {real[1]}, the tree gives {loc}")
        elif fn.real_instance and form == "serial" and serial is not None \
                and fn.real_instance.upper() != ids.serial_instance(serial):
            dev_notes.append(f"the capture shows {fn.real_instance}, the MAC gives {ids.serial_instance(serial)}")
        device = WinDevice(fn, hw, compat, form, loc, serial, level, parent_path, prefix, key,
                           drivers.match(hw + compat, version), chain_of(fn), tuple(dev_notes))
        built[fn.key] = device
        return device

    devices = tuple(build(fn) for fn in machine.functions)
    chain: list[str] = []
    cur = by_key.get(machine.boot_controller) if machine.boot_controller else None
    while cur is not None:
        chain.append(cur.key)
        cur = by_key.get(cur.parent) if cur.parent else None
    return WindowsView(machine, version, devices, tuple(chain), tuple(notes))


def _short_parent(parent: WinDevice | None, root: RootBridge) -> str:
    if parent is None:
        return f"{root.hid}\\{root.uid if root.uid is not None else '‹no _UID›'}"
    return parent.source.address or parent.source.key
