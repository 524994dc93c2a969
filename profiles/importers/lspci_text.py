"""Every common form of ``lspci`` output, read into the same ``LspciDevice`` records.

Users paste what they have, not what we asked for.  The forms:

* ``-vmm`` / ``-nnmmv``: ``Key:<TAB>value`` records (detection/tools.py parses them);
* ``-nn`` (with or without ``-v``/``-vv``/``-vvv``): one header line per function,
  ``00:0f.0 VGA compatible controller [0300]: VMware SVGA II Adapter [15ad:0405] (rev 01)``,
  then indented ``Subsystem:``, ``Physical Slot:``, ``Kernel driver in use:`` lines;
* ``-v``/``-vvv`` *without* ``-nn``: the same without the bracketed ids;
* ``-tv`` / ``-tvnn``: the tree, ``-[0000:00]-+-11.0-[02]--+-01.0  Intel Corporation 82545EM…``,
  where the bus of a function comes from the bridge it hangs under.

Forms without numeric ids name vendor and device the way lspci does, from
``pci.ids``: the name is resolved back to ids with the same database (the
host's, or the one given).  A name that does not resolve is reported, never
guessed.  Lines that fit no form are reported with their line number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from guestcompat.detection.tools import LspciDevice, parse_lspci_vmm
from guestcompat.errors import ProfileError

PCI_IDS_PATHS = (Path("/usr/share/misc/pci.ids"), Path("/usr/share/hwdata/pci.ids"), Path("/usr/share/pci.ids"))

_ADDR = r"(?:[0-9a-f]{4}:)?[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]"
_HEADER = re.compile(rf"^(?P<slot>{_ADDR}) (?P<cls>[^:\[]+?)(?: \[(?P<cid>[0-9a-f]{{4}})\])?: (?P<rest>.*)$",
                     re.IGNORECASE)
_IDS = re.compile(r"^(?P<name>.*?) \[(?P<v>[0-9a-f]{4}):(?P<d>[0-9a-f]{4})\]$", re.IGNORECASE)
_REV = re.compile(r" \(rev (?P<rev>[0-9a-f]{2})\)", re.IGNORECASE)
_PROGIF = re.compile(r" \(prog-if (?P<pi>[0-9a-f]{2})(?: \[[^\]]*\])?\)", re.IGNORECASE)
_MM = re.compile(rf'^(?P<slot>{_ADDR}) "[^"]*"(?: "[^"]*"){{2}}', re.IGNORECASE)
_MM_TOKEN = re.compile(r'"(?P<q>[^"]*)"|(?P<opt>-[rp][0-9a-f]+)', re.IGNORECASE)
_MM_ID = re.compile(r"^(?P<name>.*?) ?\[(?P<id>[0-9a-f]{4})\]$", re.IGNORECASE)
_NUMERIC = re.compile(rf"^(?P<slot>{_ADDR}) (?P<cid>[0-9a-f]{{4}}): (?P<v>[0-9a-f]{{4}}):(?P<d>[0-9a-f]{{4}})"
                      r"(?P<rest>.*)$", re.IGNORECASE)
_TREE_ROOT = re.compile(r"\[(?P<dom>[0-9a-f]{4}):(?P<bus>[0-9a-f]{2})\]-", re.IGNORECASE)
_TREE_ENTRY = re.compile(r"[+\\-]-(?P<dev>[0-1][0-9a-f]\.[0-7])(?:-\[(?P<bus>[0-9a-f]{2})(?:-[0-9a-f]{2})?\])?",
                         re.IGNORECASE)


@dataclass(frozen=True)
class PciIds:
    """Name → id maps of one pci.ids file (what lspci prints when it has no -nn)."""

    vendors: dict[str, tuple[int, ...]]                 # vendor name -> ids
    devices: dict[int, dict[str, int]]                  # vendor id -> device name -> id
    subsystems: dict[tuple[int, int], dict[str, tuple[int, int]]]   # (vendor, device) -> name -> (svendor, sdevice)
    classes: dict[str, int]                             # "Ethernet controller" -> 0x0200

    def resolve(self, text: str) -> tuple[int | None, int | None]:
        """``"VMware VMXNET3 Ethernet Controller"`` → (0x15ad, 0x07b0); (None, None) if it does not resolve."""
        for name in sorted(self.vendors, key=len, reverse=True):
            if not text.startswith(name + " "):
                continue
            rest = text[len(name) + 1:]
            for vendor in self.vendors[name]:
                unknown = re.fullmatch(r"Device ([0-9a-f]{4})", rest)
                if unknown:
                    return vendor, int(unknown[1], 16)
                if rest in self.devices.get(vendor, {}):
                    return vendor, self.devices[vendor][rest]
        unknown = re.fullmatch(r"Device ([0-9a-f]{4}):([0-9a-f]{4})", text)
        return (int(unknown[1], 16), int(unknown[2], 16)) if unknown else (None, None)

    def resolve_subsystem(self, text: str, vendor: int | None, device: int | None) -> tuple[int | None, int | None]:
        for name in sorted(self.vendors, key=len, reverse=True):
            if not text.startswith(name + " "):
                continue
            rest = text[len(name) + 1:]
            for sv in self.vendors[name]:
                hit = self.subsystems.get((vendor or -1, device or -1), {}).get(rest)
                if hit and hit[0] == sv:
                    return hit
                if rest in self.devices.get(sv, {}) and sv == vendor:
                    # lspci prints the device's own name for a subsystem pci.ids does not list; the real
                    # Fusion capture shows it also for subsystem 15ad:1976 under 15ad:0774, so the subsystem
                    # device id is not the device's: the inverse is a guess, and the caller reports it
                    return sv, None
                unknown = re.fullmatch(r"Device ([0-9a-f]{4})", rest)
                if unknown:
                    return sv, int(unknown[1], 16)
        return None, None


@lru_cache(maxsize=4)
def load_pci_ids(path: Path | None = None) -> PciIds:
    """Parse pci.ids (vendors, devices, subsystems, classes)."""
    path = path or next((p for p in PCI_IDS_PATHS if p.is_file()), None)
    if path is None:
        raise ProfileError("no pci.ids found (Debian package pci.ids / pciutils) to read lspci names back into ids")
    vendors: dict[str, list[int]] = {}
    devices: dict[int, dict[str, int]] = {}
    subsystems: dict[tuple[int, int], dict[str, tuple[int, int]]] = {}
    classes: dict[str, int] = {}
    vendor = device = klass = None
    for line in path.read_text(errors="replace").splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("C "):
            klass = int(line[2:4], 16)
            vendor = None
            continue
        if klass is not None and vendor is None and line.startswith("\t") and not line.startswith("\t\t"):
            sub, _, name = line[1:].partition("  ")
            classes.setdefault(name, klass << 8 | int(sub, 16))
            continue
        if not line.startswith("\t"):
            ident, _, name = line.partition("  ")
            klass = None
            try:
                vendor = int(ident, 16)
            except ValueError:
                vendor = None
                continue
            vendors.setdefault(name, []).append(vendor)
        elif line.startswith("\t\t") and vendor is not None and device is not None:
            ids, _, name = line[2:].partition("  ")
            sv, _, sd = ids.partition(" ")
            try:
                subsystems.setdefault((vendor, device), {}).setdefault(name, (int(sv, 16), int(sd, 16)))
            except ValueError:
                continue
        elif vendor is not None:
            ident, _, name = line[1:].partition("  ")
            try:
                device = int(ident, 16)
            except ValueError:
                continue
            devices.setdefault(vendor, {}).setdefault(name, device)
    return PciIds({k: tuple(v) for k, v in vendors.items()}, devices, subsystems, classes)


def detect_form(text: str) -> str:
    """``vmm``, ``tree``, ``mm`` (-mm / -nnmm), ``numeric`` (-n) or ``plain`` (-nn / -v / -vvv header lines)."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("Slot:"):
            return "vmm"
        if stripped.startswith("-[") or stripped.startswith("+-[") or stripped.startswith("\\-["):
            return "tree"
        if _MM.match(stripped):
            return "mm"
        if _NUMERIC.match(stripped):
            return "numeric"
        if _HEADER.match(stripped):
            return "plain"
        break
    return "unknown"


