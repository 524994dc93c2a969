"""Decode the raw SMBIOS the guest saw (entry point + structure table).

``/sys/class/dmi/id`` shows only what Linux chose to export, and already
interpreted (e.g. the UUID byte order).  Detectors such as dmidecode,
virt-what or Windows read the structures themselves, so the fingerprint keeps
the raw table and decodes it here, with dmidecode's field names and its rules
for the version-dependent parts (UUID byte order, optional trailing fields).

Layout follows the DMTF SMBIOS specification (DSP0134): every structure is a
formatted area (``type``, ``length``, ``handle``, fields) followed by a set of
NUL-terminated strings that ends with an extra NUL (``\\0\\0`` if there are
none).  Fields are read only when the structure's ``length`` covers them, as
dmidecode does.  Anything that does not parse raises ProbeError with the byte
offset: the table comes from the guest and may be garbage.

The small encoder at the end builds tables for tests (and for firmware blobs
later, e.g. QEMU's ``-smbios file=``).
"""

from __future__ import annotations

import io
import struct as _pystruct
from dataclasses import dataclass

import construct as cs

from guestcompat.errors import ProbeError

# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------

_EP32 = cs.Struct(
    "anchor" / cs.Const(b"_SM_"),
    "checksum" / cs.Int8ul,
    "length" / cs.Int8ul,
    "major" / cs.Int8ul,
    "minor" / cs.Int8ul,
    "max_structure_size" / cs.Int16ul,
    "revision" / cs.Int8ul,
    "formatted_area" / cs.Bytes(5),
    "intermediate_anchor" / cs.Const(b"_DMI_"),
    "intermediate_checksum" / cs.Int8ul,
    "table_length" / cs.Int16ul,
    "table_address" / cs.Int32ul,
    "structure_count" / cs.Int16ul,
    "bcd_revision" / cs.Int8ul,
)

_EP64 = cs.Struct(
    "anchor" / cs.Const(b"_SM3_"),
    "checksum" / cs.Int8ul,
    "length" / cs.Int8ul,
    "major" / cs.Int8ul,
    "minor" / cs.Int8ul,
    "docrev" / cs.Int8ul,
    "revision" / cs.Int8ul,
    "reserved" / cs.Int8ul,
    "table_max_size" / cs.Int32ul,
    "table_address" / cs.Int64ul,
)

_EP_LEGACY = cs.Struct(
    "anchor" / cs.Const(b"_DMI_"),
    "checksum" / cs.Int8ul,
    "table_length" / cs.Int16ul,
    "table_address" / cs.Int32ul,
    "structure_count" / cs.Int16ul,
    "bcd_revision" / cs.Int8ul,
)


@dataclass(frozen=True)
class EntryPoint:
    """The SMBIOS entry point: which version the table claims and where it lives."""

    anchor: str                     # "_SM_", "_SM3_" or legacy "_DMI_"
    major: int
    minor: int
    docrev: int
    table_address: int
    table_length: int               # _SM3_: maximum size
    structure_count: int | None     # not given by _SM3_
    checksum_ok: bool

    @property
    def version(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.docrev)

    @property
    def version_string(self) -> str:
        if self.anchor == "_SM3_":
            return f"{self.major}.{self.minor}.{self.docrev}"
        return f"{self.major}.{self.minor}"


def _sum_ok(data: bytes) -> bool:
    return sum(data) % 256 == 0


def _fix_version(major: int, minor: int) -> tuple[int, int]:
    # Some BIOSes report impossible versions; dmidecode and Linux both fix them up.
    if (major, minor) in ((2, 0x1F), (2, 0x21)):
        return 2, 3
    if (major, minor) == (2, 0x33):
        return 2, 6
    return major, minor


def decode_entry_point(data: bytes) -> EntryPoint:
    """Decode ``/sys/firmware/dmi/tables/smbios_entry_point``."""
    try:
        if data.startswith(b"_SM3_"):
            ep = _EP64.parse(data)
            length = max(ep.length, 0x18)
            return EntryPoint("_SM3_", ep.major, ep.minor, ep.docrev, ep.table_address,
                              ep.table_max_size, None, _sum_ok(data[:length]))
        if data.startswith(b"_SM_"):
            ep = _EP32.parse(data)
            major, minor = _fix_version(ep.major, ep.minor)
            ok = _sum_ok(data[:max(ep.length, 0x1E)]) and _sum_ok(data[0x10:0x1F])
            return EntryPoint("_SM_", major, minor, 0, ep.table_address, ep.table_length,
                              ep.structure_count, ok)
        if data.startswith(b"_DMI_"):
            ep = _EP_LEGACY.parse(data)
            bcd = ep.bcd_revision
            return EntryPoint("_DMI_", bcd >> 4, bcd & 0xF, 0, ep.table_address, ep.table_length,
                              ep.structure_count, _sum_ok(data[:15]))
    except cs.ConstructError as exc:
        raise ProbeError(f"SMBIOS entry point is truncated or malformed ({len(data)} bytes): {exc}") from None
    raise ProbeError(f"SMBIOS entry point has no known anchor: {data[:8]!r}")


