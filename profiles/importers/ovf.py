"""Import a VMware OVF descriptor (``.ovf``) into a profile, through the .vmx importer.

An OVF export says, in DMTF's CIM vocabulary, what the .vmx says in VMware's
own; so this module only translates (to the .vmx settings of
``vmx.import_settings``) and the rules about layout, addresses, identity and
disks stay in one place:

* ``VirtualSystemType`` ``vmx-14`` → ``virtualHW.version = 14``;
* ``Item`` ResourceType 6 (SCSI controller): ``rasd:Address`` is the bus
  number N → ``scsiN``; ``ResourceSubType`` ``lsilogic`` / ``lsilogicsas`` /
  ``VirtualSCSI`` → ``lsilogic`` / ``lsisas1068`` / ``pvscsi``;
* ResourceType 10 (Ethernet): the n-th adapter → ``ethernet<n>``,
  ``ResourceSubType`` ``VmxNet3`` / ``E1000`` / ``E1000e`` / ``PCNet32`` →
  ``vmxnet3`` / ``e1000`` / ``e1000e`` / ``vlance``, ``rasd:Address`` → MAC;
* ResourceType 17 (disk): ``rasd:Parent`` names the controller's
  InstanceID, ``AddressOnParent`` the unit, ``HostResource ovf:/disk/<id>`` →
  DiskSection → References → the VMDK file (``scsiN:M.fileName``);
* ``vmw:Config`` ``slotInfo.pciSlotNumber`` inside an Item → that device's
  ``pciSlotNumber``; ``vmw:Config``/``vmw:ExtraConfig`` at the hardware
  section (``firmware``, ``uuid.bios``, ``ethernet0.pciSlotNumber``…) → the
  same .vmx key.

* ResourceType 20 (SATA, or NVMe by its ``vmware.nvme.controller``
  subtype) → ``sataN`` / ``nvmeN``; 5 (IDE) → the PIIX4's channel ``ideN``;
  15/16 (CD/DVD) → a CD-ROM drive on its Parent, like a disk.

Other ResourceTypes (floppy, USB, sound, video) are reported as not reproduced.  The XML is parsed with
``xml.etree``; a document with a DTD or entities is refused (no OVF has
one), a malformed one names the file, line and column.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from guestcompat.errors import ProfileError
from guestcompat.profiles.importers.result import ImportResult, imported
from guestcompat.profiles.importers.vmx import DiskPolicy, import_settings

NS = {"ovf": "http://schemas.dmtf.org/ovf/envelope/1",
      "rasd": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData",
      "vssd": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData",
      "vmw": "http://www.vmware.com/schema/ovf"}
_OVF = "{" + NS["ovf"] + "}"
_VMW = "{" + NS["vmw"] + "}"
SCSI_SUBTYPES = {"lsilogic": "lsilogic", "lsilogicsas": "lsisas1068", "virtualscsi": "pvscsi", "pvscsi": "pvscsi"}
NIC_SUBTYPES = {"vmxnet3": "vmxnet3", "e1000": "e1000", "e1000e": "e1000e", "pcnet32": "vlance", "vlance": "vlance"}
_RESOURCE_NAMES = {"1": "other", "5": "IDE controller", "14": "floppy drive", "15": "CD-ROM drive",
                   "16": "DVD drive", "20": "SATA controller", "23": "USB controller", "24": "graphics",
                   "35": "sound card"}


def _text(item: ET.Element, name: str) -> str | None:
    el = item.find(f"rasd:{name}", NS)
    return el.text.strip() if el is not None and el.text else None


def parse_ovf(text: str, source: str) -> ET.Element:
    """The Envelope element; a clear error for what is not an OVF document."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ProfileError(f"{source}: a DTD or entity declaration: OVF descriptors have none; refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line, column = exc.position
        raise ProfileError(f"{source}: line {line}, column {column + 1}: not well-formed XML "
                           f"({str(exc).split(':')[0]}); truncated or edited descriptor?") from None
    except (UnicodeError, ValueError) as exc:  # lone surrogates (undecodable bytes kept by surrogateescape)
        raise ProfileError(f"{source}: not well-formed XML: text that is not Unicode ({exc.reason if isinstance(exc, UnicodeError) else exc})") from None
    except RecursionError:
        raise ProfileError(f"{source}: not an OVF descriptor: elements nested too deeply") from None
    if root.tag != f"{_OVF}Envelope":
        raise ProfileError(f"{source}: root element {root.tag!r} is not an OVF Envelope ({NS['ovf']})")
    return root


