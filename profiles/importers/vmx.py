"""Import a VMware ``.vmx`` descriptor into a guestcompat profile.

What a .vmx says maps onto the profile model like this:

* ``virtualHW.version`` picks the layout: 7 and later extend ``vmware/base``
  (PCI bridge at 00:11.0 and 32 root ports), older versions extend
  ``vmware/chipset`` (devices on bus 0);
* ``firmware = "efi"`` selects OVMF and VMware's EFI identity (``VMware7,1``,
  ``VMware20,1`` from hardware version 20);
* ``uuid.bios`` is the machine's identity: serial and displayed UUID derive
  from it (profiles/identity.py);
* each present ``ethernetN`` / ``scsiN`` becomes a device at the guest
  address its ``pciSlotNumber`` implies (slot 32 + d: behind the bridge at
  02:d.0; slot 160 + 32·k + f: behind root port 00:(15+k).f, bus 3 + 8k + f;
  a slot below 32: device on bus 0), its ``virtualDev`` the catalogue kind;
* ``scsiN:M`` disks become disks on that controller; with a :class:`DiskPolicy`
  their ``fileName`` VMDK is checked (every extent present) and either
  attached as it is (``image = "/…/disk.vmdk"``, QEMU's vmdk driver) or
  converted with qemu-img into ``disk_dir`` (``image = "/…/scsi0-0.qcow2"``);
  without one (or with ``mode = "blank"``) the disk is a blank disk and the
  report says so.

The file is read by vmx_text.py, as leniently as VMware reads it (odd lines
reported and skipped, ``.encoding`` honoured); device indexes are bounded by
VMware's own limits (vmx_limits.py) before anything is built.  USB, sound,
VMCI and SVGA become their catalogue kinds (vmx_devices.py); serial,
parallel and floppy are reported (the profile model has no ISA devices);
what else a .vmx holds (SATA/NVMe controllers, CD-ROMs…) is listed in the
import report with the reason it is not reproduced, never dropped silently.
A device without ``pciSlotNumber`` (VMware assigns it at first power-on) is
placed where VMware would put it (vmx_placement.py) and marked
``placement = "predicted"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guestcompat.errors import ProfileError
from guestcompat.profiles.catalog import load_catalog
from guestcompat.profiles.importers.result import ImportResult, imported
from guestcompat.profiles.importers.vmx_devices import other_device, substitute_for
from guestcompat.profiles.importers.vmx_limits import check_device_limits
from guestcompat.profiles.importers.vmx_placement import Pending, ProductGuess, guess_product, guest_slot, predict
from guestcompat.profiles.importers.vmx_text import read_vmx_text

#: .vmx virtualDev -> catalogue kind (vmxnet2 is "enhanced vmxnet": the same 15ad:0720 function)
NIC_KINDS = {"e1000": "e1000", "e1000e": "e1000e", "vmxnet3": "vmxnet3", "vlance": "vlance",
             "vmxnet": "vmxnet", "vmxnet2": "vmxnet"}
SCSI_KINDS = {"lsilogic": "lsilogic", "lsisas1068": "lsisas1068", "pvscsi": "pvscsi", "buslogic": "buslogic"}
#: .vmx controller family -> catalogue kind (SCSI: by virtualDev, SCSI_KINDS)
STORAGE_KINDS = {"sata": "vmware-sata", "nvme": "vmware-nvme"}
#: The PIIX4 IDE function every VMware profile has (profiles/vmware/chipset.toml): ideN:M hangs there.
IDE_CONTROLLER = "ide"
IDE_KIND = "piix4-ide"
#: deviceType values VMware gives CD-ROM drives (cdrom-image, cdrom-raw, atapi-cdrom).
_CDROM_TYPES = ("cdrom", "atapi")
#: .vmx virtualDev VMware uses when the key is absent
DEFAULT_NIC = "vlance"
DEFAULT_SCSI = "lsilogic"

_DEVICE = re.compile(r"^(ethernet|scsi|sata|nvme|ide|usb|sound|serial|parallel|floppy|vmci|ehci|usb_xhci|svga)(\d+)?"
                     r"\.present$", re.IGNORECASE)
#: families that hold a PCI slot of their own (VMware numbers them: pciSlotNumber)
_SLOTTED = ("ethernet", "scsi", "sata", "nvme", "usb", "ehci", "usb_xhci", "sound", "vmci")
_UUID_BIOS = re.compile(r"^\s*(?:[0-9a-fA-F]{2}\s?){8}-?\s?(?:[0-9a-fA-F]{2}\s?){8}$")


DISK_MODES = ("attach", "convert", "blank")


@dataclass(frozen=True)
class DiskPolicy:
    """What to do with the VMDKs a .vmx names: ``attach`` them as they are, ``convert`` them
    (qemu-img, into ``disk_dir``, as ``out_format``) or leave ``blank`` disks.
    Relative file names resolve against ``base_dir`` (the .vmx's directory).

    Policy (issue 13): a VM package is its directory. Every file a disk uses (the ``fileName``
    VMDK and each extent its descriptor names) must resolve, symlinks followed, inside ``base_dir``;
    an absolute or ``../`` name reaching elsewhere is refused unless ``allow_outside`` (the CLI's
    ``--allow-outside-disks``): a descriptor from somewhere else must not attach ``/etc/shadow``
    or another VM's disk to the guest."""

    mode: str = "attach"
    base_dir: Path = Path(".")
    disk_dir: Path | None = None
    out_format: str = "qcow2"
    allow_outside: bool = False

    def __post_init__(self) -> None:
        if self.mode not in DISK_MODES:
            raise ProfileError(f"disk mode {self.mode!r}: one of {', '.join(DISK_MODES)}")
        if self.mode == "convert" and self.disk_dir is None:
            raise ProfileError("disk mode convert needs a directory for the converted images")


def parse_vmx(text: str | bytes, source: str = "<vmx>", problems: list[str] | None = None) -> dict[str, str]:
    """The key/value pairs of a .vmx (keys lower-cased, as VMware treats them), read as leniently as
    VMware does (vmx_text.py); what was odd about the file goes to ``problems``."""
    read = read_vmx_text(text, source)
    if problems is not None:
        problems.extend(read.problems)
    if "virtualhw.version" not in read.values:
        raise ProfileError(f"{source}: no virtualHW.version: not a complete .vmx (truncated?)")
    return read.values


def slot_to_address(slot: int, hardware_version: int) -> str:
    """The guest PCI address VMware derives from a ``pciSlotNumber``.

    Root port functions are numbered two ways in descriptors: ``160 + 32k + f`` and
    ``160 + 32k + 1024 f`` (ESXi writes 1184 for the function 1 of the first port: the guest
    reads slot 161 there); both name bus ``3 + 8k + f``."""
    if slot >= 1024 and hardware_version >= 7:
        function, base = divmod(slot, 1024)
        if function <= 7 and 160 <= base < 288 and (base - 160) % 32 == 0:
            return f"{3 + 8 * ((base - 160) // 32) + function:02x}:00.0"
        raise ValueError(f"pciSlotNumber {slot} names no root port function (160 + 32*k + 1024*f)")
    if hardware_version < 7 or slot < 32:
        return f"00:{slot:02x}.0"
    if slot < 64:
        return f"02:{slot - 32:02x}.0"
    if 160 <= slot < 288:
        port, function = divmod(slot - 160, 32)
        if function > 7:
            raise ValueError(f"pciSlotNumber {slot} names no root port function (160 + 32*k + 0..7)")
        return f"{3 + 8 * port + function:02x}:00.0"
    raise ValueError(f"pciSlotNumber {slot} is outside VMware's slot ranges (<32, 32-63, 160-287)")


_DECIMAL = re.compile(r"[0-9]{1,9}")


def _count(vmx: dict[str, str], key: str, what: str, notes: list[str], low: int, high: int) -> int | None:
    """A decimal setting VMware writes as plain ASCII digits (``memSize = "4096"``); anything else
    (``"-4096"``, ``"lots"``, ``"²"``, out of range) is listed as not reproduced, never dropped silently."""
    raw = vmx.get(key)
    if raw is None:
        return None
    text = raw.strip()
    if not _DECIMAL.fullmatch(text) or not low <= int(text) <= high:
        notes.append(f"{key}: {raw[:40]!r} is not a {what} ({low}-{high}); the profile keeps the default")
        return None
    return int(text)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "yes", "1")


