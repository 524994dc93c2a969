"""``inxi`` (``-F``, ``-Fxz``, ``-b``, ``-v5``…), the summary forum helpers ask for first.

inxi prints sections (``System:``, ``Machine:``, ``Network:``…) of
``key: value`` pairs, wrapped at the terminal's width; the old layout puts
the values on the section's line, the new one below it.  What it carries:

* ``Machine:`` ``System: VMware product: VMware Virtual Platform … serial: …``,
  ``Mobo: Intel model: 440BX …``, ``BIOS: Phoenix v: 6.00 date: 11/12/2020``:
  SMBIOS types 1, 2 and 0.  inxi shortens vendor names (``VMware`` for
  ``VMware, Inc.``, ``Phoenix`` for ``Phoenix Technologies LTD``): the full
  name is restored from a short table and marked inferred;
* ``System:`` ``Kernel: … x86_64`` (or ``aarch64``): the architecture;
* ``Network:``/``Graphics:``/``Audio:`` devices with ``bus-ID`` (``-x``) and
  ``chip-ID`` (``-xx``): PCI functions at their address, with their ids when
  shown; ``IF: ens192 … mac: …``: the NIC's name and MAC.

``serial: <superuser required>``/``N/A`` are not facts; ``<filter>`` (``-z``)
is a redaction the importer reports.
"""

from __future__ import annotations

import re

from guestcompat.detection.tools import DmiStructure, Dmidecode, LspciDevice
from guestcompat.profiles.importers.facts import FROM_NAME, CaptureFacts, NicFact, Provenance

_SECTION = re.compile(r"^(?P<name>[A-Z][A-Za-z()]*(?:\([a-z]\))?):(?:\s+|$)(?P<rest>.*)$")
_KEY = re.compile(r"(?:^|(?<=\s))(?P<key>[A-Za-z][\w]*(?:-[\w]+)?(?: \(MHz\))?):(?=\s|$)")
#: inxi's short vendor names -> the SMBIOS strings they stand for
FULL_NAMES = {"VMware": "VMware, Inc.", "Phoenix": "Phoenix Technologies LTD", "Intel": "Intel Corporation",
              "innotek": "innotek GmbH", "QEMU": "QEMU", "Microsoft": "Microsoft Corporation"}
_NOT_SHOWN = (None, "<superuser required>", "<superuser/root required>", "N/A", "<root required>", "")
_ARCH = re.compile(r"\b(x86_64|aarch64|arm64|i[3-6]86|ppc64le|s390x|riscv64)\b")
_BUS = re.compile(r"^(?:[0-9a-f]{4}:)?[0-9a-f]{2}:[01][0-9a-f]\.[0-7]$", re.IGNORECASE)
SECTIONS = ("System", "Machine", "CPU", "CPU(s)", "Graphics", "Audio", "Network", "Drives", "Partition", "Info",
            "Memory", "Sensors", "Repos", "Battery", "Bluetooth", "RAID", "Swap", "USB", "Processes", "Logical")