def parse_lspci(text: str, source: str = "<lspci>", pci_ids: PciIds | None = None,
                inferred: dict[str, tuple[str, ...]] | None = None
                ) -> tuple[tuple[LspciDevice, ...], tuple[str, ...], str]:
    """Devices, problems (each naming ``source`` and a line) and the form, for any lspci form.

    ``inferred``, when given, receives address -> the id fields resolved from pci.ids names rather
    than read."""
    form = detect_form(text)
    inferred = {} if inferred is None else inferred
    if form == "vmm":
        devices, errors = parse_lspci_vmm(text)
        devices, more = _resolve_vmm_names(devices, source, pci_ids, inferred)
        return devices, tuple(f"{source}: {e}" for e in errors) + more, form
    if form == "unknown":
        raise ProfileError(f"{source}: not lspci output: expected `lspci -nnmmv`, `lspci -mm`, `lspci -n`, "
                           f"`lspci -nn`, `lspci -vvv` or `lspci -tv` (the first line is neither Slot:, a quoted "
                           f"-mm record, a BB:DD.F header nor a -[DDDD:BB]- tree)")
    parse = {"tree": _parse_tree, "mm": _parse_mm, "numeric": _parse_plain, "plain": _parse_plain}[form]
    devices, errors = parse(text, source, pci_ids)
    for d in devices:
        fields: tuple[str, ...] = ()
        if d.vendor is not None and not d.other.get("_ids_read"):
            fields += ("vendor", "device")
        if d.subsystem_vendor is not None and not d.other.get("_sub_read"):
            fields += ("subsystem_vendor", "subsystem_device")
        if form == "tree" and d.class_id is not None:
            fields += ("class_id",)         # a bridge by the tree's shape, not by a class lspci printed
        if fields:
            inferred[d.address] = fields
    devices = tuple(replace(d, other={k: v for k, v in d.other.items() if not k.startswith("_")}) for d in devices)
    return devices, errors, form


