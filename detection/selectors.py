"""Selectors: the names of guest-visible properties, typed.

An expectation (emulation/fidelity.py) names what to read from a fingerprint
with a selector such as ``pci[0b:00.0].vendor``, ``dmi.sys_vendor`` or
``disk[vio:71000003:0].model``. The spelling is the wire format: it is in
compile reports, golden files, ``run --json`` documents and baselines. This
module owns it: one frozen dataclass per family whose ``str()`` is that
spelling, and one ``parse()`` back, so the compiler builds selectors from
fields and the observer, the comparison and ``show`` read fields instead of
slicing strings. ``parse(str(s)) == s`` for every selector.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import ClassVar

from guestcompat.detection.smbios_fields import BY_SECTION, SECTIONS
from guestcompat.errors import SelectorError

_PCI_ADDRESS = re.compile(r"[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")
_VIO_CONTROLLER = re.compile(r"vio:[0-9a-f]+")
_VDEVICE_NODE = re.compile(r"[^\]/\s]+")
_DT_PROP = re.compile(r"[\w,-]+")
_WORD = re.compile(r"[a-z0-9_]+")

PCI_FIELDS = ("present", "vendor", "device", "subsystem_vendor", "subsystem_device", "revision", "class_code",
              "physical_slot", "secondary_bus", "driver")
DISK_FIELDS = ("vendor", "model", "revision", "serial", "media")
VDEVICE_FIELDS = ("present", "name", "device_type", "compatible", "reg")
CPUID_FIELDS = ("hypervisor_bit", "hypervisor_signature")
KERNEL_FIELDS = ("hypervisor", "vmware_tsc_khz", "vmware_tsc_from_hypervisor", "platform", "ram_below_4g_mb")
BACKDOOR_FIELDS = ("version", "magic", "type")
INPUT_FIELDS = ("vmmouse",)
LIMIT_FIELDS = ("bps_read", "bps_write", "bps_total", "iops_read", "iops_write", "iops_total")
TOOLS = ("systemd_detect_virt", "virt_what", "vmware_checkvm", "vmware_checkvm_ioperm")
SMBIOS_TOP = ("version", "oem_strings")
DMI_FILES = tuple(f.sysfs for s in SECTIONS for f in s.fields if f.sysfs)


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise SelectorError(what)


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> None:
    _check(value in allowed, f"{what} {value!r} is not one of {', '.join(allowed)}")


class Selector:
    """Base of every selector family (``isinstance(s, Selector)``)."""


@dataclass(frozen=True)
class Pci(Selector):
    """``pci[<bb:dd.f>].<field>``: a property of the PCI function at a guest address."""

    address: str
    field: str

    def __post_init__(self) -> None:
        _check(bool(_PCI_ADDRESS.fullmatch(self.address)), f"pci selector: {self.address!r} is not a bb:dd.f address")
        _one_of(self.field, PCI_FIELDS, "pci selector: field")

    def __str__(self) -> str:
        return f"pci[{self.address}].{self.field}"


@dataclass(frozen=True)
class NetName(Selector):
    """``net[<bb:dd.f>].name``: the name systemd's net_id gives the NIC at that address."""

    address: str

    def __post_init__(self) -> None:
        _check(bool(_PCI_ADDRESS.fullmatch(self.address)), f"net selector: {self.address!r} is not a bb:dd.f address")

    def __str__(self) -> str:
        return f"net[{self.address}].name"


def _check_controller(controller: str, unit: int) -> None:
    _check(bool(_PCI_ADDRESS.fullmatch(controller) or _VIO_CONTROLLER.fullmatch(controller)),
           f"disk selector: controller {controller!r} is neither a bb:dd.f address nor vio:<reg>")
    _check(isinstance(unit, int) and not isinstance(unit, bool) and unit >= 0,
           f"disk selector: unit {unit!r} is not a non-negative integer")


