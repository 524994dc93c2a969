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

import re
import uuid as uuidlib
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from guestcompat.bridges.address import PciAddress


class Frozen(BaseModel):
    """Base for every profile section: immutable, strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _printable(value: str) -> str:
    """Reject control characters: SMBIOS, SCSI and QEMU strings cannot carry them."""
    for ch in value:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise ValueError(f"contains the control character {ch!r}; guest-visible strings must be printable")
    return value


Text = Annotated[str, AfterValidator(_printable)]


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


class Platform(Frozen):
    arch: str | None = Field(
        default=None, description="Architecture the hardware belongs to (ppc64); None = any. "
                                  "The CLI uses it when --arch is not given.")
    vendor: Text | None = None
    hardware_version: int | None = None
    firmware: Literal["bios", "efi", "vof", "slof"] | None = Field(
        default=None, description="Boot firmware; None = the architecture's default (x86: SeaBIOS, ppc64: VOF).")
    memory_mb: Annotated[int, Field(ge=128, le=1 << 20)] = 512
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
    reason: Text


class Device(Frozen):
    """A PCI function with a driver: NIC, storage controller, display."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
    kind: str
    address: Address
    physical_slot: Annotated[int, Field(ge=0, le=8191)] | None = None
    mac: Mac | None = None
    substitute: Substitute | None = None


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
    """A disk on a storage controller. ``image`` empty = a blank disk of ``size_mb``."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
    controller: str
    unit: Annotated[int, Field(ge=0, le=15)] = 0
    size_mb: Annotated[int, Field(ge=1, le=1 << 24)] = 1024
    image: str | None = None
    vendor: Annotated[Text, Field(max_length=8)] | None = None
    model: Annotated[Text, Field(max_length=16)] | None = None
    revision: Annotated[Text, Field(max_length=4)] | None = None
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
