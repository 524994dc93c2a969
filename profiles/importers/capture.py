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

import dataclasses
import hashlib
import re
import uuid as uuidlib
from typing import Any

from guestcompat.detection.smbios_fields import BY_SECTION
from guestcompat.detection.tools import Dmidecode, LspciDevice
from guestcompat.errors import ProfileError
from guestcompat.profiles.importers.facts import (DEFAULTED, FROM_HARDWARE, FROM_NAME, READ, CaptureFacts,
                                                  Provenance, merge)
from guestcompat.profiles.catalog import Catalog, load_catalog
from guestcompat.profiles.importers.redacted import without_redacted
from guestcompat.profiles.importers.result import ImportResult, imported

#: architectures the importer refuses (names hostnamectl, uname and inxi print)
ARM64 = ("arm64", "aarch64", "armv8", "arm")
from guestcompat.profiles.loader import load

#: PCI classes the VMware base layout already holds (host/ISA/IDE/other bridges, chipset functions)
_LAYOUT_CLASSES = {0x0600, 0x0601, 0x0604, 0x0101, 0x0680}
_ADDRESS = re.compile(r"^(?:[0-9a-f]{4}:)?[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]\Z", re.IGNORECASE)
_SERIAL = re.compile(r"^VMware-((?:[0-9a-f]{2} ){7}[0-9a-f]{2})-((?:[0-9a-f]{2} ){7}[0-9a-f]{2})$", re.IGNORECASE)


def import_capture(name: str, *, lspci: str | None = None, dmidecode: str | None = None,
                   lspci_source: str = "lspci", label: str | None = None) -> ImportResult:
    """Profile ``name`` reproducing the machine the capture texts describe.

    ``lspci`` may be any form lspci_text.py reads (-nnmmv, -mm, -n, -nn, -vvv, -tv); ``label`` names
    the capture in the description (default: ``name``)."""
    if not lspci and not dmidecode:
        raise ProfileError("a capture import needs lspci -nnmmv output, dmidecode output, or both")
    from guestcompat.profiles.importers.forms import FORMS

    readings = []
    if lspci:
        readings.append(FORMS[0].read(lspci, lspci_source))
    if dmidecode:
        readings.append(next(f for f in FORMS if f.name == "dmidecode").read(dmidecode, "dmidecode"))
    return import_facts(name, merge(readings, name), label=label, source=lspci_source if lspci else "dmidecode")


def import_facts(name: str, facts: CaptureFacts, *, label: str | None = None,
                 source: str = "capture") -> ImportResult:
    """Profile ``name`` from whatever one VM's capture holds (forms.read_files / read_text); the
    result's ``inferred`` lists every fact not read from the capture (facts.Provenance.line)."""
    if facts.empty:
        raise ProfileError(f"{name}: the capture holds no fact this tool reads")
    if facts.arch and facts.arch[0].lower() in ARM64:
        raise ProfileError(f"{name}: arm64 guests are not supported (yet): {facts.arch[1]} shows architecture "
                           f"{facts.arch[0]} (VMware Fusion on Apple silicon); guestcompat reproduces x86_64 "
                           f"VMware machines")
    dmi, redacted = without_redacted(facts.dmi)
    if redacted:
        facts = dataclasses.replace(facts, dmi=dmi)
    foreign = _one_hypervisor(facts, name)
    notes: list[str] = list(facts.problems) + ([foreign] if foreign else [])
    if redacted:
        notes.append(f"redacted in the capture, read as unknown: {', '.join(redacted)}")
    provenance: list[Provenance] = [p for p in facts.provenance if p.how != READ]
    profile: dict[str, Any] = {"description": f"imported from a capture ({label or name})"}
    if facts.pci:
        if facts.pci_form == "lspci -t/-tv":
            notes.append("lspci -tv shows no classes, subsystems or physical slots: devices are placed by ids only")
        _layout_and_devices(facts.pci, profile, notes, load_catalog())
    else:
        profile["extends"] = "vmware/base"
        notes.append("no PCI listing in the capture: the devices are the base layout's only")
        provenance.append(Provenance("extends = vmware/base", FROM_HARDWARE,
                                     "no PCI listing; every VMware virtual hardware since version 7 has this layout"))
    _nics(facts, profile, notes, provenance)
    _disks(facts, profile, notes)
    if facts.dmi and facts.dmi.structures:
        _identity(facts.dmi, profile, notes, provenance)
    else:
        notes.append("no dmidecode capture: identity strings are the base profile's")
    _cpu(facts, profile, provenance)
    if foreign is None:
        _vmware_serial(facts, profile, notes, provenance)
    notes.append("platform.hardware_version: a capture does not show it; state it if you know it")
    if not facts.disks:
        notes.append("disks and MAC addresses are not in these captures; add them from the VM's settings"
                     if not any(n.mac for n in facts.nics) else "disks are not in these captures; add them from the VM's settings")
    return imported(name, profile, notes, source, inferred=[p.line() for p in provenance])