# --------------------------------------------------------------------------
# Structure table
# --------------------------------------------------------------------------

_STRING_SET = cs.RepeatUntil(lambda obj, lst, ctx: obj == b"", cs.NullTerminated(cs.GreedyBytes))

_STRUCTURE = cs.Struct(
    "type" / cs.Int8ul,
    "length" / cs.Int8ul,
    "handle" / cs.Int16ul,
    "_check" / cs.Check(cs.this.length >= 4),
    "fields" / cs.Bytes(cs.this.length - 4),
    "strings" / _STRING_SET,
    # With no strings at all the set is "\0\0": the first NUL ended an empty
    # string, the second one is still in the stream.
    "_pad" / cs.If(lambda ctx: len(ctx.strings) == 1, cs.Const(b"\0")),
)


@dataclass(frozen=True)
class Structure:
    """One SMBIOS structure: the formatted area (header included) and its strings."""

    offset: int
    type: int
    handle: int
    data: bytes                     # formatted area, data[0] == type, len(data) == length
    strings: tuple[bytes, ...]

    @property
    def length(self) -> int:
        return len(self.data)

    def byte(self, off: int) -> int | None:
        return self.data[off] if off < len(self.data) else None

    def word(self, off: int) -> int | None:
        return _pystruct.unpack_from("<H", self.data, off)[0] if off + 2 <= len(self.data) else None

    def dword(self, off: int) -> int | None:
        return _pystruct.unpack_from("<I", self.data, off)[0] if off + 4 <= len(self.data) else None

    def qword(self, off: int) -> int | None:
        return _pystruct.unpack_from("<Q", self.data, off)[0] if off + 8 <= len(self.data) else None

    def string(self, index: int | None) -> str | None:
        """String number ``index`` (1-based) as dmidecode shows it; None for 0 ("Not Specified")."""
        if index is None or index == 0:
            return None
        if index > len(self.strings):
            return "<BAD INDEX>"
        return self.strings[index - 1].decode("utf-8", "backslashreplace")

    def string_at(self, off: int) -> str | None:
        """The string whose index is stored at formatted-area offset ``off``."""
        return self.string(self.byte(off))


def decode_table(table: bytes) -> tuple[Structure, ...]:
    """Split the structure table; stops after the End-of-Table structure (type 127)."""
    out: list[Structure] = []
    stream = io.BytesIO(table)
    pos = 0
    while pos + 4 <= len(table):
        try:
            s = _STRUCTURE.parse_stream(stream)
        except cs.ConstructError as exc:
            length = table[pos + 1]
            if length < 4:
                raise ProbeError(
                    f"SMBIOS structure at offset {pos:#x} (type {table[pos]}) has length {length} < 4"
                ) from None
            raise ProbeError(
                f"SMBIOS table truncated: structure at offset {pos:#x} (type {table[pos]}, "
                f"length {length}) runs past the end of the {len(table)}-byte table ({_first_line(exc)})"
            ) from None
        out.append(Structure(pos, s.type, s.handle, table[pos:pos + 4 + len(s.fields)],
                             tuple(s.strings[:-1])))
        pos = stream.tell()
        if s.type == 127:
            break
    return tuple(out)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


# --------------------------------------------------------------------------
# Typed views (dmidecode names and value spellings)
# --------------------------------------------------------------------------

_WAKE_UP = {0: "Reserved", 1: "Other", 2: "Unknown", 3: "APM Timer", 4: "Modem Ring",
            5: "LAN Remote", 6: "Power Switch", 7: "PCI PME#", 8: "AC Power Restored"}
_BOARD_TYPE = {1: "Unknown", 2: "Other", 3: "Server Blade", 4: "Connectivity Switch",
               5: "System Management Module", 6: "Processor Module", 7: "I/O Module",
               8: "Memory Module", 9: "Daughter Board", 10: "Motherboard",
               11: "Processor+Memory Module", 12: "Processor+I/O Module", 13: "Interconnect Board"}