def _resolve_vmm_names(devices: tuple[LspciDevice, ...], source: str, pci_ids: PciIds | None,
                       inferred: dict[str, tuple[str, ...]]) -> tuple[tuple[LspciDevice, ...], tuple[str, ...]]:
    """``lspci -vmm`` without ``-nn`` has names only: resolve them like the other name-only forms."""
    out, errors = [], []
    for d in devices:
        if d.vendor is None and d.vendor_name and d.device_name:
            vendor, device = _names_to_ids(pci_ids).resolve(f"{d.vendor_name} {d.device_name}")
            if vendor is None:
                errors.append(f"{source}: {d.slot}: {d.vendor_name} {d.device_name!r} is not in pci.ids; "
                              f"use lspci -nnmmv")
            else:
                fields = ["vendor", "device"]
                klass = _names_to_ids(pci_ids).classes.get(d.class_name or "") if d.class_id is None else d.class_id
                sv = sd = None
                if d.subsystem_vendor_name and d.subsystem_name:
                    sv, sd = _names_to_ids(pci_ids).resolve_subsystem(
                        f"{d.subsystem_vendor_name} {d.subsystem_name}", vendor, device)
                    fields += ["subsystem_vendor", "subsystem_device"]
                d = replace(d, vendor=vendor, device=device, class_id=klass, subsystem_vendor=sv, subsystem_device=sd)
                inferred[d.address] = tuple(fields)
        out.append(d)
    return tuple(out), tuple(errors)