#: what names a hypervisor in each kind of fact, and which one
_DMI_HYPERVISORS = (("VMware", "VMware"), ("VMW", "VMware"), ("QEMU", "QEMU/KVM"), ("KVM", "QEMU/KVM"),
                    ("innotek GmbH", "VirtualBox"), ("VirtualBox", "VirtualBox"), ("Xen", "Xen"),
                    ("Microsoft Corporation", "Hyper-V"), ("Parallels", "Parallels"), ("Amazon EC2", "Amazon EC2"),
                    ("Google", "Google Compute Engine"), ("OpenStack", "QEMU/KVM"), ("oVirt", "QEMU/KVM"),
                    ("Red Hat", "QEMU/KVM"), ("Bochs", "QEMU/KVM"), ("Nutanix", "QEMU/KVM"))
_PCI_HYPERVISORS = {0x15AD: "VMware", 0x1AF4: "QEMU/KVM", 0x1B36: "QEMU/KVM", 0x80EE: "VirtualBox",
                    0x1414: "Hyper-V", 0x5853: "Xen", 0x1AB8: "Parallels"}
_KERNEL_HYPERVISORS = {"VMware": "VMware", "KVM": "QEMU/KVM", "Microsoft Hyper-V": "Hyper-V", "Xen HVM": "Xen",
                       "Xen PV": "Xen", "ACRN": "ACRN"}


def hypervisors(facts: CaptureFacts) -> dict[str, str]:
    """Which hypervisor each kind of fact names: {"dmidecode": "VMware", "lspci": "VMware", …}."""
    seen: dict[str, str] = {}
    system = facts.dmi.first(1) if facts.dmi else None
    bios = facts.dmi.first(0) if facts.dmi else None
    for structure, key in ((system, _label("system", "manufacturer")), (system, _label("system", "product")),
                           (bios, _label("bios", "vendor"))):
        value = structure.fields.get(key, "") if structure else ""
        hit = next((h for prefix, h in _DMI_HYPERVISORS if value.startswith(prefix)), None)
        if hit:
            seen.setdefault(f"{facts.dmi_form or 'dmidecode'} ({key} {value!r})", hit)
    vendors = {_PCI_HYPERVISORS[d.vendor] for d in facts.pci if d.vendor in _PCI_HYPERVISORS}
    for hit in sorted(vendors):
        ids = sorted({f"{d.vendor:04x}:{d.device or 0:04x}" for d in facts.pci if _PCI_HYPERVISORS.get(d.vendor) == hit})
        seen[f"{facts.pci_form or 'lspci'} ({', '.join(ids[:3])})"] = hit
    if facts.kernel and facts.kernel.hypervisor:
        seen[f"dmesg ('Hypervisor detected: {facts.kernel.hypervisor}')"] = _KERNEL_HYPERVISORS.get(
            facts.kernel.hypervisor, facts.kernel.hypervisor)
    return seen