_CHASSIS_TYPE = {1: "Other", 2: "Unknown", 3: "Desktop", 4: "Low Profile Desktop", 5: "Pizza Box",
                 6: "Mini Tower", 7: "Tower", 8: "Portable", 9: "Laptop", 10: "Notebook",
                 11: "Hand Held", 12: "Docking Station", 13: "All In One", 14: "Sub Notebook",
                 15: "Space-saving", 16: "Lunch Box", 17: "Main Server Chassis",
                 18: "Expansion Chassis", 19: "Sub Chassis", 20: "Bus Expansion Chassis",
                 21: "Peripheral Chassis", 22: "RAID Chassis", 23: "Rack Mount Chassis",
                 24: "Sealed-case PC", 25: "Multi-system", 26: "CompactPCI", 27: "AdvancedTCA",
                 28: "Blade", 29: "Blade Enclosing", 30: "Tablet", 31: "Convertible",
                 32: "Detachable", 33: "IoT Gateway", 34: "Embedded PC", 35: "Mini PC",
                 36: "Stick PC"}
_CHASSIS_STATE = {1: "Other", 2: "Unknown", 3: "Safe", 4: "Warning", 5: "Critical",
                  6: "Non-recoverable"}
_CHASSIS_SECURITY = {1: "Other", 2: "Unknown", 3: "None", 4: "External Interface Locked Out",
                     5: "External Interface Enabled"}


def _name(table: dict[int, str], code: int | None) -> str | None:
    if code is None:
        return None
    return table.get(code, "<OUT OF SPEC>")


@dataclass(frozen=True)
class BiosInfo:
    """Type 0."""

    vendor: str | None
    version: str | None
    release_date: str | None
    address: int | None             # 0 segment (UEFI) → None, as dmidecode omits it
    runtime_size: int | None        # bytes
    rom_size: int | None            # bytes
    characteristics: int | None
    characteristics_ext: tuple[int, ...]
    bios_revision: str | None       # "4.6"; None when absent or 0xFF
    firmware_revision: str | None


@dataclass(frozen=True)
class SystemInfo:
    """Type 1."""

    manufacturer: str | None
    product_name: str | None
    version: str | None
    serial_number: str | None
    uuid: str | None                # dmidecode spelling, incl. "Not Present"/"Not Settable"
    uuid_bytes: str | None          # the 16 raw bytes as hex, table order
    wake_up_type: str | None
    sku_number: str | None
    family: str | None


@dataclass(frozen=True)
class BaseboardInfo:
    """Type 2."""

    manufacturer: str | None
    product_name: str | None
    version: str | None
    serial_number: str | None
    asset_tag: str | None
    features: int | None
    location_in_chassis: str | None
    chassis_handle: int | None
    board_type: str | None


@dataclass(frozen=True)
class ChassisInfo:
    """Type 3."""

    manufacturer: str | None
    type: str | None
    lock: bool | None
    version: str | None
    serial_number: str | None
    asset_tag: str | None
    boot_up_state: str | None
    power_supply_state: str | None
    thermal_state: str | None
    security_status: str | None
    oem_information: int | None
    height: int | None              # rack units, 0 = unspecified
    number_of_power_cords: int | None
    sku_number: str | None


def format_uuid(raw: bytes, version: tuple[int, int] | None) -> str:
    """dmidecode's (3.4) UUID text.  SMBIOS >= 2.6 stores the first three fields
    little-endian, older tables in wire order; both are printed lower case, as
    Linux's product_uuid does.  ``version`` None means "assume a modern table"."""
    if raw == b"\xff" * 16:
        return "Not Present"
    if raw == b"\x00" * 16:
        return "Not Settable"
    if version is None or version >= (2, 6):
        order = (3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15)
    else:
        order = tuple(range(16))
    h = "".join(f"{raw[i]:02x}" for i in order)
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def bios_info(s: Structure) -> BiosInfo | None:
    if s.length < 0x12:
        return None
    seg = s.word(0x06)
    rom = s.byte(0x09)
    if rom is None:
        rom_size = None
    elif rom != 0xFF:
        rom_size = (rom + 1) * 64 * 1024
    else:
        ext = s.word(0x18)
        if ext is None:
            rom_size = 16 * 1024 * 1024
        else:
            unit = (ext >> 14) & 0x3
            rom_size = (ext & 0x3FFF) << (20 if unit == 0 else 30 if unit == 1 else 0)
    ext_chars = tuple(b for b in (s.byte(0x12), s.byte(0x13)) if b is not None)

    def rev(off: int) -> str | None:
        a, b = s.byte(off), s.byte(off + 1)
        if s.length < 0x18 or a is None or b is None or a == 0xFF or b == 0xFF:
            return None
        return f"{a}.{b}"

    return BiosInfo(
        vendor=s.string_at(0x04),
        version=s.string_at(0x05),
        release_date=s.string_at(0x08),
        address=(seg << 4) if seg else None,
        runtime_size=((0x10000 - seg) << 4) if seg else None,
        rom_size=rom_size,
        characteristics=s.qword(0x0A),
        characteristics_ext=ext_chars,
        bios_revision=rev(0x14),
        firmware_revision=rev(0x16),
    )