def ovf_settings(text: str, source: str) -> tuple[dict[str, str], list[str]]:
    """.vmx settings (lower-case keys) equivalent to the OVF, and what was not translated."""
    root = parse_ovf(text, source)
    notes: list[str] = []
    systems = root.findall(".//ovf:VirtualSystem", NS)
    if not systems:
        raise ProfileError(f"{source}: no VirtualSystem (a VirtualSystemCollection of several VMs is not supported)")
    if len(systems) > 1:
        raise ProfileError(f"{source}: {len(systems)} VirtualSystems; import one VM at a time")
    system = systems[0]
    hardware = system.find("ovf:VirtualHardwareSection", NS)
    if hardware is None:
        raise ProfileError(f"{source}: VirtualSystem has no VirtualHardwareSection (truncated?)")
    vmx: dict[str, str] = {}
    name = system.findtext("ovf:Name", default=None, namespaces=NS) or system.get(f"{_OVF}id")
    if name:
        vmx["displayname"] = name.strip()
    vtype = hardware.findtext("ovf:System/vssd:VirtualSystemType", default="", namespaces=NS).strip()
    versions = [int(v[4:]) for v in vtype.replace(",", " ").split() if v.startswith("vmx-") and v[4:].isdigit()]
    if not versions:
        raise ProfileError(f"{source}: VirtualSystemType {vtype!r} names no VMware hardware version (vmx-NN)")
    vmx["virtualhw.version"] = str(max(versions))
    for config in hardware.findall("vmw:Config", NS) + hardware.findall("vmw:ExtraConfig", NS):
        key, value = config.get(f"{_VMW}key"), config.get(f"{_VMW}value")
        if key and value is not None:
            vmx[key.lower()] = value
    files = {f.get(f"{_OVF}id"): f.get(f"{_OVF}href") for f in root.findall("ovf:References/ovf:File", NS)}
    disk_files = {d.get(f"{_OVF}diskId"): files.get(d.get(f"{_OVF}fileRef"))
                  for d in root.findall("ovf:DiskSection/ovf:Disk", NS)}
    controllers: dict[str, str] = {}     # InstanceID -> scsiN
    nics = 0
    items = hardware.findall("ovf:Item", NS)
    for item in items:
        rtype, label = _text(item, "ResourceType"), _text(item, "ElementName") or "?"
        slot = next((c.get(f"{_VMW}value") for c in item.findall("vmw:Config", NS)
                     if c.get(f"{_VMW}key") == "slotInfo.pciSlotNumber"), None)
        if rtype == "3" and (_text(item, "VirtualQuantity") or "").isdigit():
            vmx["numvcpus"] = _text(item, "VirtualQuantity") or ""
        elif rtype == "4" and (_text(item, "VirtualQuantity") or "").isdigit():
            vmx["memsize"] = _text(item, "VirtualQuantity") or ""
        elif rtype == "6":
            bus, subtype = _text(item, "Address") or "0", (_text(item, "ResourceSubType") or "lsilogic").lower()
            prefix = f"scsi{bus}"
            controllers[_text(item, "InstanceID") or ""] = prefix
            vmx[f"{prefix}.present"] = "TRUE"
            vmx[f"{prefix}.virtualdev"] = SCSI_SUBTYPES.get(subtype, subtype)
            if slot:
                vmx[f"{prefix}.pcislotnumber"] = slot
        elif rtype == "20":   # SATA (vmware.sata.ahci) or, by its subtype, NVMe (vmware.nvme.controller)
            subtype = (_text(item, "ResourceSubType") or "").lower()
            family = "nvme" if "nvme" in subtype else "sata"
            prefix = f"{family}{_text(item, 'Address') or '0'}"
            controllers[_text(item, "InstanceID") or ""] = prefix
            vmx[f"{prefix}.present"] = "TRUE"
            if slot:
                vmx[f"{prefix}.pcislotnumber"] = slot
        elif rtype == "5":    # the PIIX4's IDE channel Address (0 primary, 1 secondary)
            controllers[_text(item, "InstanceID") or ""] = f"ide{_text(item, 'Address') or '0'}"
        elif rtype in ("15", "16"):
            continue          # CD/DVD drives: below, on their controller
        elif rtype == "10":
            prefix = f"ethernet{nics}"
            nics += 1
            subtype = (_text(item, "ResourceSubType") or "").lower()
            vmx[f"{prefix}.present"] = "TRUE"
            vmx[f"{prefix}.virtualdev"] = NIC_SUBTYPES.get(subtype, subtype or "?")
            if _text(item, "Address"):
                vmx[f"{prefix}.address"] = _text(item, "Address") or ""
            if slot:
                vmx[f"{prefix}.pcislotnumber"] = slot
        elif rtype != "17":
            notes.append(f"{label} (ResourceType {rtype}, {_RESOURCE_NAMES.get(rtype or '', 'unknown')}): "
                         f"not reproduced by this importer")
    for item in items:   # disks after controllers: an Item's Parent may come later in the document
        rtype = _text(item, "ResourceType")
        if rtype not in ("15", "16", "17"):
            continue
        label = _text(item, "ElementName") or ("disk" if rtype == "17" else "CD/DVD drive")
        prefix = controllers.get(_text(item, "Parent") or "")
        if prefix is None:
            notes.append(f"{label}: its Parent {_text(item, 'Parent')!r} is not a storage controller of this "
                         f"descriptor: not reproduced")
            continue
        unit = _text(item, "AddressOnParent") or "0"
        vmx[f"{prefix}:{unit}.present"] = "TRUE"
        if rtype != "17":
            vmx[f"{prefix}:{unit}.devicetype"] = "cdrom-image"
            continue
        resource = _text(item, "HostResource") or ""
        disk_id = resource.rsplit("/", 1)[-1]
        if disk_files.get(disk_id):
            vmx[f"{prefix}:{unit}.filename"] = disk_files[disk_id] or ""
        else:
            notes.append(f"{label}: HostResource {resource!r} names no file in DiskSection/References: blank disk")
    for key in [k for k in vmx if k.endswith(".pcislotnumber")]:
        if not vmx[key].lstrip("-").isdigit():
            notes.append(f"{key}: {vmx.pop(key)!r} is not a number")
    return vmx, notes


def import_ovf(text: str, name: str, source: str = "<ovf>", disks: DiskPolicy | None = None) -> ImportResult:
    """A profile (TOML-ready) for the VM an OVF descriptor describes."""
    vmx, notes = ovf_settings(text, source)
    inferred: list[str] = []
    data, more = import_settings(vmx, name, source, disks, inferred=inferred)
    data["description"] = data["description"].replace(f"imported from {Path(source).name}",
                                                      f"imported from OVF {Path(source).name}")
    return imported(name, data, notes + more, source, inferred=inferred)
