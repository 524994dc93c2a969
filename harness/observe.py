"""Read the value an expectation's selector names out of a fingerprint.

Selectors are the compiler's names for guest-visible properties
(``pci[0b:00.0].vendor``, ``dmi.sys_vendor``, ``kernel.hypervisor``). Values
come back in the form the compiler writes them (ids as ``0x15ad``, absent as
``None``) so the comparison is plain equality.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from guestcompat.detection.fingerprint import Fingerprint, PciFunction
from guestcompat.emulation.fidelity import Value

HYPERVISOR_BIT = 1 << 31
_PCI = re.compile(r"^pci\[(?P<addr>[0-9a-f:.]+)\]\.(?P<field>\w+)$")
_DISK = re.compile(r"^disk\[(?:(?P<addr>[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])|vio:(?P<vio>[0-9a-f]+)):(?P<unit>\d+)\]\.(?P<field>\w+)$")
_RATE = re.compile(r"^disk\[(?P<addr>[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]):(?P<unit>\d+)\]\.rate\.(?P<metric>\w+)$")
_NET_NAME = re.compile(r"^net\[(?P<addr>[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\]\.name$")
_VDEVICE = re.compile(r"^vdevice\[(?P<node>[^\]/]+)\]\.(?P<field>\w+)$")
_DT_ROOT = re.compile(r"^devicetree\.root\.(?P<prop>[\w,-]+)$")
_PLATFORM = re.compile(r"Hardware name: .* (\S+)$")
_DETECTED = re.compile(r"Hypervisor detected: (.+)$")
HEX_DIGITS = {"revision": 2, "class_code": 6}


class UnknownSelector(KeyError):
    """The compiler produced a selector this module cannot read: a bug, not a guest mismatch."""


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


def _backdoor(register: str) -> Callable[[Fingerprint], Value]:
    def read(fp: Fingerprint) -> Value:
        if fp.backdoor is None or fp.backdoor.eax == 0xFFFFFFFF:
            return None
        return getattr(fp.backdoor, register)
    return read


def _smbios(section: str, field: str) -> Callable[[Fingerprint], Value]:
    attribute = {"release": "bios_revision"}.get(field, field)

    def read(fp: Fingerprint) -> Value:
        table = getattr(fp.smbios, section, None) if fp.smbios else None
        return getattr(table, attribute, None) if table else None
    return read


# SMBIOS structures Linux does not export in sysfs, read back through the guest's dmidecode:
# selector section -> (type, {profile field: dmidecode field}).
_DMIDECODE = {"processor": (4, {"manufacturer": "Manufacturer", "version": "Version", "max_speed_mhz": "Max Speed",
                                "socket": "Socket Designation"}),
              "memory": (17, {"manufacturer": "Manufacturer", "locator": "Locator"})}


def _dmidecode_field(section: str, field: str) -> Callable[[Fingerprint], Value]:
    dmi_type, names = _DMIDECODE[section]

    def read(fp: Fingerprint) -> Value:
        dmi = fp.tools.dmidecode if fp.tools else None
        structure = dmi.first(dmi_type) if dmi else None
        value = structure.fields.get(names[field]) if structure else None
        if value is not None and field == "max_speed_mhz":
            number = value.split()[0]
            return int(number) if number.isdigit() else value
        return value
    return read


SIMPLE: dict[str, Callable[[Fingerprint], Value]] = {
    "cpuid.hypervisor_bit": _hypervisor_bit,
    "cpuid.hypervisor_signature": _signature,
    "kernel.hypervisor": _kernel_hypervisor,
    "kernel.vmware_tsc_khz": _vmware_tsc_khz,
    "kernel.vmware_tsc_from_hypervisor": _vmware_tsc_from_hypervisor,
    "kernel.platform": _kernel_platform,
    "backdoor.version": _backdoor("eax"),
    "backdoor.magic": _backdoor("ebx"),
    "backdoor.type": _backdoor("ecx"),
    "smbios.bios.release": _smbios("bios", "release"),
    "tools.systemd_detect_virt": lambda fp: fp.tools.detect_virt if fp.tools else None,
    "tools.virt_what": lambda fp: tuple(fp.tools.virt_what) if fp.tools and fp.tools.virt_what is not None else None,
    "tools.vmware_checkvm": lambda fp: fp.tools.vmware_checkvm.ok if fp.tools and fp.tools.vmware_checkvm else None,
    "tools.vmware_checkvm_ioperm": lambda fp: (fp.tools.vmware_checkvm_ioperm.ok
                                               if fp.tools and fp.tools.vmware_checkvm_ioperm else None),
    **{f"smbios.{section}.{f}": _dmidecode_field(section, f)
       for section, (_, names) in _DMIDECODE.items() for f in names},
    "smbios.version": lambda fp: fp.smbios.version if fp.smbios else None,
    "smbios.oem_strings": lambda fp: tuple(fp.smbios.oem_strings) if fp.smbios else None,
}


def observe(fp: Fingerprint, selector: str) -> Value:
    if selector in SIMPLE:
        return SIMPLE[selector](fp)
    if selector.startswith("dmi."):
        value = fp.dmi.get(selector[4:])
        return value.strip() if isinstance(value, str) else value
    match = _PCI.match(selector)
    if match:
        return _pci_field(fp.pci_function(match["addr"]), match["field"])
    match = _NET_NAME.match(selector)
    if match:
        return _net_name(fp, match["addr"])
    rate = _RATE.match(selector)
    if rate:
        for measured in fp.disk_rates:
            if (measured.pci, measured.target, measured.metric) == (rate["addr"], int(rate["unit"]), rate["metric"]):
                return measured.value
        return None
    match = _VDEVICE.match(selector)
    if match:
        return _vdevice_field(fp, match["node"], match["field"])
    match = _DT_ROOT.match(selector)
    if match:
        return fp.devicetree.get(match["prop"])
    match = _DISK.match(selector)
    if match:
        if match["vio"]:
            disks = sorted((b for b in fp.block if b.vio == match["vio"]), key=lambda b: b.name)
        else:
            disks = sorted((b for b in fp.block if b.pci == match["addr"]), key=lambda b: b.name)
        if not disks:
            return None
        value = getattr(disks[0], {"revision": "rev"}.get(match["field"], match["field"]))
        return value.strip() if isinstance(value, str) else value
    raise UnknownSelector(selector)


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
    raise UnknownSelector(f"pci field {field}")


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
