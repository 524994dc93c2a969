"""``lshw -businfo`` (any ``-c`` class) and lshw's class sections, read into PCI records, NICs and DMI fields.

``lshw -businfo`` is a table: ``Bus info`` (``pci@0000:0b:00.0``), ``Device``
(the kernel name: ``ens192``, ``scsi2``), ``Class`` and ``Description``,
which for a PCI function is the pci.ids *device* name alone ("VMXNET3
Ethernet Controller"): the vendor is not shown, so the ids are inferred from
the device name among every vendor's (VMware's first on a VMware machine; an
ambiguous name is reported, not guessed).  The class sections (``lshw``,
``lshw -c network``) give ``product``/``vendor`` names, ``version`` (the
revision), ``serial`` (a NIC's MAC), ``logical name`` and ``driver=``; the
root node and ``*-firmware``/``*-core`` give the DMI system, BIOS and board
strings and ``capabilities: smbios-2.7``.
"""

from __future__ import annotations

import re

from guestcompat.detection.tools import DmiStructure, Dmidecode, LspciDevice
from guestcompat.profiles.importers.facts import FROM_NAME, CaptureFacts, NicFact, Provenance
from guestcompat.profiles.importers.lspci_text import PciIds, load_pci_ids

_BUSINFO_HEAD = re.compile(r"^Bus info\s+Device\s+Class\s+Description\s*$")
_PCI_BUS = re.compile(r"^pci@(?:(?P<dom>[0-9a-f]{4}):)?(?P<addr>[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7])$", re.IGNORECASE)
_NODE = re.compile(r"^(?P<indent>\s*)\*-(?P<name>[\w:.-]+)(?: (?P<state>DISABLED|UNCLAIMED))?\s*$")
_ATTR = re.compile(r"^\s+(?P<key>[a-z][a-z ]*?): (?P<value>.*)$")
#: lshw class -> PCI base class (the subclass is not shown)
_CLASS_BASE = {"network": 0x02, "display": 0x03, "multimedia": 0x04, "memory": 0x05, "bridge": 0x06,
               "communication": 0x07, "input": 0x09, "bus": 0x0C}
_MAC = re.compile(r"^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$", re.IGNORECASE)


def looks_like_businfo(text: str) -> int:
    if any(_BUSINFO_HEAD.match(line.strip()) for line in text.splitlines()[:5]):
        return 95
    rows = sum(1 for line in text.splitlines() if re.match(r"^pci@[0-9a-f]{4}:", line.strip(), re.IGNORECASE))
    return 60 if rows >= 2 else 0


def looks_like_sections(text: str) -> int:
    nodes = sum(1 for line in text.splitlines() if _NODE.match(line))
    attrs = sum(1 for line in text.splitlines() if re.match(r"^\s+(description|product|vendor|bus info): ", line))
    return 85 if nodes and attrs >= 2 else 0


_INDEXES: dict[int, tuple[PciIds, dict[str, tuple[tuple[int, int], ...]]]] = {}


def _device_index(db: PciIds) -> dict[str, tuple[tuple[int, int], ...]]:
    """Device name -> every (vendor, device) of that name (lshw prints the device name alone)."""
    cached = _INDEXES.get(id(db))
    if cached and cached[0] is db:
        return cached[1]
    index: dict[str, list[tuple[int, int]]] = {}
    for vendor, devices in db.devices.items():
        for name, device in devices.items():
            index.setdefault(name, []).append((vendor, device))
    result = {k: tuple(v) for k, v in index.items()}
    _INDEXES[id(db)] = (db, result)
    return result


def _by_device_name(name: str, prefer: tuple[int, ...], db: PciIds) -> tuple[tuple[int, int] | None, str | None]:
    candidates = _device_index(db).get(name, ())
    if len(candidates) == 1:
        return candidates[0], None
    for vendor in prefer:
        hits = [c for c in candidates if c[0] == vendor]
        if len(hits) == 1:
            return hits[0], None
    if not candidates:
        return None, f"{name!r} is no device name in pci.ids"
    return None, f"{name!r} names {len(candidates)} devices in pci.ids (vendor not shown; use lspci -nn)"