def _parse_mm(text: str, source: str, pci_ids: PciIds | None) -> tuple[tuple[LspciDevice, ...], tuple[str, ...]]:
    """``lspci -mm`` / ``-nnmm`` / ``-nmm``: ``slot "class" "vendor" "device" -rNN -pNN "svendor" "sdevice"``."""
    devices: list[LspciDevice] = []
    errors: list[str] = []
    db = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        head = re.match(rf"^({_ADDR}) ", stripped, re.IGNORECASE)
        tokens = list(_MM_TOKEN.finditer(stripped))
        quoted = [t["q"] for t in tokens if t["q"] is not None]
        if not head or len(quoted) < 3:
            errors.append(f"{source}: line {number}: not an lspci -mm record (cut or wrapped?): {stripped[:70]!r}")
            continue
        opts = {t["opt"][1]: int(t["opt"][2:], 16) for t in tokens if t["opt"]}
        names, ids = [], []
        for q in quoted[:5]:
            m = _MM_ID.match(q)
            if re.fullmatch(r"[0-9a-f]{4}", q, re.IGNORECASE):      # -nmm: ids only
                names.append(None)
                ids.append(int(q, 16))
            elif m:
                names.append(m["name"] or None)
                ids.append(int(m["id"], 16))
            else:
                names.append(q or None)
                ids.append(None)
        while len(names) < 5:
            names.append(None)
            ids.append(None)
        cls_name, vendor_name, device_name, sv_name, sd_name = names
        klass, vendor, device, sv, sd = ids
        read = vendor is not None and device is not None
        if not read and vendor_name and device_name:
            db = db or _names_to_ids(pci_ids)
            vendor, device = db.resolve(f"{vendor_name} {device_name}")
            if vendor is None:
                errors.append(f"{source}: line {number}: {vendor_name} {device_name!r} is not in pci.ids; "
                              f"use lspci -nnmm")
            if klass is None:
                klass = db.classes.get(cls_name or "")
            if sv_name and sd_name and vendor is not None:
                sv, sd = db.resolve_subsystem(f"{sv_name} {sd_name}", vendor, device)
        devices.append(LspciDevice(slot=head[1].lower(), class_name=cls_name, class_id=klass,
                                   vendor_name=vendor_name, vendor=vendor, device_name=device_name, device=device,
                                   subsystem_vendor_name=sv_name, subsystem_vendor=sv, subsystem_name=sd_name,
                                   subsystem_device=sd, revision=opts.get("r"), prog_if=opts.get("p"),
                                   other={**({"_ids_read": "1"} if read else {}),
                                          **({"_sub_read": "1"} if ids[3] is not None else {})}))
    if not devices:
        raise ProfileError(f"{source}: no lspci -mm records (BB:DD.F \"class\" \"vendor\" \"device\" …)")
    return tuple(devices), tuple(errors)


def _names_to_ids(pci_ids: PciIds | None) -> PciIds:
    return pci_ids or load_pci_ids()


def _vendor_device(name: str, source: str, number: int, pci_ids: PciIds | None, errors: list[str]
                   ) -> tuple[str, int | None, int | None]:
    ids = _IDS.match(name)
    if ids:
        return ids["name"], int(ids["v"], 16), int(ids["d"], 16)
    vendor, device = _names_to_ids(pci_ids).resolve(name)
    if vendor is None:
        errors.append(f"{source}: line {number}: {name[:70]!r} names no vendor/device in pci.ids; use lspci -nn")
    return name, vendor, device


