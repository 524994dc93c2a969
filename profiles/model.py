"""The profile model: what a source platform presents to its guests.

A profile states *what the guest should see* (VMware's ids, addresses, bus
numbers, identity strings), never how QEMU is told to show it; the compiler
(emulation/) decides that and reports where it can only approximate.

The models are pydantic models because a profile is user input: unknown
keys, wrong types and malformed values must come back as an error naming the
file and the key path (``profiles.loader`` formats pydantic's locations).
They are frozen: a loaded profile never changes.
"""

from __future__ import annotations

import os.path
import re
import uuid as uuidlib
from pathlib import PurePath
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from guestcompat.bridges.address import PciAddress


class Frozen(BaseModel):
    """Base for every profile section: immutable, strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


#: Bidirectional embedding/override/isolate controls: they reorder what a person reading the guest's
#: dmidecode (or our report) sees, so a string could display as something it is not (issue 13).
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _printable(value: str) -> str:
    """Reject control characters (C0, DEL, C1) and bidi controls: SMBIOS, SCSI and QEMU strings cannot carry
    them, and a guest-visible string must read as what it is."""
    for ch in value:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            raise ValueError(f"contains the control character {ch!r}; guest-visible strings must be printable")
        if 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"contains {ch!r}, an undecodable byte or lone surrogate; guest-visible strings are "
                             f"text (QEMU's argv is UTF-8)")
        if ch in BIDI_CONTROLS:
            raise ValueError(f"contains the bidirectional control U+{code:04X}; guest-visible strings must "
                             f"display as they are stored")
    return value


Text = Annotated[str, AfterValidator(_printable)]


def _stated(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty; say why (the fidelity report prints it)")
    return value


Reason = Annotated[str, AfterValidator(_printable), AfterValidator(_stated)]

#: Suffixes ``disks[].image`` may have, and the QEMU block driver each is read with (emulation/compiler.py).
IMAGE_SUFFIXES = {".qcow2": "qcow2", ".vmdk": "vmdk", ".raw": "raw", ".img": "raw", ".iso": "raw"}
#: Host trees whose files are never a guest's disk (devices, kernel and process state).
HOST_TREES = ("/dev/", "/proc/", "/sys/")


def _image_path(value: str) -> str:
    """A disk image the guest reads (read-only): a file with a disk-image suffix, never a device or a
    kernel file, never a string that cannot be one QEMU option value."""
    _printable(value)
    if not value.strip():
        raise ValueError("is empty; leave image out for a blank disk")
    suffix = PurePath(value).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"{value!r} is not a disk image file name (one of {', '.join(IMAGE_SUFFIXES)}); "
                         f"a host file is never attached as a guest disk by accident")
    real = os.path.realpath(value)
    if any((real + "/").startswith(tree) for tree in HOST_TREES):
        raise ValueError(f"{value!r} resolves to {real}, a host device or kernel file, not a disk image")
    return value


ImagePath = Annotated[str, AfterValidator(_image_path)]


def _pci_address(value: str) -> PciAddress:
    return PciAddress.parse(value)


Address = Annotated[str, AfterValidator(lambda v: str(_pci_address(v)))]


def _mac(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", value):
        raise ValueError(f"{value!r} is not a MAC address like 00:50:56:9a:60:e7")
    if int(value[:2], 16) & 1:
        raise ValueError(f"{value!r} is a multicast address; a NIC needs a unicast MAC")
    return value.lower()


Mac = Annotated[str, AfterValidator(_mac)]


def _uuid(value: str) -> str:
    try:
        return str(uuidlib.UUID(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a UUID like 564d1234-5678-9abc-def0-123456789abc") from None


Uuid = Annotated[str, AfterValidator(_uuid)]


def _uuid_bios(value: str) -> str:
    from guestcompat.profiles.identity import parse_uuid_bios  # identity imports this module

    parse_uuid_bios(value)
    return value.strip().lower()


class SmbiosBios(Frozen):
    """SMBIOS type 0."""

    vendor: Text | None = None
    version: Text | None = None
    date: Annotated[str, Field(pattern=r"^\d{2}/\d{2}/\d{4}$")] | None = None
    release: Annotated[str, Field(pattern=r"^\d+\.\d+$")] | None = None


class SmbiosSystem(Frozen):
    """SMBIOS type 1. ``uuid`` is the UUID as the guest displays it (product_uuid)."""

    manufacturer: Text | None = None
    product: Text | None = None
    version: Text | None = None
    serial: Text | None = None
    uuid: Uuid | None = None
    uuid_bios: Annotated[str, AfterValidator(_uuid_bios)] | None = Field(
        default=None, description="VMware's uuid.bios ('42 1e … 2e-7f … 3f'); serial and uuid derive from it "
                                  "(profiles/identity.py) unless stated")
    sku: Text | None = None
    family: Text | None = None


class SmbiosBaseboard(Frozen):
    """SMBIOS type 2."""

    manufacturer: Text | None = None
    product: Text | None = None
    version: Text | None = None
    serial: Text | None = None
    asset: Text | None = None


class SmbiosProcessor(Frozen):
    """SMBIOS type 4 (one per socket). VMware: GenuineIntel, the host's brand, sockets 'CPU #000'."""

    manufacturer: Text | None = None
    version: Text | None = None
    socket: Text | None = Field(default=None, description="designation of the first socket, e.g. 'CPU #000'")
    max_speed_mhz: Annotated[int, Field(ge=1, le=65535)] | None = None


