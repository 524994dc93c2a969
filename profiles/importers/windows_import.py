"""A Windows-side capture (windows_text.py) → the facts a profile is made of, and the real instance ids kept.

Windows never prints bus numbers in an instance id, only each level's
device/function (``00A8`` = function 00 behind the bridge at 00:15.0). The
PCI tree is therefore rebuilt from the location chains: every chain's
suffixes are bridges, listed or not; on a VMware VM the layout's own bridges
(AGP 00:01.0, PCI bridge 00:11.0, root ports 00:15.0-00:18.7) are added where
the listing does not show them, and firmware's depth-first numbering
(bridges/topology.place) gives the bus numbers lspci would show. A
serial-number instance id has no location: its place comes from
``LocationPaths``/``LocationInformation`` when the listing has them, and
vmxnet3/e1000e serial numbers give back the MAC they are made of.

The result goes through the same importer as an lspci/dmidecode capture
(capture.import_facts). :func:`overlay` then puts the capture's real
instance ids (the parent prefixes guestcompat cannot compute) on the Windows
view of the imported profile.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from guestcompat.bridges.address import PciAddress
from guestcompat.bridges.topology import Function, place
from guestcompat.detection.tools import Dmidecode, DmiStructure, LspciDevice
from guestcompat.detection.windows.ids import location, mac_from_dsn, serial_instance
from guestcompat.detection.windows.view import Identity, Machine, RootBridge, SerialNumber
from guestcompat.errors import ProfileError, TopologyError
from guestcompat.profiles.importers import windows_text
from guestcompat.profiles.importers.facts import CaptureFacts, NicFact, Provenance
from guestcompat.profiles.importers.result import ImportResult
from guestcompat.profiles.importers.windows_text import ListedDevice, WindowsCapture

FORM = "Windows PnP listing"
#: (vendor, device) whose serial-number instance id is made of the MAC, and the formula
_SERIAL_NICS = {(0x15AD, 0x07B0): "vmxnet3", (0x8086, 0x10D3): "e1000e"}
#: VMware's own bridges (vmware/base): devfn on bus 0 -> how many functions
_VMWARE_BRIDGES = {0x08: 1, 0x88: 1, 0xA8: 8, 0xB0: 8, 0xB8: 8, 0xC0: 8}


@dataclass(frozen=True)
class Rebuilt:
    """Where each listed function sits after the rebuild."""

    placed: dict[str, ListedDevice]            # BB:DD.F -> the function
    problems: tuple[str, ...]
    provenance: tuple[Provenance, ...]


def _is_vmware(capture: WindowsCapture) -> bool:
    ids = [d.path.ids for d in capture.devices]
    return any(0x15AD in (i.vendor, i.subsystem_vendor) for i in ids) or \
        "VMware" in (capture.identity.system_manufacturer or "")


def rebuild(capture: WindowsCapture, label: str) -> Rebuilt:
    """The bus:device.function of every function the capture places, from its location chain."""
    problems: list[str] = []
    chains: dict[tuple[int, ...], ListedDevice] = {}
    pending: list[ListedDevice] = []
    ghosts = [d for d in capture.devices if d.present is False]
    if ghosts:
        problems.append(f"{label}: {len(ghosts)} function(s) Windows lists as not present (ghosts of earlier devices, "
                        f"e.g. line {ghosts[0].line} {ghosts[0].path.text}): not part of the machine, not imported")
    for d in capture.devices:
        if d.present is False:
            continue
        chain = d.path.chain if d.path.form == "location" else \
            tuple(reversed(d.location_path)) if d.location_path else None
        if chain is None:
            pending.append(d)
            continue
        other = chains.get(chain)
        if other is not None and other.path.ids != d.path.ids:
            keep, drop = (d, other) if (other.present is False and d.present is not False) else (other, d)
            problems.append(f"{label} lines {other.line} and {d.line}: two functions at location {location(chain)} "
                            f"({other.path.ids.device_id} and {d.path.ids.device_id}); a ghost of an earlier device? "
                            f"kept line {keep.line}")
            chains[chain] = keep
            continue
        chains[chain] = d
    bridges: set[tuple[int, ...]] = set()
    for chain, d in chains.items():
        for i in range(1, len(chain)):
            above = chains.get(chain[i:])
            if above is not None and above.class_code is not None and above.class_code >> 8 != 0x0604:
                raise ProfileError(f"{label} lines {above.line} and {d.line}: {d.path.text} sits behind location "
                                   f"{location(chain[i:])}, but that is {above.path.ids.device_id} (class "
                                   f"{above.class_code:06x}), not a bridge: not one VM's PCI tree")
            bridges.add(chain[i:])
        if d.class_code is not None and d.class_code >> 8 == 0x0604:
            bridges.add(chain)
    if _is_vmware(capture):
        for devfn, count in _VMWARE_BRIDGES.items():
            for fn in range(count):
                chain = (devfn + fn,)
                listed = chains.get(chain)
                if listed is None or listed.class_code is None or listed.class_code >> 8 == 0x0604:
                    bridges.add(chain)
    for chain in list(chains) + list(bridges):
        for i in range(1, len(chain)):
            bridges.add(chain[i:])

    def name(chain: tuple[int, ...]) -> str:
        return "p" + location(chain)

    functions = []
    for chain in sorted(set(chains) | bridges, key=lambda c: (len(c), c)):
        functions.append(Function(name=name(chain), address=PciAddress(0, chain[0] >> 3, chain[0] & 7),
                                  is_bridge=chain in bridges, parent=name(chain[1:]) if len(chain) > 1 else None))
    try:
        topology = place(functions)
    except TopologyError as exc:
        raise ProfileError(f"{label}: the location chains do not form one PCI tree: {exc}") from None
    by_name = {p.name: p for p in topology.functions}
    placed: dict[str, ListedDevice] = {}
    provenance: list[Provenance] = []
    by_text = {d.path.text.upper(): c for c, d in chains.items()}
    for d in list(pending):
        parent_chain = by_text.get((d.parent or "").upper())
        if parent_chain is not None and parent_chain in bridges and name(parent_chain) in by_name \
                and _is_root_port(chains.get(parent_chain)):
            chain = (0x00,) + parent_chain            # behind a root port only device 0 exists
            if chain not in chains:
                pending.remove(d)
                chains[chain] = d
                by_name[name(chain)] = _endpoint_below(by_name[name(parent_chain)], name(chain))
                problems.append(f"{label} line {d.line}: {d.path.text}: placed behind its parent "
                                f"{location(parent_chain)} (a root port: device 0; function 0 assumed)")
    for chain, d in chains.items():
        address = str(by_name[name(chain)].address)
        placed[address] = d
        provenance.append(Provenance(f"pci[{address}] bus number", "inferred from the location chain",
                                     f"{d.path.instance} (line {d.line}): firmware numbers buses depth-first"))
    secondary = {p.secondary_bus: p for p in topology.functions if p.secondary_bus is not None}
    for d in pending:
        if d.location_info is None:
            problems.append(f"{label} line {d.line}: {d.path.text}: a serial-number instance id carries no "
                            f"location and the listing shows none (LocationPaths); not placed")
            continue
        bus, dev, fn = d.location_info
        if bus > 255 or dev > 31 or fn > 7:
            problems.append(f"{label} line {d.line}: {d.path.text}: 'PCI bus {bus}, device {dev}, function {fn}' is "
                            f"no PCI address; not placed")
            continue
        if bus != 0 and bus not in secondary:
            problems.append(f"{label} line {d.line}: {d.path.text}: PCI bus {bus} is behind no bridge of the "
                            f"rebuilt tree; not placed")
            continue
        address = str(PciAddress(bus, dev, fn))
        placed.setdefault(address, d)
    return Rebuilt(placed, tuple(problems), tuple(provenance))


def _is_root_port(d: ListedDevice | None) -> bool:
    if d is None:
        return False
    from guestcompat.profiles.catalog import load_catalog

    return any(k.role == "root-port" and k.ids is not None and (k.ids.vendor, k.ids.device) ==
               (d.path.ids.vendor, d.path.ids.device) for k in load_catalog().kinds.values())


def _endpoint_below(bridge, name: str):
    from guestcompat.bridges.topology import Placed

    return Placed(Function(name=name, address=PciAddress(bridge.secondary_bus, 0, 0), parent=bridge.name),
                  PciAddress(bridge.secondary_bus, 0, 0), bridge.name, None, None, None)


def _dmidecode(identity: windows_text.WindowsIdentity) -> Dmidecode | None:
    if identity.empty:
        return None
    structures = []
    bios = {k: v for k, v in (("Vendor", identity.bios_vendor), ("Version", identity.bios_version),
                              ("Release Date", identity.bios_date)) if v}
    if bios:
        structures.append(DmiStructure(0, 0, 0, "BIOS Information", bios))
    system = {k: v for k, v in (("Manufacturer", identity.system_manufacturer),
                                ("Product Name", identity.system_product), ("Serial Number", identity.system_serial),
                                ("UUID", identity.system_uuid.lower() if identity.system_uuid else None)) if v}
    if system:
        structures.append(DmiStructure(1, 1, 0, "System Information", system))
    return Dmidecode(identity.smbios_version, tuple(structures)) if structures else None


def _class_of(d: ListedDevice) -> tuple[int | None, bool]:
    """The class code the listing shows (CC_ ids), else the catalogue kind's with these ids (inferred)."""
    if d.class_code is not None:
        return d.class_code, False
    from guestcompat.profiles.catalog import load_catalog

    for kind in load_catalog().kinds.values():
        if kind.ids is not None and (kind.ids.vendor, kind.ids.device) == (d.path.ids.vendor, d.path.ids.device):
            return kind.ids.class_code, True
    return None, False


