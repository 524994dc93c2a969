"""The device catalogue: ids per device kind, and how QEMU presents each kind.

Device facts live in ``profiles/catalog/*.toml`` (data, reviewable in a diff),
never in Python; this module only loads and validates them.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources
from typing import Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError, model_validator

from guestcompat.errors import ProfileError
from guestcompat.profiles.model import Address, Frozen

ModelT = TypeVar("ModelT", bound=BaseModel)

Role = Literal["nic", "storage", "display", "bridge", "root-port", "chipset"]


class PciIds(Frozen):
    """The identity a PCI function shows in config space."""

    vendor: int
    device: int
    subsystem_vendor: int | None = None
    subsystem_device: int | None = None
    revision: int | None = None
    class_code: int | None = None

    def overlaid(self, other: "PciIdsOverride") -> "PciIds":
        """These ids with the fields ``other`` sets replaced."""
        return self.model_copy(update=other.model_dump(exclude_none=True))

    def modalias(self) -> str:
        """The ``pci:`` modalias the guest kernel matches drivers against."""
        cls = self.class_code or 0
        return ("pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X" % (
            self.vendor, self.device, self.subsystem_vendor or 0, self.subsystem_device or 0,
            (cls >> 16) & 0xFF, (cls >> 8) & 0xFF, cls & 0xFF))


class PciIdsOverride(Frozen):
    vendor: int | None = None
    device: int | None = None
    subsystem_vendor: int | None = None
    subsystem_device: int | None = None
    revision: int | None = None
    class_code: int | None = None


class QemuModel(Frozen):
    driver: str
    ids: PciIdsOverride = PciIdsOverride()
    reason: str | None = None
    properties: dict[str, str | int | bool] = Field(
        default_factory=dict, description="QEMU device properties that make the model present these ids")
    disks_absent: str | None = Field(
        default=None, description="why the guest sees no disk on this controller under QEMU (measured); "
                                  "the compiler reports its disks as unsupported")
    ids_settable: bool = Field(
        default=False, description="the QEMU model drives like the real device and only its ids differ: on a "
                                   "build whose driver has the identity properties (qemu.toml [identity], "
                                   "patches/qemu-7.2 0001) the compiler sets the real ids")
    audio: bool = Field(
        default=False, description="the model plays sound: the compiler gives it a silent audio backend of its "
                                   "own (-audiodev none), so no host sound system is touched")
    needs_identity: bool = Field(
        default=False, description="the driver stands for this kind only with the real ids set: on a build "
                                   "without the identity properties the kind is not presentable and the "
                                   "profile's substitute applies")
    disks_absent_lifted_by: dict[str, str | int | bool] = Field(
        default_factory=dict, description="device properties that lift `disks_absent` on a build whose driver "
                                          "has every one of them (asked of the binary, never its name): the "
                                          "compiler then sets them and expects the disks")
    controller_serial: bool = Field(
        default=False, description="the controller itself carries its disks' serial number (QEMU's nvme needs "
                                   "`serial`): the compiler gives it the one of its first disk (or VMware's)")


class VioNode(Frozen):
    """How a PAPR virtual I/O device shows in the device tree (/vdevice/<name>@<reg>)."""

    name: str
    device_type: str
    compatible: str

    def modalias(self) -> str:
        """The ``vio:`` modalias Linux matches drivers against (``vio:T<type>S<compatible>``)."""
        return f"vio:T{self.device_type}S{self.compatible}"


class Nearest(Frozen):
    """For a kind QEMU has no model of, or only some builds have (``qemu.driver`` guestcompat's
    series adds): the presentable kind closest to it (same class, same bus role), which an imported
    profile uses as its substitute on a build without the model, with the reason the report gives."""

    kind: str
    reason: str = Field(min_length=1)


class DeviceKind(Frozen):
    """A device kind: a PCI function (``ids``) or a PAPR VIO device (``vio``), exactly one of them."""

    name: str = ""
    summary: str
    role: Role
    ids: PciIds | None = None
    vio: VioNode | None = None
    guest_driver: str | None = None
    disk_bus: str | None = None
    qemu: QemuModel | None = None
    nearest: Nearest | None = None

    @model_validator(mode="after")
    def _one_bus(self) -> "DeviceKind":
        if (self.ids is None) == (self.vio is None):
            raise ValueError("a device kind states either PCI `ids` or a `vio` node, exactly one")
        return self

    @property
    def bus(self) -> str:
        return "vio" if self.vio is not None else "pci"

    @property
    def presentable(self) -> bool:
        return self.qemu is not None

    def presented_ids(self) -> PciIds:
        """The ids the guest reads when QEMU shows this kind (a machine's own functions: their ids)."""
        if self.ids is None:
            raise ProfileError(f"device kind {self.name!r} is a VIO device; it has no PCI ids")
        return self.ids if self.qemu is None else self.ids.overlaid(self.qemu.ids)


DiskView = Literal["scsi", "ata", "nvme"]


class DiskStrings(Frozen):
    """A disk's identity strings as the device reports them (SCSI INQUIRY, ATA IDENTIFY, NVMe identify)."""

    vendor: str | None = None
    model: str | None = None
    revision: str | None = None
    serial: str | None = None


class DiskBus(Frozen):
    """How disks hang on one kind of controller bus, in QEMU and as the guest reads them
    (devices.toml ``[disk_buses.*]`` says what each key means)."""

    qemu_device: str
    cdrom_device: str | None = None
    bus: str = "{controller}.0"
    unit_properties: dict[str, str] = Field(default_factory=dict)
    units: int = Field(default=16, ge=1, le=64)
    qemu_units: int | None = Field(default=None, ge=1, le=64)
    reserved_units: dict[int, str] = Field(default_factory=dict)
    machine: bool = False
    read_only_disks: bool = True
    """QEMU's disk device takes a read-only node (ide-hd does not: an image is then opened through
    a throwaway overlay, ``-drive …,snapshot=on``, and stays untouched all the same)."""
    identity: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, int] = Field(default_factory=dict)
    view: DiskView = "scsi"
    modaliases: tuple[str, ...] = ()
    cdrom_modaliases: tuple[str, ...] = ("scsi:t-0x05",)
    """The guest's CD-ROM driver (sr_mod) on buses whose drives are SCSI devices."""
    guest_driver: str | None = None
    vmware: DiskStrings = DiskStrings()
    vmware_cdrom: DiskStrings | None = None
    qemu_fixed: DiskStrings | None = None
    """Strings QEMU's disk answers whatever its properties ("<unknown>": it answers something of its own)."""
    qemu_fixed_reason: str | None = None
    qemu_cdrom: DiskStrings | None = None
    """What QEMU's CD-ROM drive on this bus answers to INQUIRY whatever its properties."""
    qemu_cdrom_reason: str | None = None

    def qemu_unit_limit(self) -> int:
        return self.qemu_units or self.units


