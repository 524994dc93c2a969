"""Read the value an expectation's selector names out of a fingerprint.

Selectors are the compiler's names for guest-visible properties
(``pci[0b:00.0].vendor``, ``dmi.sys_vendor``, ``kernel.hypervisor``), typed in
detection/selectors.py; this module reads each family out of the typed
fingerprint. Values come back in the form the compiler writes them (ids as
``0x15ad``, absent as ``None``) so the comparison is plain equality.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from guestcompat.detection.fingerprint import BlockDevice, Fingerprint, PciFunction
from guestcompat.detection.selectors import (Backdoor, Cpuid, DeviceTreeRoot, Disk, DiskRate, Dmi, Guestinfo, Input,
                                             Kernel, NetName, Pci, Selector, Smbios, Tool, Vdevice, VmLimit, parse)
from guestcompat.detection.smbios_fields import BY_SECTION
from guestcompat.emulation.fidelity import Value
from guestcompat.errors import SelectorError

HYPERVISOR_BIT = 1 << 31
_PLATFORM = re.compile(r"Hardware name: .* (\S+)$")
_DETECTED = re.compile(r"Hypervisor detected: (.+)$")
HEX_DIGITS = {"revision": 2, "class_code": 6}


def _hypervisor_bit(fp: Fingerprint) -> Value:
    leaf = fp.cpuid.get(1)
    return None if leaf is None else bool(leaf.ecx & HYPERVISOR_BIT)


def _signature(fp: Fingerprint) -> Value:
    """The signature a guest trusts: CPUID 0x40000000, read only when the hypervisor bit says so."""
    return fp.hypervisor_signature if _hypervisor_bit(fp) else None


def _kernel_hypervisor(fp: Fingerprint) -> Value:
    for line in fp.hypervisor_lines:
        match = _DETECTED.search(line)
        if match:
            return match.group(1).strip()
    return None


def _kernel_platform(fp: Fingerprint) -> Value:
    """The platform Linux chose at boot: powerpc ends its "Hardware name:" line with it (``… pSeries``)."""
    for line in fp.kernel_log:
        match = _PLATFORM.search(line)
        if match:
            return match.group(1)
    return None


_TSC_FROM_HYPERVISOR = re.compile(r"TSC freq read from hypervisor : (\d+)\.(\d{3}) MHz")


def _vmware_tsc_khz(fp: Fingerprint) -> Value:
    """The TSC frequency Linux's VMware platform code got from the backdoor's GETHZ, in kHz."""
    for line in fp.kernel_log:
        match = _TSC_FROM_HYPERVISOR.search(line)
        if match:
            return int(match[1]) * 1000 + int(match[2])
    return None


def _vmware_tsc_from_hypervisor(fp: Fingerprint) -> Value:
    """Whether Linux's VMware platform code got the TSC rate from GETHZ (True), failed (False) or never asked."""
    if any(_TSC_FROM_HYPERVISOR.search(line) for line in fp.kernel_log):
        return True
    if any("Failed to get TSC freq from the hypervisor" in line for line in fp.kernel_log):
        return False
    return None


def _backdoor(fp: Fingerprint, register: str) -> Value:
    if fp.backdoor is None or fp.backdoor.eax == 0xFFFFFFFF:
        return None
    return getattr(fp.backdoor, register)


# Fields read back from the decoded SMBIOS table instead of sysfs or dmidecode: (section, field) -> attribute.
_FROM_TABLE = {("bios", "release"): "bios_revision"}


def _smbios(fp: Fingerprint, selector: Smbios) -> Value:
    if selector.section is None:
        if fp.smbios is None:
            return None
        value = getattr(fp.smbios, selector.field)
        return tuple(value) if selector.field == "oem_strings" else value
    if (selector.section, selector.field) in _FROM_TABLE:
        table = getattr(fp.smbios, selector.section, None) if fp.smbios else None
        return getattr(table, _FROM_TABLE[selector.section, selector.field], None) if table else None
    # Structures Linux does not export in sysfs (types 4, 17), read back through the guest's dmidecode.
    section = BY_SECTION[selector.section]
    label = section.field(selector.field).dmidecode
    dmi = fp.tools.dmidecode if fp.tools else None
    structure = dmi.first(section.type) if dmi else None
    value = structure.fields.get(label) if structure and label else None
    if value is not None and selector.field == "max_speed_mhz":
        number = value.split()[0]
        return int(number) if number.isdigit() else value
    return value