def to_facts(capture: WindowsCapture, label: str) -> tuple[CaptureFacts, Rebuilt]:
    rebuilt = rebuild(capture, label)
    pci = []
    inferred: dict[str, tuple[str, ...]] = {}
    for address, d in sorted(rebuilt.placed.items()):
        ids = d.path.ids
        cc, from_kind = _class_of(d)
        if from_kind:
            inferred[address] = ("class_id", "prog_if")
        pci.append(LspciDevice(slot=address, class_id=None if cc is None else cc >> 8, vendor=ids.vendor,
                               device=ids.device, subsystem_vendor=ids.subsystem_vendor,
                               subsystem_device=ids.subsystem_device,
                               revision=ids.revision or None,      # lspci prints no Rev for 00: as a Linux capture
                               prog_if=None if cc is None else cc & 0xFF, device_name=d.name))
    nics: list[NicFact] = []
    by_path = {d.path.text.upper(): a for a, d in rebuilt.placed.items()}
    for nic in capture.nics:
        nics.append(NicFact(nic.name, nic.mac, by_path.get((nic.instance or "").upper())))
    provenance = list(rebuilt.provenance)
    for address, d in rebuilt.placed.items():
        formula = _SERIAL_NICS.get((d.path.ids.vendor, d.path.ids.device))
        if formula and d.path.form == "serial" and not any(n.pci == address and n.mac for n in nics):
            mac = mac_from_dsn(formula, d.path.serial or 0)
            if mac:
                nics.append(NicFact(f"pnp-{address}", mac, address))
                provenance.append(Provenance(f"pci[{address}] mac", "inferred from the serial number",
                                             f"{serial_instance(d.path.serial or 0)} is made of MAC {mac} ({formula})"))
    forms = ", ".join(capture.forms) or "instance paths"
    facts = CaptureFacts(sources=((label, f"{FORM} ({forms})"),), pci=tuple(pci),
                         pci_form=FORM if pci else None, pci_inferred=inferred, dmi=_dmidecode(capture.identity),
                         dmi_form="Windows systeminfo/wmic" if not capture.identity.empty else None,
                         nics=tuple(nics), provenance=tuple(provenance),
                         problems=capture.problems + rebuilt.problems)
    return facts, rebuilt


