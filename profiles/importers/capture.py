"""Import what a user can capture inside a running source VM: ``lspci -nnmmv`` and ``dmidecode``.

The two texts describe the machine as its guest sees it, which is exactly
what a profile states. The PCI listing gives the layout and the devices:
a VMware PCI bridge at 00:11.0 with root ports means the modern layout
(``vmware/base``); the chipset, bridges and root ports are the base's, so
only the devices behind them (and any extra function on bus 0) are written,
each as the catalogue kind whose ids it carries, at the address it had, with
its physical slot when the guest listed one the layout would not imply.
dmidecode gives the identity: the SMBIOS version, the BIOS strings, the
system strings and ``uuid_bios`` recovered from the ``VMware-…`` serial (so
the displayed UUID is re-derived by the same rule the guest saw), board,
chassis, OEM strings.

Functions with ids no catalogue kind carries (SATA AHCI, USB, sound…) are
reported, never dropped silently; so is what a capture cannot tell (the
hardware version, disks, MAC addresses).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from guestcompat.detection.tools import Dmidecode, LspciDevice, parse_dmidecode
from guestcompat.profiles.importers.lspci_text import parse_lspci
from guestcompat.errors import ProfileError
from guestcompat.profiles.catalog import Catalog, load_catalog
from guestcompat.profiles.loader import load

#: PCI classes the VMware base layout already holds (host/ISA/IDE/other bridges, chipset functions)
_LAYOUT_CLASSES = {0x0600, 0x0601, 0x0604, 0x0101, 0x0680}
_ADDRESS = re.compile(r"^(?:[0-9a-f]{4}:)?[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]\Z", re.IGNORECASE)
_SERIAL = re.compile(r"^VMware-((?:[0-9a-f]{2} ){7}[0-9a-f]{2})-((?:[0-9a-f]{2} ){7}[0-9a-f]{2})$", re.IGNORECASE)


@dataclass
class CaptureImport:
    profile: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def import_capture(name: str, *, lspci: str | None = None, dmidecode: str | None = None,
                   lspci_source: str = "lspci") -> CaptureImport:
    """A profile (TOML-ready data) reproducing the machine the capture texts describe.

    ``lspci`` may be any form lspci_text.py reads (-nnmmv, -nn, -vvv, -tv)."""
    if not lspci and not dmidecode:
        raise ProfileError("a capture import needs lspci -nnmmv output, dmidecode output, or both")
    notes: list[str] = []
    profile: dict[str, Any] = {"description": f"imported from a capture ({name})"}
    if lspci:
        devices, errors, form = parse_lspci(lspci, lspci_source)
        if not devices:
            raise ProfileError("the lspci text holds no device records: expected `lspci -nnmmv` output "
                               "(Slot:/Class:/Vendor:/Device: lines)")
        notes += [f"lspci: {e}" for e in errors]
        if form == "tree":
            notes.append("lspci -tv shows no classes, subsystems or physical slots: devices are placed by ids only")
        _layout_and_devices(devices, profile, notes, load_catalog())
    else:
        profile["extends"] = "vmware/base"
        notes.append("no lspci capture: the devices are the base layout's only")
    if dmidecode:
        dmi, errors = parse_dmidecode(dmidecode)
        notes += [f"dmidecode: {e}" for e in errors]
        _identity(dmi, profile, notes)
    else:
        notes.append("no dmidecode capture: identity strings are the base profile's")
    notes.append("platform.hardware_version: a capture does not show it; state it if you know it")
    notes.append("disks and MAC addresses are not in these captures; add them from the VM's settings")
    return CaptureImport(profile, notes)


def _layout_and_devices(devices: tuple[LspciDevice, ...], profile: dict[str, Any], notes: list[str],
                        catalog: Catalog) -> None:
    by_slot = {_short(d.slot).lower(): d for d in devices}
    modern = all(_is(by_slot.get(a), 0x15AD, d) or _unnamed_bridge(by_slot.get(a))
                 for a, d in (("00:11.0", 0x0790), ("00:15.0", 0x07A0)))
    profile["extends"] = "vmware/base" if modern else "vmware/chipset"
    base = load(profile["extends"])
    base_addresses = {d.address for d in base.pci.devices} | {b.address for b in base.pci.bridges}
    # (vendor, device) -> kind; VMware's kinds before QEMU's own.
    kinds: dict[tuple[int, int], str] = {}
    for kind_name, kind in sorted(catalog.kinds.items(), key=lambda item: item[0].startswith("qemu-")):
        if kind.ids is not None and kind.role not in ("bridge", "root-port"):
            kinds.setdefault((kind.ids.vendor, kind.ids.device), kind_name)
    placed: list[dict[str, Any]] = []
    for address, dev in by_slot.items():
        if not _ADDRESS.match(address):
            notes.append(f"lspci record with slot {address!r}: not a PCI address; skipped")
            continue
        on_bus0 = address.startswith("00:")
        if on_bus0 and (address in base_addresses or (dev.class_id in _LAYOUT_CLASSES)):
            continue  # the base layout's own function
        kind = kinds.get((dev.vendor or -1, dev.device or -1))
        label = f"{address} {dev.vendor or 0:04x}:{dev.device or 0:04x} {dev.device_name or '?'}"
        if kind is None:
            notes.append(f"{label}: no device kind carries these ids; not reproduced")
            continue
        entry: dict[str, Any] = {"name": f"{kind}-{address.replace(':', '-').replace('.', '-')}",
                                 "kind": kind, "address": address}
        if dev.physical_slot and dev.physical_slot.isdigit():
            entry["physical_slot"] = int(dev.physical_slot)
        if catalog.kinds[kind].qemu is None:
            entry["substitute"] = {"reason": f"QEMU has no model of the {catalog.kinds[kind].summary}"}
        placed.append(entry)
    profile["pci"] = {"devices": placed}


def _identity(dmi: Dmidecode, profile: dict[str, Any], notes: list[str]) -> None:
    smbios: dict[str, Any] = {}
    if dmi.smbios_version:
        smbios["version"] = ".".join(dmi.smbios_version.split(".")[:2])
    bios, system = dmi.first(0), dmi.first(1)
    if bios:
        smbios["bios"] = _pick(bios.fields, {"Vendor": "vendor", "Version": "version", "Release Date": "date",
                                             "BIOS Revision": "release"})
        if bios.fields.get("Vendor", "").startswith("VMware"):
            profile.setdefault("platform", {})["firmware"] = "efi"
    if system:
        section = _pick(system.fields, {"Manufacturer": "manufacturer", "Product Name": "product",
                                        "Version": "version"})
        serial = system.fields.get("Serial Number", "")
        match = _SERIAL.match(serial)
        if match:
            section["uuid_bios"] = f"{match[1]}-{match[2]}".lower()
        elif serial:
            section["serial"] = serial
            if system.fields.get("UUID"):
                section["uuid"] = system.fields["UUID"].lower()
            notes.append("the serial is not VMware's 'VMware-<uuid>' form: serial and UUID are kept as captured")
        smbios["system"] = section
    for number, key, names in ((2, "baseboard", {"Manufacturer": "manufacturer", "Product Name": "product",
                                                 "Version": "version", "Serial Number": "serial"}),
                               (3, "chassis", {"Manufacturer": "manufacturer", "Version": "version",
                                               "Serial Number": "serial", "Asset Tag": "asset"})):
        structure = dmi.first(number)
        if structure:
            smbios[key] = _pick(structure.fields, names)
    oem = [v for s in dmi.of_type(11) for k, v in sorted(s.fields.items()) if k.startswith("String ")]
    if oem:
        smbios["oem_strings"] = oem
    profile["smbios"] = smbios


def _pick(fields: dict[str, str] | Any, names: dict[str, str]) -> dict[str, str]:
    """Profile fields from dmidecode fields; dmidecode's 'Not Specified' means the string is absent."""
    return {ours: fields[theirs] for theirs, ours in names.items()
            if theirs in fields and fields[theirs] not in ("Not Specified", "")}


def _short(slot: str) -> str:
    return slot[5:] if len(slot) == 12 and slot[4] == ":" else slot


def _unnamed_bridge(dev: LspciDevice | None) -> bool:
    """A bridge lspci -tv drew without ids (it names only leaves): placed by the layout, not by ids."""
    return dev is not None and dev.vendor is None and dev.class_id == 0x0604


def _is(dev: LspciDevice | None, vendor: int, device: int) -> bool:
    return dev is not None and (dev.vendor, dev.device) == (vendor, device)