def _slot(bus_info: str) -> str | None:
    match = _PCI_BUS.match(bus_info.strip())
    if not match:
        return None
    dom = (match["dom"] or "0000").lower()
    return match["addr"].lower() if dom == "0000" else f"{dom}:{match['addr'].lower()}"


def read_businfo(text: str, source: str, pci_ids: PciIds | None = None) -> CaptureFacts:
    lines = text.splitlines()
    head = next((i for i, ln in enumerate(lines) if _BUSINFO_HEAD.match(ln.strip())), None)
    columns = None
    if head is not None:
        header = lines[head]
        columns = [header.index(c) for c in ("Bus info", "Device", "Class", "Description")]
        body = [(i + 1, ln) for i, ln in enumerate(lines) if i > head and not set(ln.strip()) <= {"="}]
    else:
        body = [(i + 1, ln) for i, ln in enumerate(lines)]
    db = pci_ids or load_pci_ids()
    rows: list[tuple[int, str, str, str, str]] = []
    problems: list[str] = []
    for number, line in body:
        if not line.strip():
            continue
        if columns:
            cut = [line[a:b].strip() if a < len(line) else "" for a, b in zip(columns, columns[1:] + [None])]
            bus, dev, klass, desc = cut[0], cut[1], cut[2], line[columns[3]:].strip() if len(line) > columns[3] else ""
        else:
            parts = line.split()
            if not parts[0].startswith("pci@"):
                continue
            bus, rest = parts[0], parts[1:]
            classes = [i for i, p in enumerate(rest) if p in _CLASS_BASE or p in ("storage", "generic", "processor")]
            if not classes:
                problems.append(f"{source}: line {number}: no lshw class in {line.strip()[:70]!r}")
                continue
            k = classes[0]
            dev, klass, desc = " ".join(rest[:k]), rest[k], " ".join(rest[k + 1:])
        rows.append((number, bus, dev, klass, desc))
    system = next((desc for _, bus, _, klass, desc in rows if klass == "system" and not bus), None)
    board = next((desc for _, bus, _, klass, desc in rows if klass == "bus" and not bus), None)
    prefer = (0x15AD,) if system and "VMware" in system else ()
    devices, nics, provenance = [], [], []
    inferred: dict[str, tuple[str, ...]] = {}
    for number, bus, dev, klass, desc in rows:
        slot = _slot(bus) if bus else None
        if bus.startswith("pci@") and slot is None:
            problems.append(f"{source}: line {number}: {bus!r} is not a PCI address (cut?)")
            continue
        if slot is None:
            continue
        ids, why = _by_device_name(desc, prefer, db) if desc else (None, "no description")
        if ids is None:
            problems.append(f"{source}: line {number}: {slot}: {why}")
        record = LspciDevice(slot=slot, device_name=desc or None, vendor=ids[0] if ids else None,
                             device=ids[1] if ids else None, other={"lshw_class": klass})
        devices.append(record)
        if ids:
            inferred[record.address] = ("vendor", "device")
            provenance.append(Provenance(f"pci[{record.address}] {ids[0]:04x}:{ids[1]:04x}", FROM_NAME,
                                         f"lshw names the device {desc!r} only"))
        if klass == "network" and dev:
            nics.append(NicFact(dev, pci=record.address))
    structures = []
    if system:
        structures.append(DmiStructure(0x1001, 1, 0, "System Information", {"Product Name": system}))
    if board:
        structures.append(DmiStructure(0x1002, 2, 0, "Base Board Information", {"Product Name": board}))
    return CaptureFacts(sources=((source, "lshw -businfo"),), pci=tuple(devices), pci_form="lshw -businfo",
                        pci_inferred=inferred, dmi=Dmidecode(None, tuple(structures)) if structures else None,
                        dmi_form="lshw -businfo" if structures else None, nics=tuple(nics),
                        provenance=tuple(provenance), problems=tuple(problems))


def _nodes(text: str) -> list[tuple[str, int, dict[str, str]]]:
    """(node name, line, attributes) in order; the root node (a host name line) is named ``root``."""
    out: list[tuple[str, int, dict[str, str]]] = []
    current: dict[str, str] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        node = _NODE.match(line)
        if node:
            current = {}
            out.append((node["name"], number, current))
            continue
        attr = _ATTR.match(line)
        if attr and current is not None:
            current.setdefault(attr["key"].strip(), attr["value"].strip())
        elif attr and current is None:
            current = {attr["key"].strip(): attr["value"].strip()}
            out.append(("root", number, current))
        elif line.strip() and not line[0].isspace() and current is None:
            current = {}
            out.append(("root", number, current))
    return out