def read_capture_file(path: Path) -> str:
    """A capture file's text: UTF-8, or UTF-16 with a BOM (what PowerShell 5's ``>`` writes)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the capture: {exc.strerror}") from None
    if len(raw) > windows_text.MAX_TEXT:
        raise ProfileError(f"{path}: {len(raw)} bytes; a Windows capture is far smaller (limit {windows_text.MAX_TEXT})")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace")
    return raw.decode("utf-8-sig", errors="replace")


def read_facts(text: str, label: str) -> CaptureFacts:
    """forms.py's reader: a Windows capture's facts; nothing usable is an error naming what was seen."""
    capture = windows_text.read(text, label)
    if not capture.devices and capture.identity.empty and not capture.nics:
        seen = "; ".join(capture.problems[:3])
        raise ProfileError(f"{label}: a Windows capture with no usable PCI instance path or identity line"
                           + (f": {seen}" if seen else " (PCI\\VEN_…\\<instance> lines, systeminfo, wmic)"))
    return to_facts(capture, label)[0]


@dataclass(frozen=True)
class WindowsImport:
    result: ImportResult
    capture: WindowsCapture
    rebuilt: Rebuilt

    @property
    def profile(self):
        return self.result.profile


def import_windows_files(paths: tuple[Path, ...], name: str) -> WindowsImport:
    """A profile from Windows capture files of one VM (each may hold several tools' outputs), the capture kept.

    The files are read into one capture first, so a ``Get-NetAdapter`` file's NICs find the functions a
    ``pnputil`` file places."""
    from guestcompat.profiles.importers.capture import import_facts

    captures: list[WindowsCapture] = []
    for path in paths:
        capture = windows_text.read(read_capture_file(path), path.name)
        if not capture.devices and capture.identity.empty and not capture.nics:
            raise ProfileError(f"{path}: not a Windows capture: no PCI instance path (PCI\\VEN_…\\<instance>) and no "
                               f"systeminfo/wmic identity line"
                               + (f"; {'; '.join(capture.problems[:3])}" if capture.problems else ""))
        captures.append(capture)
    label = ", ".join(p.name for p in paths)
    merged = merge_captures(captures)
    facts, rebuilt = to_facts(merged, label)
    if facts.empty:
        raise ProfileError(f"{label}: nothing in the capture can be placed or identified: "
                           + "; ".join(facts.problems[:3]))
    return WindowsImport(import_facts(name, facts, label=label), merged, rebuilt)


def merge_captures(captures: list[WindowsCapture]) -> WindowsCapture:
    """One VM's capture from several files: devices by instance path (the richest record wins)."""
    devices: dict[str, ListedDevice] = {}
    for c in captures:
        for d in c.devices:
            old = devices.get(d.path.text.upper())
            if old is None or windows_text._richness(d) > windows_text._richness(old):
                devices[d.path.text.upper()] = d
    identities = [c.identity for c in captures if not c.identity.empty]
    identity = identities[0] if identities else captures[0].identity
    for other in identities[1:]:
        identity = windows_text.WindowsIdentity(**{f: getattr(identity, f) or getattr(other, f)
                                                  for f in identity.__dataclass_fields__})
    return WindowsCapture(tuple(devices.values()), identity, tuple(n for c in captures for n in c.nics),
                          tuple(dict.fromkeys(f for c in captures for f in c.forms)),
                          next((c.root_path for c in captures if c.root_path), None),
                          tuple(p for c in captures for p in c.problems))


def overlay(machine: Machine, imported: WindowsImport, label: str) -> Machine:
    """The Windows view's machine of an imported capture with the capture's real instance ids and root."""
    placed = imported.rebuilt.placed
    def same_ids(listed: ListedDevice, f) -> bool:
        a, b = listed.path.ids, f.ids
        return (a.vendor, a.device, a.subsystem_vendor, a.subsystem_device, a.revision) == \
            (b.vendor, b.device, b.subsystem_vendor, b.subsystem_device, b.revision)

    def real(f):
        listed = placed[f.address]
        if listed.path.form == "serial":    # what the capture shows wins over the model's serial-number facts
            serial = SerialNumber(listed.path.serial, f"the capture shows {listed.path.instance}")
        else:
            serial = None
        return replace(f, real_instance=listed.path.instance, serial=serial)

    functions = tuple(real(f) if f.address in placed and same_ids(placed[f.address], f) else f
                      for f in machine.functions)
    root = machine.root
    if imported.capture.root_path:
        tail = imported.capture.root_path.split("\\")[-1]
        hid = imported.capture.root_path.split("\\")[1]
        uid = tail if "&" not in tail else None
        root = RootBridge(hid, uid, root.pcie_native, f"the capture lists {imported.capture.root_path}")
    if any(d.path.form == "serial" for d in imported.capture.devices) and not root.pcie_native:
        root = RootBridge(root.hid, root.uid, True, root.why + "; the capture shows serial-number instance ids")
    notes = machine.notes + tuple(imported.capture.problems) + tuple(imported.rebuilt.problems)
    boot = machine.boot_controller
    if boot is None:
        boot, why = _likely_boot_controller(machine)
        if boot is not None:
            notes = tuple(n for n in notes if "no boot chain" not in n) + (why,)
    i = imported.capture.identity
    identity = Identity(i.system_manufacturer, i.system_product, i.system_serial, i.system_uuid, i.bios_vendor,
                        i.bios_version, i.bios_date)       # only what the capture shows: activation compares facts
    return replace(machine, label=f"Windows capture {label}", functions=functions, root=root, notes=notes,
                   boot_controller=boot, identity=identity)


#: storage classes in the order a VMware VM's system disk most likely hangs off them
_BOOT_CLASSES = (0x0107, 0x0100, 0x0104, 0x0108, 0x0106, 0x0101)


def _likely_boot_controller(machine: Machine) -> tuple[str | None, str]:
    """A capture does not say which controller holds the system disk: the SCSI/SAS/NVMe controller before
    SATA before IDE (VMware puts CD-ROMs on IDE/SATA and system disks on SCSI by default), said so."""
    for cls in _BOOT_CLASSES:
        for f in machine.functions:
            if f.ids.class_code is not None and f.ids.class_code >> 8 == cls:
                return f.key, (f"boot controller assumed: {f.address} {f.label} (the capture does not say which "
                               f"controller holds the system disk; SCSI/SAS before NVMe, SATA, IDE)")
    return None, ""



@dataclass(frozen=True)
class _Form:
    """The shape of forms.Form (name, family, commands, sniff, read, needs), declared here so this module
    imports without forms.py, which registers :data:`WINDOWS_FORM` at its end."""

    name: str
    family: str
    commands: tuple[str, ...]
    sniff: object
    read: object
    needs: str
    read_section: object = None
    """(forms.Form's: a reader given the whole section; Windows listings are read as text)"""


WINDOWS_FORM = _Form(FORM, "pci", ("pnputil", "pnputil.exe", "devcon", "devcon.exe", "reg", "reg.exe", "wmic",
                                   "systeminfo", "powershell", "Get-PnpDevice", "Get-CimInstance", "Get-WmiObject",
                                   "Get-NetAdapter"),
                     lambda text, section: windows_text.sniff(text), read_facts,
                     "PCI instance paths (PCI\\VEN_…&DEV_…\\3&61aaa01&0&78) or systeminfo/wmic identity lines")