class SmbiosMemory(Frozen):
    """SMBIOS type 17 (one per memory device)."""

    manufacturer: Text | None = None
    locator: Text | None = Field(default=None, description="locator of the first device, e.g. 'RAM slot #0'")


class SmbiosChassis(Frozen):
    """SMBIOS type 3."""

    manufacturer: Text | None = None
    version: Text | None = None
    serial: Text | None = None
    asset: Text | None = None


class Smbios(Frozen):
    version: Annotated[str, Field(pattern=r"^\d+\.\d+$")] | None = Field(
        default=None, description="SMBIOS version the source firmware presents (e.g. '2.4')")
    bios: SmbiosBios = SmbiosBios()
    system: SmbiosSystem = SmbiosSystem()
    baseboard: SmbiosBaseboard = SmbiosBaseboard()
    chassis: SmbiosChassis = SmbiosChassis()
    processor: SmbiosProcessor = SmbiosProcessor()
    memory: SmbiosMemory = SmbiosMemory()
    oem_strings: tuple[Text, ...] = ()


class Cpu(Frozen):
    """What CPUID tells the guest about the hypervisor."""

    hypervisor_bit: bool = True
    hypervisor_signature: Annotated[str, Field(max_length=12)] | None = None
    count: Annotated[int, Field(ge=1, le=64)] = 1
    vendor: Literal["GenuineIntel", "AuthenticAMD"] | None = Field(
        default=None, description="CPUID vendor string (VMware passes the host's through)")
    model_id: Annotated[Text, Field(max_length=47)] | None = Field(
        default=None, description="CPU brand string, /proc/cpuinfo 'model name' (VMware: the host CPU's)")
    tsc_khz: Annotated[int, Field(ge=1000, le=100_000_000)] | None = Field(
        default=None, description="TSC frequency the hypervisor reports (VMware: backdoor GETHZ, CPUID 0x40000010)")


class Detection(Frozen):
    """What the guest's own detection tools conclude on the source platform."""

    systemd_detect_virt: Text | None = None
    virt_what: tuple[Text, ...] | None = None
    vmware_checkvm: bool | None = Field(
        default=None, description="open-vm-tools' vmware-checkvm succeeds for an unprivileged process")


class Backdoor(Frozen):
    """The VMware hypervisor backdoor (I/O port 0x5658)."""

    enabled: bool = False
    version: Annotated[int, Field(ge=0, le=0xFFFFFFFF)] = 6
    type: Literal["express", "esx", "server", "workstation", "ace"] = "esx"


#: guestinfo bounds: what the patched vmport stores (keys 256 B, values 128 KiB, 2 MiB in all) and what the
#: kernel command line can announce to the probe (guestcompat.guestinfo=K1,K2,...: 16 keys of 64 bytes).
GUESTINFO_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
GUESTINFO_MAX_KEYS = 16
GUESTINFO_MAX_VALUE = 128 * 1024
GUESTINFO_MAX_TOTAL = 1024 * 1024


def check_guestinfo(table: dict[str, str]) -> dict[str, str]:
    """Keys as vmware-rpctool spells them after ``guestinfo.`` (``metadata``, ``gc.x``), values text
    without NUL; bounded so the store and the kernel command line that names the keys both fit."""
    if len(table) > GUESTINFO_MAX_KEYS:
        raise ValueError(f"{len(table)} guestinfo keys; at most {GUESTINFO_MAX_KEYS}")
    total = 0
    for key, value in table.items():
        if not GUESTINFO_KEY.fullmatch(key):
            raise ValueError(f"guestinfo key {key[:80]!r}: letters, digits, '.', '_', '-', at most 64, "
                             f"without the 'guestinfo.' prefix")
        if "\0" in value:
            raise ValueError(f"guestinfo.{key}: the value contains a NUL byte")
        size = len(value.encode())
        if size > GUESTINFO_MAX_VALUE:
            raise ValueError(f"guestinfo.{key}: {size} bytes; at most {GUESTINFO_MAX_VALUE}")
        total += size + len(key)
    if total > GUESTINFO_MAX_TOTAL:
        raise ValueError(f"guestinfo: {total} bytes in all; at most {GUESTINFO_MAX_TOTAL}")
    return table