def _one_hypervisor(facts: CaptureFacts, name: str) -> str | None:
    """Refuse a capture of two VMs (facts naming two hypervisors); a note for another hypervisor's guest."""
    seen = hypervisors(facts)
    names = set(seen.values())
    if len(names) > 1:
        said = "; ".join(f"{where} says {h}" for where, h in seen.items())
        raise ProfileError(f"{name}: two VMs in one capture? {said}. Import one VM's outputs at a time")
    if names and names != {"VMware"}:
        where, hit = next(iter(seen.items()))
        return (f"this capture is of a {hit} guest ({where}), not a VMware one: the profile keeps VMware's "
                f"layout and identity where the capture says nothing")
    return None


def _layout_and_devices(devices: tuple[LspciDevice, ...], profile: dict[str, Any], notes: list[str],
                        catalog: Catalog) -> None:
    by_slot = {_short(d.slot).lower(): d for d in devices}
    # hw4 has a NIC at 00:11.0 where hw7+ has its PCI bridge; a partial listing (grep'd dmesg, lshw -c
    # network) that shows neither is taken as the modern layout every VMware VM since hw7 has.
    modern = all(by_slot.get(a) is None or _is(by_slot.get(a), 0x15AD, d) or _unnamed_bridge(by_slot.get(a))
                 or by_slot[a].vendor is None for a, d in (("00:11.0", 0x0790), ("00:15.0", 0x07A0)))
    if modern and ("00:11.0" not in by_slot or "00:15.0" not in by_slot):
        notes.append("the PCI listing does not show 00:11.0/00:15.0: the modern layout (hw7+) is assumed")
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
        if dev.vendor is None or dev.device is None:
            notes.append(f"{address}: the capture shows a function there but not its ids"
                         f"{' (' + repr(dev.device_name) + ' did not resolve)' if dev.device_name else ''}; not reproduced")
            continue
        kind = kinds.get((dev.vendor or -1, dev.device or -1))
        label = f"{address} {dev.vendor or 0:04x}:{dev.device or 0:04x} {dev.device_name or '?'}"
        if kind is None:
            notes.append(f"{label}: no device kind carries these ids; not reproduced")
            continue
        entry: dict[str, Any] = {"name": f"{kind}-{address.replace(':', '-').replace('.', '-')}",
                                 "kind": kind, "address": address}
        if dev.physical_slot and dev.physical_slot.isdigit():
            entry["physical_slot"] = int(dev.physical_slot)
        model = catalog.kinds[kind].qemu
        nearest = catalog.kinds[kind].nearest
        if nearest is not None:  # the catalogue's closest presentable kind, for builds without the model
            entry["substitute"] = {"kind": nearest.kind, "reason": nearest.reason}
        elif model is None:
            entry["substitute"] = {"reason": f"QEMU has no model of the {catalog.kinds[kind].summary}"}
        elif model.needs_identity:  # presented by a build with the identity properties, omitted elsewhere
            entry["substitute"] = {"reason": f"stock QEMU cannot show the {catalog.kinds[kind].summary}'s ids; "
                                             f"guestcompat's patched QEMU presents it on {model.driver}"}
        placed.append(entry)
    profile["pci"] = {"devices": placed}