class FixedFunction(Frozen):
    address: Address
    kind: str


class LayoutFunction(Frozen):
    """A machine function a layout moves and re-identifies."""

    address: Address
    kind: str
    """The catalogue kind the guest sees (the real hardware's)."""
    qemu_type: str
    """QOM type of the function the machine creates (``-global <type>.x-id-…``)."""
    native: str
    """The catalogue kind with the ids this QEMU function has by itself."""


class MachineLayout(Frozen):
    """Another arrangement of a machine's own functions, offered by builds with ``machine_options``.

    It is used when the profile asks for exactly these kinds at these addresses, the firmware is
    one of ``firmware`` (and the firmware build has what ``firmware_needs`` names for it) and the
    binary has the machine options and the identity properties on every ``qemu_type``: the
    functions then replace the machine's ``fixed`` ones."""

    name: str
    machine_options: dict[str, str | int | bool]
    firmware: tuple[str, ...]
    firmware_reason: str
    """Why other firmware keeps the machine's own layout."""
    firmware_needs: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="firmware → capabilities its build must list (an OVMF build's manifest) for this layout")
    functions: tuple[LayoutFunction, ...]


class FixedVio(Frozen):
    reg: int
    kind: str


class Machine(Frozen):
    root_bus: str
    fixed: tuple[FixedFunction, ...] = ()
    smbios_version: str | None = None
    smbios_designations: dict[str, str] = Field(
        default_factory=dict, description="how QEMU numbers SMBIOS designations: str.format with prefix, n")
    vio: bool = False
    """The machine has a PAPR VIO bus (profiles may state ``[[vio.devices]]``)."""
    vio_fixed: tuple[FixedVio, ...] = ()
    """VIO devices the machine creates by itself (pseries: vty, nvram)."""
    physical_slot_reason: str = "this machine type's slot numbers are not predicted"
    layouts: tuple[MachineLayout, ...] = ()
    """Why the guest's PCI physical slot numbers cannot be predicted on this machine."""