def _sections(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        match = _SECTION.match(line)
        if match and match["name"] in SECTIONS:
            current = match["name"]
            out[current] = out.get(current, "") + " " + match["rest"]
        elif current and line[:1] in (" ", "\t"):
            out[current] += " " + line.strip()
        elif line.strip():
            current = None
    return out


def _pairs(text: str) -> list[tuple[str, str]]:
    keys = list(_KEY.finditer(text))
    return [(k["key"], text[k.end():keys[i + 1].start() if i + 1 < len(keys) else len(text)].strip())
            for i, k in enumerate(keys)]


def _first(value: str | None) -> str | None:
    words = (value or "").split()
    return words[0] if words else None


def looks_like_inxi(text: str) -> int:
    found = _sections(text)
    named = sum(name in found for name in ("System", "Machine", "CPU", "CPU(s)", "Graphics", "Network", "Drives"))
    if named >= 2 and ("Machine" in found or "System" in found):
        return 90
    return 55 if named == 1 and "Machine" in found else 0


def read_inxi(text: str, label: str) -> CaptureFacts:
    found = _sections(text)
    provenance: list[Provenance] = []
    structures: list[DmiStructure] = []
    groups: dict[str, dict[str, str]] = {}
    group = None
    for key, value in _pairs(found.get("Machine", "")):
        if key in ("System", "Mobo", "BIOS", "Bios", "UEFI", "Chassis"):
            group = {"Bios": "BIOS", "UEFI": "BIOS"}.get(key, key)
            groups.setdefault(group, {})["vendor"] = value
        elif group:
            groups[group].setdefault(key, value)

    def vendor(raw: str, what: str) -> str:
        full = FULL_NAMES.get(raw)
        if full and full != raw:
            provenance.append(Provenance(f"smbios {what} vendor", FROM_NAME,
                                         f"inxi prints {raw!r}; the SMBIOS string is {full!r}"))
        return full or raw

    if "BIOS" in groups:
        g = groups["BIOS"]
        fields = {"Vendor": vendor(g["vendor"], "bios")}
        fields |= {k: g[s] for k, s in (("Version", "v"), ("Release Date", "date")) if g.get(s) not in _NOT_SHOWN}
        structures.append(DmiStructure(0x3000, 0, 0, "BIOS Information", fields))
    if "System" in groups:
        g = groups["System"]
        fields = {"Manufacturer": vendor(g["vendor"], "system")}
        fields |= {k: g[s] for k, s in (("Product Name", "product"), ("Version", "v"), ("Serial Number", "serial"))
                   if g.get(s) not in _NOT_SHOWN}
        structures.append(DmiStructure(0x3001, 1, 0, "System Information", fields))
    if "Mobo" in groups:
        g = groups["Mobo"]
        fields = {"Manufacturer": vendor(g["vendor"], "baseboard")}
        fields |= {k: g[s] for k, s in (("Product Name", "model"), ("Serial Number", "serial"))
                   if g.get(s) not in _NOT_SHOWN}
        structures.append(DmiStructure(0x3002, 2, 0, "Base Board Information", fields))
    arch = None
    kernel = dict(_pairs(found.get("System", ""))).get("Kernel", "")
    if (m := _ARCH.search(kernel)):
        arch = (m[1], f"{label} (inxi Kernel)")
    devices: list[LspciDevice] = []
    nics: list[NicFact] = []
    for section in ("Graphics", "Audio", "Network"):
        card: dict[str, str] = {}
        for key, value in _pairs(found.get(section, "")) + [("Device-end", "")]:
            if re.fullmatch(r"Device(?:-\d+|-end)?|Card(?:-\d+)?", key):
                if card.get("bus-ID") and _BUS.match(card["bus-ID"]):
                    chip = re.fullmatch(r"([0-9a-f]{4}):([0-9a-f]{4})", _first(card.get("chip-ID")) or "", re.I)
                    devices.append(LspciDevice(slot=card["bus-ID"], device_name=card.get("name"),
                                               vendor=int(chip[1], 16) if chip else None,
                                               device=int(chip[2], 16) if chip else None))
                card = {"name": value.split(" driver")[0].strip()}
            elif key == "IF" and section == "Network":
                card["if"] = _first(value) or "?"
                nics.append(NicFact(card["if"], pci=_first(card.get("bus-ID")), driver=_first(card.get("driver"))))
            elif key == "mac" and nics and section == "Network":
                mac = _first(value) or ""
                if re.fullmatch(r"(?:[0-9a-f]{2}:){5}[0-9a-f]{2}", mac, re.IGNORECASE):
                    last = nics[-1]
                    nics[-1] = NicFact(last.name, mac.lower(), last.pci, last.altnames, last.driver)
            else:
                card.setdefault(key, value.split(" port:")[0].strip() if key == "bus-ID" else value)
    problems: list[str] = []
    if not devices and ("Network" in found or "Graphics" in found):
        problems.append(f"{label}: inxi without -x shows no bus-ID: no PCI address read (inxi -Fxx shows them)")
    pci = tuple(d for d in devices if d.vendor is not None)
    named_only = [d for d in devices if d.vendor is None]
    if named_only:
        problems.append(f"{label}: {len(named_only)} device(s) with a bus-ID but no chip-ID (inxi -xx shows it): "
                        f"placed by name only where a NIC names them")
    return CaptureFacts(sources=((label, "inxi"),), pci=pci, pci_form="inxi" if pci else None,
                        dmi=Dmidecode(None, tuple(structures)) if structures else None,
                        dmi_form="inxi" if structures else None, nics=tuple(nics),
                        provenance=tuple(provenance), problems=tuple(problems), arch=arch)