def _identity(dmi: Dmidecode, profile: dict[str, Any], notes: list[str],
              provenance: list[Provenance] | None = None) -> None:
    smbios: dict[str, Any] = {}
    if dmi.smbios_version:
        smbios["version"] = ".".join(dmi.smbios_version.split(".")[:2])
    bios, system = dmi.first(0), dmi.first(1)
    bios_labels = _labels("bios", "vendor", "version", "date", "release")
    if bios and any(bios.fields.get(k) not in (None, "", "Not Specified") for k in bios_labels):
        smbios["bios"] = _pick(bios.fields, bios_labels)
        if bios.fields.get("Vendor", "").startswith("VMware") or bios.fields.get("Version", "").startswith("VMW"):
            profile.setdefault("platform", {})["firmware"] = "efi"
    if system and re.fullmatch(r"VMware\d+,\d+", system.fields.get(_label("system", "product"), "")):
        profile.setdefault("platform", {})["firmware"] = "efi"     # VMware7,1 / VMware20,1: VMware's EFI
    if profile.get("platform", {}).get("firmware") == "efi" and not (bios and bios.fields.get("Vendor")):
        # a banner or lshw shows no BIOS vendor; VMware's EFI firmware calls itself "VMware, Inc.", not the
        # base profile's Phoenix (inferred from the firmware the product name or BIOS version names)
        smbios.setdefault("bios", {})["vendor"] = "VMware, Inc."
        if provenance is not None:
            provenance.append(Provenance("smbios.bios.vendor", FROM_HARDWARE, "not in the capture; VMware's EFI "
                                         "firmware (VMwareN,1 / VMW… BIOS) calls itself 'VMware, Inc.'"))
    if system:
        section = _pick(system.fields, _labels("system", "manufacturer", "product", "version"))
        serial = system.fields.get(_label("system", "serial"), "")
        match = _SERIAL.match(serial)
        if match:
            section["uuid_bios"] = f"{match[1]}-{match[2]}".lower()
        elif serial and serial not in ("Not Specified", "None") and "VMware" in serial:
            section["serial"] = serial
            if system.fields.get("UUID"):
                section["uuid"] = system.fields["UUID"].lower()
            notes.append("the serial is not VMware's 'VMware-<uuid>' form: serial and UUID are kept as captured")
        elif serial and serial not in ("Not Specified", "None"):
            notes.append(f"the serial {serial!r} is not VMware's 'VMware-<uuid>' (redacted?): rebuilt from the UUID")
        if section:
            smbios["system"] = section
    for key, names in (("baseboard", _labels("baseboard", "manufacturer", "product", "version", "serial")),
                       ("chassis", _labels("chassis", "manufacturer", "version", "serial", "asset"))):
        structure = dmi.first(BY_SECTION[key].type)
        picked = _pick(structure.fields, names) if structure else {}
        if picked:
            smbios[key] = picked
    oem = [v for s in dmi.of_type(11) for k, v in sorted(s.fields.items()) if k.startswith("String ")]
    if oem:
        smbios["oem_strings"] = oem
    if smbios:
        profile.setdefault("smbios", {}).update(smbios)


def _nics(facts: CaptureFacts, profile: dict[str, Any], notes: list[str],
          provenance: list[Provenance] | None = None) -> None:
    """A NIC's MAC (ip link, lshw) goes on the device placed at its PCI address; a NIC the capture
    names at an address its PCI listing does not cover (ip link, /sys/class/net, dmesg alone) is
    placed as the kind its driver names, else as ESXi's default vmxnet3 (said so)."""
    placed = {d["address"]: d for d in profile.get("pci", {}).get("devices", [])}
    listed = {d.address for d in facts.pci}
    catalog = load_catalog()
    for nic in facts.nics:
        if nic.pci is None or nic.pci in placed or nic.pci in listed or not _ADDRESS.match(nic.pci) \
                or nic.pci.startswith("00:"):
            continue
        by_driver = [k for k, kind in catalog.kinds.items() if kind.role == "nic" and nic.driver
                     and kind.guest_driver == nic.driver and not k.startswith("qemu-")]
        # behind the PCI bridge (bus 02) Workstation's default e1000 sits (ens33); behind the root ports ESXi's vmxnet3
        default = "e1000" if nic.pci.startswith("02:") else "vmxnet3"
        kind = by_driver[0] if by_driver else default
        if kind not in catalog.kinds:
            continue
        entry: dict[str, Any] = {"name": f"{kind}-{nic.pci.replace(':', '-').replace('.', '-')}", "kind": kind,
                                 "address": nic.pci}
        profile.setdefault("pci", {}).setdefault("devices", []).append(entry)
        placed[nic.pci] = entry
        if provenance is not None:
            provenance.append(Provenance(f"pci[{nic.pci}] kind {kind}", FROM_NAME if by_driver else DEFAULTED,
                                         f"NIC {nic.name} is there; " + (f"its driver is {nic.driver}" if by_driver
                                         else "the capture does not show its model: VMware's default NIC there")))
    for nic in facts.nics:
        if nic.mac and nic.pci in placed and "mac" not in placed[nic.pci]:
            placed[nic.pci]["mac"] = nic.mac
        elif nic.mac and nic.pci is None:
            notes.append(f"NIC {nic.name} ({nic.mac}): its PCI address is not in the capture; MAC not placed "
                         f"(ls -l /sys/class/net shows it)")