class Catalog(Frozen):
    kinds: dict[str, DeviceKind]
    disk_buses: dict[str, DiskBus] = Field(default_factory=dict)
    machines: dict[str, Machine] = Field(default_factory=dict)

    def kind(self, name: str, where: str) -> DeviceKind:
        """The kind called ``name``; ``where`` names the profile key for the error."""
        try:
            return self.kinds[name]
        except KeyError:
            raise ProfileError(f"{where}: unknown device kind {name!r}; known kinds: "
                               f"{', '.join(sorted(self.kinds))}") from None

    def machine(self, name: str) -> Machine:
        try:
            return self.machines[name]
        except KeyError:
            raise ProfileError(f"unknown machine type {name!r}; known: {', '.join(sorted(self.machines))}") from None


def _read(name: str) -> dict:
    data = resources.files("guestcompat.profiles").joinpath("catalog", name).read_text()
    return tomllib.loads(data)


def load_catalog_file(name: str, model: type[ModelT]) -> ModelT:
    """Read and validate one bundled data file under profiles/catalog/ (blocked.toml, interfaces.toml):
    a broken file is a ProfileError naming it, never a pydantic traceback."""
    try:
        return model.model_validate(_read(name))
    except ValidationError as exc:
        raise ProfileError(f"profiles/catalog/{name} is invalid:\n{exc}") from None


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """Load and validate the bundled catalogue (cached: it is read-only data)."""
    raw = _read("devices.toml") | _read("machines.toml")
    for name, kind in raw.get("kinds", {}).items():
        kind["name"] = name
    try:
        catalog = Catalog.model_validate(raw)
    except ValidationError as exc:
        raise ProfileError(f"the bundled device catalogue is invalid:\n{exc}") from None
    for kind_name, kind in catalog.kinds.items():
        if kind.nearest is not None:
            where = f"kinds.{kind_name}.nearest"
            nearest = catalog.kind(kind.nearest.kind, f"{where}.kind")
            if kind.qemu is not None and kind.qemu.driver == (nearest.qemu.driver if nearest.qemu else None):
                raise ProfileError(f"the bundled device catalogue: {where}: the nearest kind is presented by "
                                   f"the kind's own driver")
            if not nearest.presentable:
                raise ProfileError(f"the bundled device catalogue: {where}.kind: "
                                   f"{kind.nearest.kind!r} has no QEMU model either")
    for machine_name, machine in catalog.machines.items():
        for fixed in machine.fixed:
            catalog.kind(fixed.kind, f"machines.{machine_name}.fixed[{fixed.address}]")
        for layout in machine.layouts:
            for firmware in layout.firmware_needs:
                if firmware not in layout.firmware:
                    raise ProfileError(f"the bundled device catalogue: machines.{machine_name}.layouts"
                                       f"[{layout.name}].firmware_needs: {firmware!r} is not one of its firmware "
                                       f"({', '.join(layout.firmware)})")
            for function in layout.functions:
                where = f"machines.{machine_name}.layouts[{layout.name}]"
                catalog.kind(function.kind, where)
                catalog.kind(function.native, where)
        for vio in machine.vio_fixed:
            catalog.kind(vio.kind, f"machines.{machine_name}.vio_fixed[{vio.reg:#x}]")
    return catalog