@dataclass(frozen=True)
class Disk(Selector):
    """``disk[<controller>:<unit>].<field>``: the disk at ``unit`` of a controller named by its
    PCI address (``03:00.0``) or its VIO unit address (``vio:71000003``)."""

    controller: str
    unit: int
    field: str

    def __post_init__(self) -> None:
        _check_controller(self.controller, self.unit)
        _one_of(self.field, DISK_FIELDS, "disk selector: field")

    @property
    def vio(self) -> str | None:
        """The VIO unit address (hex, no prefix), or None for a PCI controller."""
        return self.controller[4:] if self.controller.startswith("vio:") else None

    def __str__(self) -> str:
        return f"disk[{self.controller}:{self.unit}].{self.field}"


@dataclass(frozen=True)
class DiskRate(Selector):
    """``disk[<controller>:<unit>].rate.<metric>``: a throttled disk's measured rate."""

    controller: str
    unit: int
    metric: str

    def __post_init__(self) -> None:
        _check_controller(self.controller, self.unit)
        _check(bool(_WORD.fullmatch(self.metric)), f"disk rate selector: metric {self.metric!r} is not a word")

    def __str__(self) -> str:
        return f"disk[{self.controller}:{self.unit}].rate.{self.metric}"


@dataclass(frozen=True)
class Vdevice(Selector):
    """``vdevice[<name>@<reg>].<field>``: a property of a PAPR VIO node under /vdevice."""

    node: str
    field: str

    def __post_init__(self) -> None:
        _check(bool(_VDEVICE_NODE.fullmatch(self.node)), f"vdevice selector: {self.node!r} is not a node name")
        _one_of(self.field, VDEVICE_FIELDS, "vdevice selector: field")

    def __str__(self) -> str:
        return f"vdevice[{self.node}].{self.field}"


@dataclass(frozen=True)
class DeviceTreeRoot(Selector):
    """``devicetree.root.<prop>``: a property of the device tree's root node (ppc64)."""

    prop: str

    def __post_init__(self) -> None:
        _check(bool(_DT_PROP.fullmatch(self.prop)), f"devicetree selector: {self.prop!r} is not a property name")

    def __str__(self) -> str:
        return f"devicetree.root.{self.prop}"


@dataclass(frozen=True)
class Dmi(Selector):
    """``dmi.<file>``: a file of the guest's /sys/class/dmi/id (smbios_fields.py names them)."""

    file: str

    def __post_init__(self) -> None:
        _one_of(self.file, DMI_FILES, "dmi selector: file")

    def __str__(self) -> str:
        return f"dmi.{self.file}"


@dataclass(frozen=True)
class Smbios(Selector):
    """``smbios.<field>`` (entry point ``version``, ``oem_strings``) or ``smbios.<section>.<field>``
    for a field Linux does not export in sysfs (those are :class:`Dmi`)."""

    section: str | None
    field: str

    def __post_init__(self) -> None:
        if self.section is None:
            _one_of(self.field, SMBIOS_TOP, "smbios selector: field")
            return
        _one_of(self.section, tuple(BY_SECTION), "smbios selector: section")
        known = {f.field: f for f in BY_SECTION[self.section].fields}
        _one_of(self.field, tuple(known), f"smbios.{self.section} selector: field")
        sysfs = known[self.field].sysfs
        _check(sysfs is None, f"smbios.{self.section}.{self.field} is exported in sysfs: its selector is dmi.{sysfs}")

    def __str__(self) -> str:
        return f"smbios.{self.field}" if self.section is None else f"smbios.{self.section}.{self.field}"


@dataclass(frozen=True)
class _Named(Selector):
    """``<prefix>.<field>`` with a closed set of fields."""

    field: str
    prefix: ClassVar[str] = ""
    allowed: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        _one_of(self.field, self.allowed, f"{self.prefix} selector: field")

    def __str__(self) -> str:
        return f"{self.prefix}.{self.field}"


@dataclass(frozen=True)
class Cpuid(_Named):
    """``cpuid.<field>``: the hypervisor bit of leaf 1, the signature at 0x40000000."""

    prefix = "cpuid"
    allowed = CPUID_FIELDS


@dataclass(frozen=True)
class Kernel(_Named):
    """``kernel.<field>``: what the guest kernel logged (hypervisor, VMware TSC, platform)."""

    prefix = "kernel"
    allowed = KERNEL_FIELDS