def _cpu(facts: CaptureFacts, profile: dict[str, Any], provenance: list[Provenance]) -> None:
    """The host CPU brand VMware passes through (dmidecode type 4, the kernel's smpboot line), and the
    TSC frequency GETHZ gave the source kernel; otherwise the base profile's, said so."""
    cpu: dict[str, Any] = {}
    processor = next((s for s in (facts.dmi.of_type(4) if facts.dmi else ())
                      if s.fields.get("Version") not in (None, "", "Unknown Processor", "Not Specified")), None)
    if processor is not None:
        cpu["model_id"] = processor.fields["Version"]
        vendor = processor.fields.get(_label("processor", "manufacturer"))
        if vendor in ("GenuineIntel", "AuthenticAMD", "HygonGenuine", "CentaurHauls"):
            cpu["vendor"] = vendor
        section = profile.setdefault("smbios", {}).setdefault("processor", {})
        section["version"] = cpu["model_id"]
        if "vendor" in cpu:
            section["manufacturer"] = cpu["vendor"]
    elif facts.kernel and facts.kernel.cpu_model:
        cpu["model_id"] = facts.kernel.cpu_model
        profile.setdefault("smbios", {}).setdefault("processor", {})["version"] = cpu["model_id"]
    else:
        provenance.append(Provenance("cpu.model_id", DEFAULTED, "the capture shows no CPU brand string; the base "
                                     "profile's host brand is used so the guest does not see QEMU's own model name"))
    if facts.kernel and facts.kernel.tsc_khz:
        cpu["tsc_khz"] = facts.kernel.tsc_khz
    if cpu:
        profile["cpu"] = cpu


def is_vmware(facts: CaptureFacts) -> bool:
    return "VMware" in hypervisors(facts).values()


def _disks(facts: CaptureFacts, profile: dict[str, Any], notes: list[str]) -> None:
    """A disk the capture places on a SCSI controller the profile holds becomes a disk on it (target =
    unit); every other one is named in the notes with where it hangs, never dropped silently."""
    if not facts.disks:
        return
    catalog = load_catalog()
    at = {d["address"]: d for d in profile.get("pci", {}).get("devices", [])}
    placed: list[dict[str, Any]] = []
    for disk in sorted(facts.disks, key=lambda d: d.name):
        controller = at.get(disk.pci or "")
        kind = catalog.kinds.get(controller["kind"]) if controller else None
        target = re.fullmatch(r"\d+[:.](\d+)[:.](\d+)[:.](\d+)", disk.target or "")
        where = f"{disk.pci or '?'} ({disk.bus or 'bus?'} {disk.target or ''})".rstrip()
        if (controller and kind and kind.disk_bus == "scsi" and disk.bus == "scsi" and target
                and int(target[2]) <= 15 and not disk.name.startswith("sr") and "substitute" not in controller):
            placed.append({"name": f"{disk.name}", "controller": controller["name"], "unit": int(target[2])})
        else:
            why = ("its controller is not in the capture" if controller is None else
                   f"{controller['kind']} is not a SCSI controller this profile reproduces" if kind is None or
                   kind.disk_bus != "scsi" or "substitute" in controller else "not a SCSI disk")
            notes.append(f"disk {disk.name} on {where}: {why}; not reproduced")
    if placed:
        profile["disks"] = placed
        notes.append(f"disks placed from the capture ({', '.join(d['name'] for d in placed)}): blank, of the default "
                     f"size (the capture shows where a disk is, not what is on it)")


