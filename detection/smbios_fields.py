"""The SMBIOS key table: one field, every name it goes by.

A profile's ``[smbios.system] manufacturer`` is QEMU's ``-smbios type=1,manufacturer=``,
libvirt's ``<sysinfo><system><entry name="manufacturer">``, the guest's
``/sys/class/dmi/id/sys_vendor`` and dmidecode's ``Manufacturer:`` line of a type 1
structure. The compiler (emulation/arches/x86_64.py), the libvirt renderer
(emulation/libvirt_xml.py), the observer (harness/observe.py) and the detector
models (detection/models.py) all read this one table, so a field added here is
set, rendered, read back and compared in the same spelling everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SmbiosField:
    """One field of one SMBIOS structure, by each consumer's name (None = that side has no name for it)."""

    field: str
    """The profile's field in ``[smbios.<section>]``."""
    qemu_key: str | None
    """Key of QEMU's ``-smbios type=N,...``; None = set another way (``-uuid``) or not settable."""
    sysfs: str | None
    """File in the guest's ``/sys/class/dmi/id`` (Linux exports types 0-3 only); it names the
    selector (``dmi.<file>``). Without one the selector is ``smbios.<section>.<field>``."""
    dmidecode: str | None
    """Label of the field in ``dmidecode`` output."""
    designation: str | None = None
    """For numbered designations (socket, locator): QEMU sets only a prefix (``qemu_key`` is its
    prefix key) and numbers the instances itself; the value is the machine catalogue's
    ``smbios_designations`` format key."""


@dataclass(frozen=True)
class SmbiosSection:
    """One structure type as the profile's ``[smbios.<section>]`` table states it."""

    section: str
    type: int
    libvirt: str | None
    """libvirt ``<sysinfo>`` child element; None = libvirt has none (the option is passed through)."""
    fields: tuple[SmbiosField, ...]

    def field(self, name: str) -> SmbiosField:
        return next(f for f in self.fields if f.field == name)


F = SmbiosField
SECTIONS: tuple[SmbiosSection, ...] = (
    SmbiosSection("bios", 0, "bios", (
        F("vendor", "vendor", "bios_vendor", "Vendor"),
        F("version", "version", "bios_version", "Version"),
        F("date", "date", "bios_date", "Release Date"),
        F("release", "release", None, "BIOS Revision"))),
    SmbiosSection("system", 1, "system", (
        F("manufacturer", "manufacturer", "sys_vendor", "Manufacturer"),
        F("product", "product", "product_name", "Product Name"),
        F("version", "version", "product_version", "Version"),
        F("serial", "serial", "product_serial", "Serial Number"),
        F("uuid", None, "product_uuid", "UUID"),
        F("sku", "sku", "product_sku", "SKU Number"),
        F("family", "family", "product_family", "Family"))),
    SmbiosSection("baseboard", 2, "baseBoard", (
        F("manufacturer", "manufacturer", "board_vendor", "Manufacturer"),
        F("product", "product", "board_name", "Product Name"),
        F("version", "version", "board_version", "Version"),
        F("serial", "serial", "board_serial", "Serial Number"),
        F("asset", "asset", "board_asset_tag", "Asset Tag"))),
    SmbiosSection("chassis", 3, "chassis", (
        F("manufacturer", "manufacturer", "chassis_vendor", "Manufacturer"),
        F("version", "version", "chassis_version", "Version"),
        F("serial", "serial", "chassis_serial", "Serial Number"),
        F("asset", "asset", "chassis_asset_tag", "Asset Tag"))),
    # Linux exports no type 4 or 17 in /sys/class/dmi/id: read back through the guest's dmidecode.
    SmbiosSection("processor", 4, None, (
        F("manufacturer", "manufacturer", None, "Manufacturer"),
        F("version", "version", None, "Version"),
        F("max_speed_mhz", "max-speed", None, "Max Speed"),
        F("socket", "sock_pfx", None, "Socket Designation", designation="socket"))),
    SmbiosSection("memory", 17, None, (
        F("manufacturer", "manufacturer", None, "Manufacturer"),
        F("locator", "loc_pfx", None, "Locator", designation="memory"))),
)
del F

BY_SECTION: dict[str, SmbiosSection] = {s.section: s for s in SECTIONS}
BY_TYPE: dict[int, SmbiosSection] = {s.type: s for s in SECTIONS}
#: ``/sys/class/dmi/id`` file -> (SMBIOS type, dmidecode label), for reading captures without sysfs.
SYSFS_TO_DMIDECODE: dict[str, tuple[int, str]] = {
    f.sysfs: (s.type, f.dmidecode) for s in SECTIONS for f in s.fields if f.sysfs and f.dmidecode}