class Platform(Frozen):
    arch: str | None = Field(
        default=None, description="Architecture the hardware belongs to (ppc64); None = any. "
                                  "The CLI uses it when --arch is not given.")
    vendor: Text | None = None
    hardware_version: Annotated[int, Field(ge=3, le=99)] | None = Field(
        default=None, description="VMware virtualHW.version (3: ESX 2, 4: Workstation 4 ... 21: vSphere 8U2)")
    firmware: Literal["bios", "efi", "vof", "slof"] | None = Field(
        default=None, description="Boot firmware; None = the architecture's default (x86: SeaBIOS, ppc64: VOF).")
    memory_mb: Annotated[int, Field(ge=128, le=1 << 20)] = 512
    pci_hole_start_mb: Annotated[int, Field(ge=128, le=4032)] | None = Field(
        default=None, description="VMware pciHole.start: where RAM below 4 GiB ends and the 32-bit PCI (MMIO) "
                                  "hole begins, in MiB; None = VMware's default, 3072 (RAM below 4 GiB ends at "
                                  "0xc0000000 when the VM has more)")
    kernel_hypervisor: Text | None = Field(
        default=None, description='What a Linux guest logs as "Hypervisor detected: X".')
    migratable: bool | None = Field(
        default=None, description="the VM must be live-migratable (a device QEMU cannot migrate blocks the run)")
    kernel_platform: Text | None = Field(
        default=None, description='powerpc: the platform a Linux guest names at the end of its "Hardware name:" line.')


class Bridge(Frozen):
    """A PCI-PCI bridge or PCIe root port as the guest sees it.

    ``functions`` > 1 expands to that many functions at the same device
    (VMware's ``pcieRootPort`` with ``functions = "8"``); function f then has
    ``slot_number + f`` and ``secondary_bus + f``.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
    kind: str
    address: Address
    functions: Annotated[int, Field(ge=1, le=8)] = 1
    secondary_bus: Annotated[int, Field(ge=1, le=255)] | None = None
    slot_number: Annotated[int, Field(ge=0, le=8191)] | None = Field(
        default=None, description="PCIe physical slot number (Slot Capabilities PSN) of the port.")
    child_slot_base: Annotated[int, Field(ge=0, le=8191)] | None = Field(
        default=None, description="Conventional bridge: the device dd behind it has slot base + dd (ACPI _SUN).")
    substitute: Substitute | None = None


class Substitute(Frozen):
    """What QEMU presents instead of a device it cannot model with the same ids."""

    kind: str | None = Field(default=None, description="catalogue kind to use instead; none = omit")
    address: Address | None = Field(default=None, description="where the substitute goes when the original address is taken")
    reason: Reason


class Device(Frozen):
    """A PCI function with a driver: NIC, storage controller, display."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
    kind: str
    address: Address
    physical_slot: Annotated[int, Field(ge=0, le=8191)] | None = None
    mac: Mac | None = None
    substitute: Substitute | None = None
    placement: Literal["read", "predicted"] | None = Field(
        default=None, description="how the address is known: read from the source (the default), or predicted "
                                  "by VMware's first power-on rule for a descriptor without pciSlotNumber "
                                  "(profiles/catalog/vmware-placement.toml); a predicted one is reported apart")
    placement_basis: Reason | None = Field(default=None, description="the rule a predicted placement follows")

    @model_validator(mode="after")
    def _basis_with_prediction(self) -> "Device":
        if (self.placement == "predicted") != (self.placement_basis is not None):
            raise ValueError("placement = \"predicted\" and placement_basis go together")
        return self


class DiskLimits(Frozen):
    """Disk QoS as vSphere sets it (bytes/s and I/O operations/s); QEMU throttle groups enforce it."""

    bps_read: Annotated[int, Field(ge=4096)] | None = None
    bps_write: Annotated[int, Field(ge=4096)] | None = None
    bps_total: Annotated[int, Field(ge=4096)] | None = None
    iops_read: Annotated[int, Field(ge=1)] | None = None
    iops_write: Annotated[int, Field(ge=1)] | None = None
    iops_total: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _total_excludes_read_write(self) -> "DiskLimits":
        for unit in ("bps", "iops"):
            total = getattr(self, f"{unit}_total")
            split = [f"{unit}_{op}" for op in ("read", "write") if getattr(self, f"{unit}_{op}") is not None]
            if total is not None and split:
                raise ValueError(f"{unit}_total cannot be combined with {', '.join(split)} (QEMU rejects it)")
        return self

    def items(self) -> list[tuple[str, int]]:
        """(metric, limit) for every limit that is set, e.g. ("bps_read", 10485760)."""
        return [(name, value) for name, value in self if value is not None]