_E820 = re.compile(r"BIOS-e820: \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\] usable")


def _ram_below_4g_mb(fp: Fingerprint) -> Value:
    """Where RAM below 4 GiB ends, in MiB: the end of the highest usable e820 range below 4 GiB the
    kernel logged, rounded up to a MiB (the firmware keeps up to a few hundred KiB at the top for
    itself: SeaBIOS 128 KiB, VMware's BIOS its ACPI tables). None without e820 lines."""
    top = None
    for line in fp.kernel_log:
        match = _E820.search(line)
        if match and int(match[1], 16) < 1 << 32:
            end = min(int(match[2], 16) + 1, 1 << 32)
            top = end if top is None else max(top, end)
    return None if top is None else -(-top // (1 << 20))


def _vm_rate(fp: Fingerprint, metric: str) -> Value:
    """The rate of a group of disks read at once (a VM-wide limit): what they moved together over the
    group's elapsed time; None without a group for *metric* or when a member did not run cleanly."""
    members = [r for r in fp.disk_rates if r.group is not None and r.metric == metric]
    if not members:
        return None
    members = [r for r in members if r.group == members[0].group]
    if any(r.status != 0 or not r.centiseconds for r in members):
        return None
    moved = sum(r.count * (r.block_size if metric.startswith("bps") else 1) for r in members)
    return round(moved * 100 / max(r.centiseconds or 0 for r in members))


_CPUID: dict[str, Callable[[Fingerprint], Value]] = {
    "hypervisor_bit": _hypervisor_bit,
    "hypervisor_signature": _signature,
}
_KERNEL: dict[str, Callable[[Fingerprint], Value]] = {
    "hypervisor": _kernel_hypervisor,
    "vmware_tsc_khz": _vmware_tsc_khz,
    "vmware_tsc_from_hypervisor": _vmware_tsc_from_hypervisor,
    "platform": _kernel_platform,
    "ram_below_4g_mb": _ram_below_4g_mb,
}
_BACKDOOR_REGISTERS = {"version": "eax", "magic": "ebx", "type": "ecx"}
_TOOLS: dict[str, Callable[[Fingerprint], Value]] = {
    "systemd_detect_virt": lambda fp: fp.tools.detect_virt if fp.tools else None,
    "virt_what": lambda fp: tuple(fp.tools.virt_what) if fp.tools and fp.tools.virt_what is not None else None,
    "vmware_checkvm": lambda fp: fp.tools.vmware_checkvm.ok if fp.tools and fp.tools.vmware_checkvm else None,
    "vmware_checkvm_ioperm": lambda fp: (fp.tools.vmware_checkvm_ioperm.ok
                                         if fp.tools and fp.tools.vmware_checkvm_ioperm else None),
}


def observe(fp: Fingerprint, selector: str | Selector) -> Value:
    """The value ``selector`` names in ``fp``; a SelectorError for a malformed selector."""
    sel = parse(selector) if isinstance(selector, str) else selector
    match sel:
        case Cpuid(field=field):
            return _CPUID[field](fp)
        case Kernel(field=field):
            return _KERNEL[field](fp)
        case Backdoor(field=field):
            return _backdoor(fp, _BACKDOOR_REGISTERS[field])
        case VmLimit(field=field):
            return _vm_rate(fp, field)
        case Input(field="vmmouse"):
            return next((name for name in fp.input_devices if name.endswith("VMMouse")), None)
        case Tool(field=field):
            return _TOOLS[field](fp)
        case Smbios():
            return _smbios(fp, sel)
        case Dmi(file=file):
            value = fp.dmi.get(file)
            return value.strip() if isinstance(value, str) else value
        case Pci(address=address, field=field):
            return _pci_field(fp.pci_function(address), field)
        case NetName(address=address):
            return _net_name(fp, address)
        case DiskRate(controller=controller, unit=unit, metric=metric):
            for measured in fp.disk_rates:
                if (measured.pci, measured.target, measured.metric) == (controller, unit, metric):
                    return measured.value
            return None
        case Vdevice(node=node, field=field):
            return _vdevice_field(fp, node, field)
        case DeviceTreeRoot(prop=prop):
            return fp.devicetree.get(prop)
        case Guestinfo(key=key):
            return fp.guestinfo.get(key)
        case Disk():
            disk = _disk_at(fp, sel)
            if disk is None:
                return None
            value = getattr(disk, {"revision": "rev"}.get(sel.field, sel.field))
            return value.strip() if isinstance(value, str) else value
    raise SelectorError(f"selector {sel} has no reader in harness/observe.py")


#: PCI class (base, sub) of a parallel IDE controller: two devices (master, slave) per ATA link.
_IDE_CLASS = 0x0101


def _disk_at(fp: Fingerprint, sel: Disk) -> BlockDevice | None:
    """The block device at ``sel``'s controller and unit. In a document whose probe recorded no
    position (before the storage buses: SCSI only) the controller's first device stands for it."""
    if sel.vio is not None:
        disks = sorted((b for b in fp.block if b.vio == sel.vio), key=lambda b: b.name)
    else:
        disks = sorted((b for b in fp.block if b.pci == sel.controller), key=lambda b: b.name)
    if not disks:
        return None
    fn = fp.pci_function(sel.controller) if sel.vio is None else None
    per_link = 2 if fn is not None and fn.class_code is not None and fn.class_code >> 8 == _IDE_CLASS else 1
    placed = [(d.unit(per_link), d) for d in disks]
    if all(unit is None for unit, _ in placed):
        return disks[0]
    return next((d for unit, d in placed if unit == sel.unit), None)


def _net_name(fp: Fingerprint, address: str) -> Value:
    """The name systemd's net_id gives the NIC at ``address`` (slot name first, then path), as udevadm
    reported it in the guest; None without the tool's answer."""
    if fp.tools is None:
        return None
    for nic in fp.net:
        if nic.pci == address and nic.name in fp.tools.net_names:
            props = fp.tools.net_names[nic.name].properties
            return props.get("ID_NET_NAME_SLOT") or props.get("ID_NET_NAME_PATH")
    return None


def _pci_field(fn: PciFunction | None, field: str) -> Value:
    if field == "present":
        return True if fn is not None else None
    if fn is None:
        return None
    if field in ("vendor", "device", "subsystem_vendor", "subsystem_device", "revision", "class_code"):
        value = getattr(fn, field)
        return None if value is None else f"0x{value:0{HEX_DIGITS.get(field, 4)}x}"
    if field == "physical_slot":
        slot = fn.physical_slot
        return int(slot) if slot is not None and slot.isdigit() else slot
    if field in ("secondary_bus", "driver"):
        return getattr(fn, field)
    raise SelectorError(f"pci field {field} has no reader in harness/observe.py")


def _vdevice_field(fp: Fingerprint, node: str, field: str) -> Value:
    """A /vdevice node's property: strings as the device tree holds them (one string, or a tuple),
    ``reg`` as ``0x71000010``; ``present`` when the node has any property."""
    prefix = f"vdevice/{node}/"
    if field == "present":
        return True if any(k.startswith(prefix) for k in fp.devicetree) else None
    value = fp.devicetree.get(prefix + field)
    if value is None:
        return None
    return value[0] if len(value) == 1 else value


def observed_vdevices(fp: Fingerprint) -> list[str]:
    """The /vdevice node names the guest shows (``v-scsi@71000010``)."""
    return sorted({k.split("/")[1] for k in fp.devicetree if k.startswith("vdevice/")})


def observed_pci_addresses(fp: Fingerprint) -> Iterator[tuple[str, str]]:
    for fn in fp.pci:
        yield fn.ref, f"{fn.vendor:04x}:{fn.device:04x} class {fn.class_code:06x}"