def system_info(s: Structure, version: tuple[int, int] | None) -> SystemInfo | None:
    if s.length < 0x08:
        return None
    raw = s.data[0x08:0x18] if s.length >= 0x19 else None
    return SystemInfo(
        manufacturer=s.string_at(0x04),
        product_name=s.string_at(0x05),
        version=s.string_at(0x06),
        serial_number=s.string_at(0x07),
        uuid=format_uuid(raw, version) if raw is not None else None,
        uuid_bytes=raw.hex() if raw is not None else None,
        wake_up_type=_name(_WAKE_UP, s.byte(0x18)) if s.length >= 0x19 else None,
        sku_number=s.string_at(0x19) if s.length >= 0x1B else None,
        family=s.string_at(0x1A) if s.length >= 0x1B else None,
    )


def baseboard_info(s: Structure) -> BaseboardInfo | None:
    if s.length < 0x08:
        return None
    full = s.length >= 0x0E
    return BaseboardInfo(
        manufacturer=s.string_at(0x04),
        product_name=s.string_at(0x05),
        version=s.string_at(0x06),
        serial_number=s.string_at(0x07),
        asset_tag=s.string_at(0x08) if s.length >= 0x09 else None,
        features=s.byte(0x09) if s.length >= 0x0A else None,
        location_in_chassis=s.string_at(0x0A) if full else None,
        chassis_handle=s.word(0x0B) if full else None,
        board_type=_name(_BOARD_TYPE, s.byte(0x0D)) if full else None,
    )


def chassis_info(s: Structure) -> ChassisInfo | None:
    if s.length < 0x09:
        return None
    t = s.byte(0x05)
    states = s.length >= 0x0D
    sku = None
    n, m = s.byte(0x13), s.byte(0x14)
    if s.length >= 0x15 and n is not None and m is not None and s.length >= 0x16 + n * m:
        sku = s.string_at(0x15 + n * m)
    return ChassisInfo(
        manufacturer=s.string_at(0x04),
        type=_name(_CHASSIS_TYPE, t & 0x7F) if t is not None else None,
        lock=bool(t & 0x80) if t is not None else None,
        version=s.string_at(0x06),
        serial_number=s.string_at(0x07),
        asset_tag=s.string_at(0x08),
        boot_up_state=_name(_CHASSIS_STATE, s.byte(0x09)) if states else None,
        power_supply_state=_name(_CHASSIS_STATE, s.byte(0x0A)) if states else None,
        thermal_state=_name(_CHASSIS_STATE, s.byte(0x0B)) if states else None,
        security_status=_name(_CHASSIS_SECURITY, s.byte(0x0C)) if states else None,
        oem_information=s.dword(0x0D) if s.length >= 0x11 else None,
        height=s.byte(0x11) if s.length >= 0x13 else None,
        number_of_power_cords=s.byte(0x12) if s.length >= 0x13 else None,
        sku_number=sku,
    )


def oem_strings(s: Structure) -> tuple[str, ...]:
    """Type 11: ``String 1`` .. ``String n``."""
    if s.length < 0x05:
        return ()
    return tuple(s.string(i) or "" for i in range(1, (s.byte(0x04) or 0) + 1))


@dataclass(frozen=True)
class StructureSummary:
    """Type, handle and length of one structure (the table's shape, for diffs)."""

    type: int
    handle: int
    length: int


@dataclass(frozen=True)
class SmbiosView:
    """What detectors read from SMBIOS, decoded; JSON-serialisable (jsonmodel)."""

    version: str | None             # from the entry point; None when it was not captured
    entry_point: str | None         # anchor
    entry_point_checksum_ok: bool | None
    structures: tuple[StructureSummary, ...]
    bios: BiosInfo | None
    system: SystemInfo | None
    baseboard: BaseboardInfo | None
    chassis: ChassisInfo | None
    oem_strings: tuple[str, ...]