def _vmware_serial(facts: CaptureFacts, profile: dict[str, Any], notes: list[str],
                   provenance: list[Provenance]) -> None:
    """Make sure the imported VMware machine carries a ``VMware-…`` serial.

    Under TCG the guest can only conclude VMware without the CPUID hypervisor bit, from a DMI
    serial containing "VMware" plus the backdoor (emulation/arches/x86_64.py); without such a
    serial the compiler keeps the bit, TCG answers 'TCGTCGTCGTCG' and systemd-detect-virt says
    ``qemu``, virt-what ``vmware,qemu``.  A capture without the serial (``dmidecode -t bios``, a
    banner, lspci alone, a redacted paste) therefore gets ``uuid_bios`` from the captured UUID
    (VMware's serial is that UUID's bytes) or, failing that, a fixed one, each said so."""
    system = profile.setdefault("smbios", {}).setdefault("system", {})
    if "uuid_bios" in system or "VMware" in system.get("serial", ""):
        return
    firmware = profile.get("platform", {}).get("firmware", "bios")
    version = profile.get("smbios", {}).get("version")
    shown = system.get("uuid") or _captured_uuid(facts)
    raw = None
    if shown:
        try:
            value = uuidlib.UUID(shown)
        except ValueError:
            value = None
        if value is not None and value.int not in (0, (1 << 128) - 1):
            raw = value.bytes_le if displayed_swapped(firmware, version) else value.bytes
            why = (f"VMware's serial is the UUID's bytes; the captured UUID {shown} read back "
                   f"({'first three fields swapped: BIOS firmware, SMBIOS >= 2.6' if displayed_swapped(firmware, version) else 'as shown'})")
    if raw is None:
        raw = bytes.fromhex("564d" + hashlib.sha256(str(profile.get("description")).encode()).hexdigest()[:28])
        why = "the capture shows neither a VMware- serial nor a UUID; a fixed one in Workstation's 56 4d form"
        provenance.append(Provenance("smbios.system.uuid_bios", DEFAULTED, why))
    else:
        provenance.append(Provenance("smbios.system.uuid_bios", "inferred from the UUID", why))
    system["uuid_bios"] = " ".join(f"{b:02x}" for b in raw[:8]) + "-" + " ".join(f"{b:02x}" for b in raw[8:])
    if "serial" in system and "VMware" not in system["serial"]:
        notes.append(f"the captured serial {system['serial']!r} is replaced by VMware's 'VMware-<uuid>' one: "
                     f"without it the guest cannot detect VMware under TCG")
        del system["serial"]


def displayed_swapped(firmware: str, smbios_version: str | None) -> bool:
    """Whether the guest shows the UUID with its first three fields swapped (profiles/identity.py)."""
    if firmware != "bios" or not smbios_version:
        return False
    try:
        major, minor = (int(p) for p in smbios_version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (2, 6)


def _captured_uuid(facts: CaptureFacts) -> str | None:
    system = facts.dmi.first(1) if facts.dmi else None
    return system.fields.get("UUID") if system else None


def _labels(section: str, *fields: str) -> dict[str, str]:
    """dmidecode label -> profile field of ``[smbios.<section>]`` (detection/smbios_fields.py), in this order."""
    table = BY_SECTION[section]
    return {table.field(f).dmidecode or f: f for f in fields}


def _label(section: str, field: str) -> str:
    """dmidecode's label of one ``[smbios.<section>]`` field."""
    return BY_SECTION[section].field(field).dmidecode or field


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