def _parse_plain(text: str, source: str, pci_ids: PciIds | None) -> tuple[tuple[LspciDevice, ...], tuple[str, ...]]:
    devices: list[LspciDevice] = []
    errors: list[str] = []
    current: LspciDevice | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if line[0] in " \t":
            if current is None:
                errors.append(f"{source}: line {number}: detail line before any device header")
                continue
            key, _, value = line.strip().partition(": ")
            if key == "Subsystem" and re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{4}", value or "", re.IGNORECASE):
                current = replace(current, subsystem_vendor=int(value[:4], 16), subsystem_device=int(value[5:], 16),
                                  other={**current.other, "_sub_read": "1"})
            elif key == "Subsystem" and value:
                ids = _IDS.match(value)
                if ids:
                    sv, sd = int(ids["v"], 16), int(ids["d"], 16)
                else:
                    sv, sd = _names_to_ids(pci_ids).resolve_subsystem(value, current.vendor, current.device)
                    if sv is not None and sd is None:
                        errors.append(f"{source}: line {number}: subsystem {value[:60]!r} of {current.slot} is "
                                      f"printed like the device's own name: its subsystem device id is unknown; "
                                      f"use lspci -nn")
                    elif sv is None:
                        errors.append(f"{source}: line {number}: subsystem {value[:60]!r} of {current.slot} is not "
                                      f"in this pci.ids (another version?); its ids are unknown: use lspci -nn")
                current = replace(current, subsystem_name=ids["name"] if ids else value, subsystem_vendor=sv,
                                  subsystem_device=sd,
                                  other={**current.other, **({"_sub_read": "1"} if ids else {})})
            elif key == "Physical Slot" and value:
                current = replace(current, physical_slot=value)
            elif key == "Kernel driver in use" and value:
                current = replace(current, other={**current.other, "Driver": value})
            devices[-1] = current
            continue
        numeric = _NUMERIC.match(line.strip())
        if numeric:
            rest = numeric["rest"]
            rev = _REV.search(rest)
            pi = _PROGIF.search(rest)
            current = LspciDevice(slot=numeric["slot"].lower(), class_id=int(numeric["cid"], 16),
                                  vendor=int(numeric["v"], 16), device=int(numeric["d"], 16),
                                  revision=int(rev["rev"], 16) if rev else None,
                                  prog_if=int(pi["pi"], 16) if pi else None, other={"_ids_read": "1"})
            devices.append(current)
            continue
        header = _HEADER.match(line.strip())
        if not header:
            errors.append(f"{source}: line {number}: not an lspci device line: {line.strip()[:70]!r}")
            current = None
            continue
        rest = header["rest"]
        revision = prog_if = None
        rev = _REV.search(rest)
        if rev:
            revision = int(rev["rev"], 16)
            rest = rest[:rev.start()] + rest[rev.end():]
        pi = _PROGIF.search(rest)
        if pi:
            prog_if = int(pi["pi"], 16)
            rest = rest[:pi.start()] + rest[pi.end():]
        class_name = header["cls"].strip()
        class_id = int(header["cid"], 16) if header["cid"] else _names_to_ids(pci_ids).classes.get(class_name)
        name, vendor, device = _vendor_device(rest.strip(), source, number, pci_ids, errors)
        current = LspciDevice(slot=header["slot"].lower(), class_name=class_name, class_id=class_id,
                              device_name=name, vendor=vendor, device=device, revision=revision, prog_if=prog_if,
                              other={"_ids_read": "1"} if _IDS.match(rest.strip()) else {})
        devices.append(current)
    if not devices:
        raise ProfileError(f"{source}: no lspci device lines (BB:DD.F <class>: <vendor> <device>)")
    return tuple(devices), tuple(errors)


def _parse_tree(text: str, source: str, pci_ids: PciIds | None) -> tuple[tuple[LspciDevice, ...], tuple[str, ...]]:
    devices: list[LspciDevice] = []
    errors: list[str] = []
    children: dict[int, tuple[str, str]] = {}      # column of a child marker -> (domain, bus)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        found = False
        for root in _TREE_ROOT.finditer(line):
            children[root.end()] = (root["dom"].lower(), root["bus"].lower())
            found = True
        for entry in _TREE_ENTRY.finditer(line):
            column = entry.start()
            if column not in children:
                errors.append(f"{source}: line {number}: column {column + 1}: {entry['dev']} hangs under no bus "
                              f"(wrapped or cut tree?)")
                continue
            domain, bus = children[column]
            if entry["bus"]:
                children[entry.end() + 2] = (domain, entry["bus"].lower())
            found = True
            tail = line[entry.end():]
            name_match = re.match(r"^ {2}(.*?)\s*$", tail)
            slot = f"{bus}:{entry['dev'].lower()}" if domain == "0000" else f"{domain}:{bus}:{entry['dev'].lower()}"
            if not name_match:
                if entry["bus"] is None:
                    errors.append(f"{source}: line {number}: {slot} has no name")
                # a bridge's own line names only the bus behind it: lspci -tv prints no name there, but a
                # function with a secondary bus is a PCI-to-PCI bridge (class 0604) by construction
                devices.append(LspciDevice(slot=slot, class_id=0x0604 if entry["bus"] else None))
                continue
            name, vendor, device = _vendor_device(name_match[1], source, number, pci_ids, errors)
            devices.append(LspciDevice(slot=slot, device_name=name, vendor=vendor, device=device,
                                       other={"_ids_read": "1"} if _IDS.match(name_match[1]) else {}))
        if not found and line.strip(" |"):
            errors.append(f"{source}: line {number}: not part of an lspci -tv tree: {line.strip()[:70]!r}")
    if not devices:
        raise ProfileError(f"{source}: no device in the lspci -tv tree")
    return tuple(devices), tuple(errors)