@dataclass(frozen=True)
class Backdoor(_Named):
    """``backdoor.<field>``: the VMware backdoor's GETVERSION reply."""

    prefix = "backdoor"
    allowed = BACKDOOR_FIELDS


@dataclass(frozen=True)
class Input(_Named):
    """``input.vmmouse``: the input device psmouse's VMMouse protocol registered (its name), None without one."""

    prefix = "input"
    allowed = INPUT_FIELDS


@dataclass(frozen=True)
class VmLimit(_Named):
    """``limits.<metric>``: the rate the guest measured on all the VM's disks at once (their sum)."""

    prefix = "limits"
    allowed = LIMIT_FIELDS


@dataclass(frozen=True)
class Tool(_Named):
    """``tools.<name>``: the answer of a detection tool run in the guest."""

    prefix = "tools"
    allowed = TOOLS


_GUESTINFO_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Guestinfo(Selector):
    """``guestinfo[<key>].value``: what the guest reads over the backdoor RPC channel
    (``info-get guestinfo.<key>``); None when the channel does not answer it."""

    key: str

    def __post_init__(self) -> None:
        _check(bool(_GUESTINFO_KEY.fullmatch(self.key)), f"guestinfo selector: key {self.key!r} is not a guestinfo key")

    def __str__(self) -> str:
        return f"guestinfo[{self.key}].value"


def smbios_selector(section: str, field: str) -> Dmi | Smbios:
    """The selector of profile field ``[smbios.<section>] <field>``: ``dmi.<file>`` where Linux
    exports it in sysfs, else ``smbios.<section>.<field>``."""
    sysfs = BY_SECTION[section].field(field).sysfs
    return Dmi(sysfs) if sysfs else Smbios(section, field)


_BRACKETED = re.compile(r"(?P<family>[a-z]+)\[(?P<key>[^\]]*)\]\.(?P<rest>.+)")
_DOTTED = {"cpuid": Cpuid, "kernel": Kernel, "backdoor": Backdoor, "tools": Tool, "dmi": Dmi, "input": Input,
           "limits": VmLimit}


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Selector:
    """The selector ``text`` spells; a :class:`SelectorError` naming what is wrong otherwise."""
    try:
        return _parse(text)
    except SelectorError as exc:
        raise SelectorError(f"malformed selector {text!r}: {exc}") from None


def _parse(text: str) -> Selector:
    bracketed = _BRACKETED.fullmatch(text)
    if bracketed:
        family, key, rest = bracketed["family"], bracketed["key"], bracketed["rest"]
        if family == "pci":
            return Pci(key, rest)
        if family == "net":
            _check(rest == "name", f"net selector: field {rest!r} is not name")
            return NetName(key)
        if family == "guestinfo":
            _check(rest == "value", f"guestinfo selector: field {rest!r} is not value")
            return Guestinfo(key)
        if family == "vdevice":
            return Vdevice(key, rest)
        if family == "disk":
            controller, colon, unit = key.rpartition(":")
            _check(bool(colon) and unit.isdigit() and unit.isascii(),
                   f"disk selector: {key!r} is not <controller>:<unit>")
            if rest.startswith("rate."):
                return DiskRate(controller, int(unit), rest[len("rate."):])
            return Disk(controller, int(unit), rest)
        raise SelectorError(f"unknown selector family {family!r}[...]")
    family, dot, rest = text.partition(".")
    _check(bool(dot) and bool(rest), "expected <family>.<field> or <family>[<key>].<field>")
    if family in _DOTTED:
        return _DOTTED[family](rest)
    if family == "smbios":
        section, dot, field = rest.partition(".")
        return Smbios(section, field) if dot else Smbios(None, rest)
    if family == "devicetree":
        node, dot, prop = rest.partition(".")
        _check(node == "root" and bool(dot), "devicetree selector: only devicetree.root.<prop> exists")
        return DeviceTreeRoot(prop)
    raise SelectorError(f"unknown selector family {family!r}")