def read_sections(text: str, source: str, pci_ids: PciIds | None = None) -> CaptureFacts:
    db = pci_ids or load_pci_ids()
    devices, nics, provenance, problems = [], [], [], []
    inferred: dict[str, tuple[str, ...]] = {}
    structures: list[DmiStructure] = []
    smbios_version = None
    for name, number, attrs in _nodes(text):
        if name == "root" and attrs.get("description") in ("Computer", "Desktop Computer", "Server", None):
            fields = {k: attrs[a] for a, k in (("vendor", "Manufacturer"), ("product", "Product Name"),
                                                ("version", "Version"), ("serial", "Serial Number")) if a in attrs}
            uuid = re.search(r"\buuid=([0-9A-Fa-f-]{36})", attrs.get("configuration", ""))
            if uuid:
                fields["UUID"] = uuid[1]
            version = re.search(r"\bsmbios-(\d+\.\d+)", attrs.get("capabilities", ""))
            smbios_version = version[1] if version else None
            if fields:
                structures.append(DmiStructure(0x1001, 1, 0, "System Information", fields))
            continue
        if name == "firmware":
            fields = {k: attrs[a] for a, k in (("vendor", "Vendor"), ("version", "Version"), ("date", "Release Date"))
                      if a in attrs}
            structures.append(DmiStructure(0x1000, 0, 0, "BIOS Information", fields))
            continue
        if name == "core" and attrs.get("description") == "Motherboard":
            fields = {k: attrs[a] for a, k in (("vendor", "Manufacturer"), ("product", "Product Name"),
                                                ("version", "Version"), ("serial", "Serial Number")) if a in attrs}
            structures.append(DmiStructure(0x1002, 2, 0, "Base Board Information", fields))
            continue
        slot = _slot(attrs.get("bus info", ""))
        if slot is None:
            if attrs.get("bus info", "").startswith("pci@"):
                problems.append(f"{source}: line {number}: *-{name}: bus info {attrs['bus info']!r} is not a PCI "
                                f"address (cut?)")
            continue
        product, vendor_name = attrs.get("product"), attrs.get("vendor")
        ids = None
        if product and vendor_name:
            found = db.resolve(f"{vendor_name} {product}")
            ids = found if found[0] is not None else None
        if ids is None and product:
            ids, why = _by_device_name(product, (0x15AD,) if vendor_name == "VMware" else (), db)
            if ids is None:
                problems.append(f"{source}: line {number}: *-{name} at {slot}: {why}")
        revision = None
        if re.fullmatch(r"[0-9a-f]{2}", attrs.get("version", ""), re.IGNORECASE):
            revision = int(attrs["version"], 16)
        driver = re.search(r"\bdriver=(\S+)", attrs.get("configuration", ""))
        record = LspciDevice(slot=slot, vendor_name=vendor_name, device_name=product,
                             vendor=ids[0] if ids else None, device=ids[1] if ids else None, revision=revision,
                             other={"Driver": driver[1]} if driver else {})
        devices.append(record)
        if ids:
            inferred[record.address] = ("vendor", "device")
            provenance.append(Provenance(f"pci[{record.address}] {ids[0]:04x}:{ids[1]:04x}", FROM_NAME,
                                         f"lshw names it {vendor_name or '?'} {product!r}"))
        if name.startswith("network") and attrs.get("logical name"):
            mac = attrs.get("serial")
            nics.append(NicFact(attrs["logical name"].split(",")[0].strip(), mac if mac and _MAC.match(mac) else None,
                                record.address, driver=driver[1] if driver else None))
    dmi = Dmidecode(smbios_version, tuple(structures)) if structures else None
    return CaptureFacts(sources=((source, "lshw"),), pci=tuple(devices), pci_form="lshw" if devices else None,
                        pci_inferred=inferred, dmi=dmi, dmi_form="lshw" if dmi else None, nics=tuple(nics),
                        provenance=tuple(provenance), problems=tuple(problems))