class VioDevice(Frozen):
    """A PAPR virtual I/O device (pseries): a device-tree node under /vdevice at unit address ``reg``."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
    kind: str
    reg: Annotated[int, Field(ge=0, le=0xFFFFFFFF)] = Field(
        description="Unit address (the `reg` property; the node is name@reg), e.g. 0x71000010.")
    mac: Mac | None = None


class Vio(Frozen):
    devices: tuple[VioDevice, ...] = ()


class DeviceTree(Frozen):
    """Platform identity on device-tree machines (pseries): root properties the guest reads."""

    host_model: Text | None = Field(default=None, description="/proc/device-tree/host-model")
    host_serial: Text | None = Field(default=None, description="/proc/device-tree/host-serial")
    uuid: Uuid | None = Field(default=None, description="/proc/device-tree/system-id and vm,uuid")

    @property
    def stated(self) -> bool:
        return any(v is not None for v in (self.host_model, self.host_serial, self.uuid))


class Disk(Frozen):
    """A disk or CD-ROM drive on a storage controller. ``image`` empty = a blank disk of ``size_mb``
    (an empty drive for a CD-ROM).

    ``unit`` is where VMware hangs it: the SCSI id (``scsi0:3``), the SATA port (``sata0:3``), the
    IDE position channel·2 + master/slave (``ide1:0`` = 2) or the NVMe namespace (``nvme0:0``, nsid 1).
    The strings are what the device reports (SCSI INQUIRY, ATA IDENTIFY, NVMe identify): how long
    each may be depends on the bus, and the compiler checks them against it (devices.toml
    ``disk_buses.*.limits``)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
    controller: str
    unit: Annotated[int, Field(ge=0, le=63)] = 0
    media: Literal["disk", "cdrom"] = "disk"
    size_mb: Annotated[int, Field(ge=1, le=1 << 24)] = 1024
    image: ImagePath | None = Field(
        default=None, description="disk image file attached read-only (.qcow2, .vmdk, .raw, .img, .iso)")
    vendor: Annotated[Text, Field(max_length=8)] | None = None
    model: Annotated[Text, Field(max_length=40)] | None = None
    revision: Annotated[Text, Field(max_length=8)] | None = None
    serial: Annotated[Text, Field(max_length=20)] | None = None
    limits: DiskLimits | None = None


class Guest(Frozen):
    """The operating system the guest runs (an entry of profiles/catalog/os/)."""

    os: str | None = Field(default=None, description="guest-OS catalogue entry, e.g. debian-12, windows-2019")


class Pci(Frozen):
    bridges: tuple[Bridge, ...] = ()
    devices: tuple[Device, ...] = ()


class Profile(Frozen):
    """A resolved profile (after ``extends`` merging)."""

    name: str
    description: Text = ""
    abstract: bool = False
    lineage: tuple[str, ...] = ()
    platform: Platform = Platform()
    cpu: Cpu = Cpu()
    detection: Detection = Detection()
    backdoor: Backdoor = Backdoor()
    smbios: Smbios = Smbios()
    pci: Pci = Pci()
    vio: Vio = Vio()
    devicetree: DeviceTree = DeviceTree()
    guest: Guest = Guest()
    disks: tuple[Disk, ...] = ()
    limits: DiskLimits | None = Field(
        default=None, description="VM-wide I/O limits: one budget shared by all the VM's disks (as vSphere's per-VM "
                                  "storage I/O limits), enforced by one QEMU throttle group")
    guestinfo: Annotated[dict[str, str], AfterValidator(check_guestinfo)] = Field(
        default_factory=dict, description="VMware guestinfo keys (without 'guestinfo.') the hypervisor holds for "
                                          "the guest: what vmware-rpctool 'info-get guestinfo.KEY' answers")

    @model_validator(mode="after")
    def _names_unique_and_disks_attached(self) -> "Profile":
        seen: dict[str, str] = {}
        for section, items in (("pci.bridges", self.pci.bridges), ("pci.devices", self.pci.devices),
                               ("vio.devices", self.vio.devices), ("disks", self.disks)):
            for item in items:
                if item.name in seen:
                    raise ValueError(f"name {item.name!r} is used twice ({seen[item.name]} and {section})")
                seen[item.name] = section
        device_names = {d.name for d in self.pci.devices} | {d.name for d in self.vio.devices}
        for disk in self.disks:
            if disk.controller not in device_names:
                raise ValueError(f"disk {disk.name!r} names controller {disk.controller!r}, "
                                 f"which is not a device of this profile (have: {', '.join(sorted(device_names)) or 'none'})")
        return self


Bridge.model_rebuild()
Device.model_rebuild()