@dataclass(frozen=True)
class SmbiosTable:
    """Decoded entry point (if captured) and structures; ``view()`` types them."""

    entry_point: EntryPoint | None
    structures: tuple[Structure, ...]

    def of_type(self, type_: int) -> tuple[Structure, ...]:
        return tuple(s for s in self.structures if s.type == type_)

    def first(self, type_: int) -> Structure | None:
        found = self.of_type(type_)
        return found[0] if found else None

    def view(self) -> SmbiosView:
        ep = self.entry_point
        version = (ep.major, ep.minor) if ep else None
        t0, t1, t2, t3 = (self.first(t) for t in (0, 1, 2, 3))
        oem: tuple[str, ...] = ()
        for s in self.of_type(11):
            oem += oem_strings(s)
        return SmbiosView(
            version=ep.version_string if ep else None,
            entry_point=ep.anchor if ep else None,
            entry_point_checksum_ok=ep.checksum_ok if ep else None,
            structures=tuple(StructureSummary(s.type, s.handle, s.length) for s in self.structures),
            bios=bios_info(t0) if t0 else None,
            system=system_info(t1, version) if t1 else None,
            baseboard=baseboard_info(t2) if t2 else None,
            chassis=chassis_info(t3) if t3 else None,
            oem_strings=oem,
        )


def decode(table: bytes, entry_point: bytes | None = None) -> SmbiosTable:
    """Decode the raw table (and entry point, which gives the version and the
    table size, so a table cut at a structure boundary is still caught)."""
    ep = decode_entry_point(entry_point) if entry_point else None
    structures = decode_table(table)
    if ep is not None:
        ended = bool(structures) and structures[-1].type == 127
        if ep.anchor != "_SM3_" and len(table) < ep.table_length:
            raise ProbeError(f"SMBIOS table truncated: the entry point announces {ep.table_length} bytes, "
                             f"got {len(table)}")
        if ep.anchor == "_SM3_" and not ended and len(table) < ep.table_length:
            raise ProbeError(f"SMBIOS table truncated: no End-of-Table structure in {len(table)} bytes "
                             f"(entry point allows {ep.table_length})")
        if ep.structure_count is not None and not ended and len(structures) < ep.structure_count:
            raise ProbeError(f"SMBIOS table truncated: the entry point announces {ep.structure_count} "
                             f"structures, found {len(structures)}")
    return SmbiosTable(ep, structures)


# --------------------------------------------------------------------------
# Encoder (tests, firmware blobs)
# --------------------------------------------------------------------------

def encode_structure(type_: int, handle: int, fields: bytes, strings: tuple[bytes | str, ...] = ()) -> bytes:
    """One structure: ``fields`` is the formatted area after the 4-byte header (built with the
    decoder's own layout, so what is encoded is what :func:`decode_table` reads)."""
    enc = [s.encode() if isinstance(s, str) else s for s in strings]
    for s in enc:
        if not s or b"\0" in s:
            raise ValueError("SMBIOS strings must be non-empty and contain no NUL")
    return _STRUCTURE.build(dict(type=type_, length=4 + len(fields), handle=handle, fields=fields,
                                 strings=[*enc, b""]))


def _checksummed(blob: bytes, at: int, span: slice) -> bytes:
    """``blob`` with the byte at ``at`` set so that the bytes of ``span`` sum to 0 (mod 256)."""
    out = bytearray(blob)
    out[at] = 0
    out[at] = (-sum(out[span])) % 256
    return bytes(out)


def encode_entry_point_32(table_length: int, structure_count: int, major: int = 2, minor: int = 8,
                          table_address: int = 0x20, max_structure_size: int = 0x100) -> bytes:
    """A valid 31-byte ``_SM_`` entry point (checksums computed)."""
    ep = _EP32.build(dict(checksum=0, length=0x1F, major=major, minor=minor, max_structure_size=max_structure_size,
                          revision=0, formatted_area=bytes(5), intermediate_checksum=0, table_length=table_length,
                          table_address=table_address, structure_count=structure_count,
                          bcd_revision=(major << 4) | (minor & 0xF)))
    ep = _checksummed(ep, 0x15, slice(0x10, 0x1F))  # the intermediate (_DMI_) checksum first: the outer covers it
    return _checksummed(ep, 0x04, slice(0, 0x1F))


def encode_entry_point_64(table_max_size: int, major: int = 3, minor: int = 0, docrev: int = 0,
                          table_address: int = 0x20) -> bytes:
    """A valid 24-byte ``_SM3_`` entry point."""
    ep = _EP64.build(dict(checksum=0, length=0x18, major=major, minor=minor, docrev=docrev, revision=1, reserved=0,
                          table_max_size=table_max_size, table_address=table_address))
    return _checksummed(ep, 0x05, slice(0, 0x18))