def import_vmx(text: str | bytes, name: str, source: str = "<vmx>", disks: DiskPolicy | None = None,
               product: str | None = None) -> ImportResult:
    """The profile reproducing the VM the .vmx describes (bytes: decoded per its ``.encoding``);
    ``product`` (esxi, esxi-acpi, desktop) overrides the product told from the descriptor for
    devices placed by prediction."""
    problems: list[str] = []
    inferred: list[str] = []
    settings = parse_vmx(text, source, problems)
    data, notes = import_settings(settings, name, source, disks, inferred=inferred, product=product)
    return imported(name, data, problems + notes, source, inferred=inferred)


def import_settings(vmx: dict[str, str], name: str, source: str, disks_policy: DiskPolicy | None = None,
                    inferred: list[str] | None = None, product: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """(TOML-ready profile data, notes) for .vmx-style settings (lower-case keys); the OVF importer
    maps onto this too.  Predicted placements are listed in ``inferred`` (``key: how (why)``)."""
    raw_hw = vmx["virtualhw.version"].strip()
    if not _DECIMAL.fullmatch(raw_hw) or not 3 <= int(raw_hw) <= 99:
        raise ProfileError(f"{source}: virtualHW.version {vmx['virtualhw.version'][:40]!r} is not a VMware "
                           f"hardware version (3-99)")
    hw = int(raw_hw)
    check_device_limits(vmx, source)
    vmx = dict(vmx)   # predicted slot numbers are written into this copy, as VMware writes them back
    inferred = inferred if inferred is not None else []
    efi = vmx.get("firmware", "bios").lower() == "efi"
    notes: list[str] = []
    profile: dict[str, Any] = {
        "extends": "vmware/base" if hw >= 7 else "vmware/chipset",
        "description": f"imported from {Path(source).name}: {vmx.get('displayname', name)} (hardware version {hw})",
        "platform": {"hardware_version": hw, "firmware": "efi" if efi else "bios"},
    }
    memory = _count(vmx, "memsize", "memory size in MiB", notes, 128, 1 << 20)
    if memory is not None:
        profile["platform"]["memory_mb"] = memory
    hole = _count(vmx, "pcihole.start", "PCI hole start in MiB", notes, 128, 4032)
    if hole is not None:
        profile["platform"]["pci_hole_start_mb"] = hole
    cpus = _count(vmx, "numvcpus", "vCPU count", notes, 1, 64)
    if cpus is not None:
        profile["cpu"] = {"count": cpus}
    smbios: dict[str, Any] = {}
    if efi:
        smbios["system"] = {"product": "VMware20,1" if hw >= 20 else "VMware7,1"}
        smbios["bios"] = {"vendor": "VMware, Inc."}
        notes.append("smbios.bios.version/date: the EFI firmware build is not in the .vmx; "
                     "take them from a capture (dmidecode) of the running VM")
    if "uuid.bios" in vmx and _UUID_BIOS.match(vmx["uuid.bios"]):
        smbios.setdefault("system", {})["uuid_bios"] = vmx["uuid.bios"].strip().lower()
    elif "uuid.bios" in vmx:
        notes.append(f"uuid.bios {vmx['uuid.bios'][:60]!r} is not 16 hex bytes: the serial and UUID are not "
                     f"reproduced")
    else:
        notes.append("uuid.bios missing: the serial and UUID are not reproduced")
    if smbios:
        profile["smbios"] = smbios
    devices: list[dict[str, Any]] = []
    disks: list[dict[str, Any]] = []
    _layout_notes(vmx, notes)
    predicted = _predict_slots(vmx, hw, notes, inferred, product)
    catalog = load_catalog()
    for key in sorted(vmx):
        match = _DEVICE.match(key)
        if not match:
            continue
        family = match[1].lower()
        if family == "svga" and not _truthy(vmx[key]):
            notes.append("svga.present = FALSE: every VMware layout keeps SVGA II at 00:0f.0; the profile does too")
        if not _truthy(vmx[key]):
            continue
        prefix = _prefix(key, family)
        if family == "ethernet":
            _nic(vmx, prefix, hw, devices, notes)
        elif family == "vmci" and hw >= 7:
            continue  # part of the modern layout (vmware/base), reported there as QEMU's gap
        elif family in ("scsi", "sata", "nvme"):
            if _controller(vmx, prefix, family, hw, devices, notes):
                _disks(vmx, prefix, family, prefix, range(64), disks, notes, disks_policy, source)
        elif family == "ide":
            continue  # the PIIX4's own channels: their drives come below
        elif family in ("usb", "ehci", "usb_xhci", "sound", "svga", "vmci", "serial", "parallel", "floppy"):
            other_device(vmx, family, prefix, hw, devices, notes, catalog,
                         lambda p: _address(vmx, p, hw, notes))
        else:
            notes.append(f"{prefix}: {family} devices are not reproduced by this importer")
    for channel in (0, 1):  # ide0 primary, ide1 secondary; master 0, slave 1 -> unit channel*2 + device
        _disks(vmx, f"ide{channel}", "ide", IDE_CONTROLLER, range(2), disks, notes, disks_policy, source,
               unit_base=channel * 2)
    for device in devices:
        if "substitute" not in device and catalog.kinds.get(device["kind"]) is not None:
            substitute = substitute_for(device["kind"], catalog)   # what QEMU cannot present, said so
            if substitute is not None:
                device["substitute"] = substitute
        if device["name"] in predicted:
            device["placement"], device["placement_basis"] = "predicted", predicted[device["name"]]
    profile["pci"] = {"devices": devices}
    if disks:
        profile["disks"] = disks
    return profile, notes


#: settings that change what the guest sees and that no profile reproduces: (key pattern, what it is)
_UNMODELLED = ((re.compile(r"^pcipassthru\d+\.present$"), "a PCI device passed through from the host"),
               (re.compile(r"^ich7m\.present$"), "the ICH7-M LPC bridge macOS guests get (00:1f.0)"),
               (re.compile(r"^smc\.present$"), "the Apple SMC of macOS guests (ISA)"))


def _layout_notes(vmx: dict[str, str], notes: list[str]) -> None:
    """What in the descriptor changes the guest's machine beyond the devices the profile holds."""
    layout = vmx.get("chipset.motherboardlayout", "").strip().lower()
    if layout and layout != "i440bx":
        notes.append(f"chipset.motherboardLayout = {layout!r}: ESXi 8's layout of PCI root bridges (pciBridgeN."
                     f"virtualDev = pciRootBridge), which no bundled profile models: the devices are placed on the "
                     f"440BX layout (vmware/base) and their guest addresses differ from the source's")
    for key, value in vmx.items():
        for pattern, what in _UNMODELLED:
            if pattern.match(key) and _truthy(value):
                notes.append(f"{key}: {what}: not reproduced")


def _prefix(key: str, family: str) -> str:
    """The settings prefix of a ``….present`` key: ``ethernet0``, ``usb``, ``sound`` (unnumbered
    families keep VMware's spelling)."""
    return key[: -len(".present")] if family in ("usb", "ehci", "usb_xhci", "sound", "svga") else \
        f"{family}{key[len(family):-len('.present')] or '0'}"


def _slot(vmx: dict[str, str], prefix: str) -> int | None:
    raw = vmx.get(f"{prefix}.pcislotnumber", "").strip()
    return int(raw) if _DECIMAL.fullmatch(raw) else None


def _predict_slots(vmx: dict[str, str], hw: int, notes: list[str], inferred: list[str],
                   product_override: str | None = None) -> dict[str, str]:
    """Give each present device without a usable ``pciSlotNumber`` the one VMware would (written into
    ``vmx``); {prefix: the rule} of those predicted."""
    pending: list[Pending] = []
    used: set[int] = set()
    for key in sorted(vmx):
        match = _DEVICE.match(key)
        if not match or not _truthy(vmx[key]) or match[1].lower() not in _SLOTTED:
            continue
        family = match[1].lower()
        prefix = _prefix(key, family)
        slot = _slot(vmx, prefix)
        if slot is not None:
            used.add(slot)
            continue
        if hw < 7 and family in ("usb", "vmci"):
            continue   # the PIIX4's own USB function, VMCI at 00:07.7: fixed addresses
        dev = vmx.get(f"{prefix}.virtualdev", "").strip().lower() or \
            {"scsi": DEFAULT_SCSI, "ethernet": DEFAULT_NIC}.get(family)
        pending.append(Pending(prefix, family, int(prefix[len(family):] or 0) if prefix[len(family):].isdigit() else 0,
                               dev))
    for name in ("pcibridge0", "pcibridge4", "pcibridge5", "pcibridge6", "pcibridge7"):
        slot = _slot(vmx, name)
        if slot is not None:
            used.add(slot)
    if not pending:
        return {}
    guess = guess_product(vmx, hw)
    if product_override and hw >= 7:
        guess = ProductGuess(product_override, ("--product",), True)
    product = {"esxi": "ESXi", "esxi-acpi": "ESXi 8 ACPI layout", "desktop": "Workstation/Fusion",
               "legacy": f"hardware version {hw}"}[guess.product]
    if guess.recognised:
        why = f"{product} descriptor ({', '.join(guess.evidence[:3])})"
    else:
        why = f"{product} assumed: the descriptor names no product (no key only ESXi or Workstation/Fusion writes)"
        notes.append(f"placement: which VMware product wrote this .vmx is not recognisable; devices without "
                     f"pciSlotNumber are placed by the {product} rule (VMware assigns them at first power-on)")
    predicted: dict[str, str] = {}
    placed = predict(pending, used, hw, guess.product)
    for p in placed:
        vmx[f"{p.prefix}.pcislotnumber"] = str(p.slot)
        if p.prefix.startswith("vmci"):
            continue   # it takes a number, but the guest sees VMCI at 00:07.7 (vmware/base)
        try:
            address = slot_to_address(p.slot, hw)
        except ValueError:
            continue
        nic = (f", NIC name ens{guest_slot(p.slot)}" if p.prefix.startswith("ethernet") and p.slot >= 32
               and guess.product != "esxi-acpi" else "")   # the ACPI layout's slot names are not modelled
        predicted[p.prefix] = f"{p.basis}: slot {p.slot}"
        inferred.append(f"pci.devices[{p.prefix}].address = {address}: predicted (no pciSlotNumber: VMware's first "
                        f"power-on rule gives slot {p.slot}{nic}; {why})")
    for device in pending:
        if device.prefix not in predicted and not (device.family == "vmci"):
            notes.append(f"{device.prefix}: no pciSlotNumber and no free slot VMware would give it: not placed")
    return predicted


def _address(vmx: dict[str, str], prefix: str, hw: int, notes: list[str]) -> str | None:
    slot = vmx.get(f"{prefix}.pcislotnumber")
    if slot is None or not _DECIMAL.fullmatch(slot.strip()):
        notes.append(f"{prefix}: no pciSlotNumber (VMware assigns it at first power-on): cannot place it; "
                     f"capture the running VM instead")
        return None
    try:
        return slot_to_address(int(slot), hw)
    except ValueError as exc:
        notes.append(f"{prefix}: {exc}")
        return None


def _nic(vmx: dict[str, str], prefix: str, hw: int, devices: list[dict[str, Any]], notes: list[str]) -> None:
    dev = vmx.get(f"{prefix}.virtualdev", DEFAULT_NIC).lower()
    kind = NIC_KINDS.get(dev)
    if kind is None:
        notes.append(f"{prefix}: virtualDev {dev!r} has no device kind (known: {', '.join(sorted(NIC_KINDS))})")
        return
    address = _address(vmx, prefix, hw, notes)
    if address is None:
        return
    device: dict[str, Any] = {"name": prefix, "kind": kind, "address": address}
    mac = vmx.get(f"{prefix}.address") or vmx.get(f"{prefix}.generatedaddress")
    if mac:
        device["mac"] = mac.lower()
    else:
        notes.append(f"{prefix}: no MAC address (neither address nor generatedAddress)")
    devices.append(device)


def _controller(vmx: dict[str, str], prefix: str, family: str, hw: int, devices: list[dict[str, Any]],
                notes: list[str]) -> bool:
    """The storage controller ``prefix`` as a device; never refused for its kind: one QEMU lacks
    (LSI Logic Parallel on stock QEMU, BusLogic anywhere) gets the catalogue's nearest kind as its
    substitute, with the reason (guestcompat's patched builds present the real 53c1030 instead)."""
    if family == "scsi":
        dev = vmx.get(f"{prefix}.virtualdev", DEFAULT_SCSI).lower()
        kind = SCSI_KINDS.get(dev)
        if kind is None:
            notes.append(f"{prefix}: SCSI virtualDev {dev!r} has no device kind (known: "
                         f"{', '.join(sorted(SCSI_KINDS))}); its disks are not reproduced")
            return False
    else:
        kind = STORAGE_KINDS[family]
    address = _address(vmx, prefix, hw, notes)
    if address is None:
        return False
    # (a kind this build may lack gets its nearest kind after the loop: vmx_devices.substitute_for)
    devices.append({"name": prefix, "kind": kind, "address": address})
    return True


def _bus_strings(controller_kind: str, cdrom: bool) -> dict[str, str]:
    """The strings VMware's disks and drives report on the controller kind's bus (devices.toml
    ``disk_buses.*.vmware``)."""
    catalog = load_catalog()
    bus = catalog.disk_buses[catalog.kinds[controller_kind].disk_bus or "scsi"]
    strings = bus.vmware_cdrom if cdrom else bus.vmware
    return {} if strings is None else strings.model_dump(exclude_none=True)


def _disks(vmx: dict[str, str], prefix: str, family: str, controller: str, units: range,
           disks: list[dict[str, Any]], notes: list[str], policy: DiskPolicy | None, source: str,
           unit_base: int = 0) -> None:
    """The disks and CD-ROM drives ``prefix:M`` of one controller, as ``disks`` entries on ``controller``."""
    unit_key = re.compile(rf"^{prefix}:(\d+)\.present$")
    controller_kind = (SCSI_KINDS.get(vmx.get(f"{prefix}.virtualdev", DEFAULT_SCSI).lower(), "pvscsi")
                       if family == "scsi" else STORAGE_KINDS.get(family, IDE_KIND))
    for key in sorted(vmx, key=lambda k: (len(k), k)):
        match = unit_key.match(key)
        if not match or not _truthy(vmx[key]):
            continue
        slot = int(match[1])
        if slot not in units:
            notes.append(f"{prefix}:{slot}: not a {family} position VMware has; not reproduced")
            continue
        unit = unit_base + slot
        dev_type = vmx.get(f"{prefix}:{slot}.devicetype", "disk").lower()
        cdrom = any(dev_type.startswith(t) for t in _CDROM_TYPES)
        disk: dict[str, Any] = {"name": f"{prefix}-{slot}", "controller": controller, "unit": unit}
        if cdrom:
            disk["media"] = "cdrom"
        disk.update(_bus_strings(controller_kind, cdrom))
        file_name = vmx.get(f"{prefix}:{slot}.filename")
        if cdrom:
            if file_name:
                notes.append(f"{prefix}:{slot}: CD-ROM drive imported empty (its medium {file_name} is not "
                             f"attached: the guest sees the drive, no disc)")
        elif file_name and (policy is None or policy.mode == "blank"):
            notes.append(f"{prefix}:{slot}: disk {file_name} imported as a blank disk of the default size "
                         f"(import with disks attached or converted to carry the VMDK)")
        elif file_name:
            disk["image"] = _disk_image(file_name, f"{prefix}-{slot}", policy, source)
        disks.append(disk)


def package_file(file_name: str, base_dir: Path, allow_outside: bool = False) -> Path:
    """``file_name`` (from a descriptor) as a path, refused when it leaves the package directory
    ``base_dir`` (see :class:`DiskPolicy`) or cannot be a file name at all."""
    if not file_name or "\0" in file_name or any(ord(c) < 0x20 for c in file_name):
        raise ProfileError(f"{file_name!r} is not a file name")
    path = Path(file_name) if Path(file_name).is_absolute() else base_dir / file_name
    if not allow_outside:
        root = base_dir.resolve()
        real = path.resolve()
        if real != root and root not in real.parents:
            raise ProfileError(f"{file_name} resolves to {real}, outside the VM's directory {root}; a disk of "
                               f"the package lives in its directory (--allow-outside-disks attaches it anyway)")
    return path


def _disk_image(file_name: str, stem: str, policy: DiskPolicy, source: str) -> str:
    """The absolute path of the image the disk uses: the VMDK itself, or its converted copy."""
    from guestcompat.profiles.importers.vmdk import convert_vmdk, inspect_vmdk

    try:
        path = package_file(file_name, policy.base_dir, policy.allow_outside)
        info = inspect_vmdk(path)
        for extent in info.extents:
            package_file(str(extent), policy.base_dir, policy.allow_outside)
        if policy.mode == "attach":
            return str(path.resolve())
        assert policy.disk_dir is not None
        dest = policy.disk_dir / f"{stem}.{policy.out_format}"
        return str(convert_vmdk(path, dest, policy.out_format).resolve())
    except ProfileError as exc:
        raise ProfileError(f"{source}: {stem.replace('-', ':')}.fileName: {exc}") from None
