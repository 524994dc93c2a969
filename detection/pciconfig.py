"""Decode a PCI function's configuration space as the guest read it.

sysfs shows vendor/device/class, but what decides a guest's device names and
bus numbers lives only in config space: the bridge bus numbers firmware
assigned, the subsystem ids of bridges (SSVID capability), whether a PCIe port
implements a slot and which *physical slot number* it advertises (systemd's
``ens160`` comes from there or from ACPI ``_SUN``).  The probe ships the raw
bytes; this module reads them.

The blob may be short (64 bytes when read without privileges, 256 for
conventional PCI, 4096 with extended config space) or hostile: every offset is
bounds-checked, capability lists are walked with loop guards, and fields that
are not in the blob are None, never an IndexError.
"""

from __future__ import annotations

import struct as _pystruct
from dataclasses import dataclass

import construct as cs

from guestcompat.errors import ProbeError

_COMMON = cs.Struct(
    "vendor" / cs.Int16ul,
    "device" / cs.Int16ul,
    "command" / cs.Int16ul,
    "status" / cs.Int16ul,
    "revision" / cs.Int8ul,
    "prog_if" / cs.Int8ul,
    "subclass" / cs.Int8ul,
    "base_class" / cs.Int8ul,
    "cache_line_size" / cs.Int8ul,
    "latency_timer" / cs.Int8ul,
    "header_type" / cs.BitStruct("multifunction" / cs.Flag, "layout" / cs.BitsInteger(7)),
    "bist" / cs.Int8ul,
)

_TYPE0 = cs.Struct(
    "bars" / cs.Array(6, cs.Int32ul),
    "cardbus_cis" / cs.Int32ul,
    "subsystem_vendor" / cs.Int16ul,
    "subsystem_device" / cs.Int16ul,
    "rom_address" / cs.Int32ul,
    "capabilities_pointer" / cs.Int8ul,
    cs.Padding(7),
    "interrupt_line" / cs.Int8ul,
    "interrupt_pin" / cs.Int8ul,
    "min_gnt" / cs.Int8ul,
    "max_lat" / cs.Int8ul,
)

_TYPE1 = cs.Struct(
    "bars" / cs.Array(2, cs.Int32ul),
    "primary_bus" / cs.Int8ul,
    "secondary_bus" / cs.Int8ul,
    "subordinate_bus" / cs.Int8ul,
    "secondary_latency_timer" / cs.Int8ul,
    "io_base" / cs.Int8ul,
    "io_limit" / cs.Int8ul,
    "secondary_status" / cs.Int16ul,
    "memory_base" / cs.Int16ul,
    "memory_limit" / cs.Int16ul,
    "prefetch_base" / cs.Int16ul,
    "prefetch_limit" / cs.Int16ul,
    "prefetch_base_upper" / cs.Int32ul,
    "prefetch_limit_upper" / cs.Int32ul,
    "io_base_upper" / cs.Int16ul,
    "io_limit_upper" / cs.Int16ul,
    "capabilities_pointer" / cs.Int8ul,
    cs.Padding(3),
    "rom_address" / cs.Int32ul,
    "interrupt_line" / cs.Int8ul,
    "interrupt_pin" / cs.Int8ul,
    "bridge_control" / cs.Int16ul,
)

_TYPE2 = cs.Struct(                  # CardBus bridge
    "socket_base" / cs.Int32ul,
    "capabilities_pointer" / cs.Int8ul,
    cs.Padding(1),
    "secondary_status" / cs.Int16ul,
    "primary_bus" / cs.Int8ul,
    "secondary_bus" / cs.Int8ul,     # CardBus bus number
    "subordinate_bus" / cs.Int8ul,
    "cardbus_latency_timer" / cs.Int8ul,
)                                    # subsystem ids at 0x40/0x42, beyond the 64-byte header

# Offsets of the PCI Express capability registers used here.
_PCIE_CAP_FLAGS = 0x02
_PCIE_SLOT_CAP = 0x14

CAP_NAMES = {
    0x01: "Power Management", 0x02: "AGP", 0x03: "VPD", 0x04: "Slot Identification",
    0x05: "MSI", 0x06: "CompactPCI Hot Swap", 0x07: "PCI-X", 0x08: "HyperTransport",
    0x09: "Vendor Specific", 0x0A: "Debug port", 0x0B: "CompactPCI Central Resource Control",
    0x0C: "PCI Hot-plug", 0x0D: "Bridge Subsystem Vendor ID", 0x0E: "AGP 8x", 0x0F: "Secure Device",
    0x10: "PCI Express", 0x11: "MSI-X", 0x12: "SATA", 0x13: "Advanced Features", 0x14: "Enhanced Allocation",
    0x15: "Flattening Portal Bridge",
}

PCIE_PORT_TYPES = {
    0x0: "Endpoint", 0x1: "Legacy Endpoint", 0x4: "Root Port", 0x5: "Upstream Port",
    0x6: "Downstream Port", 0x7: "PCI-Express to PCI/PCI-X Bridge",
    0x8: "PCI/PCI-X to PCI-Express Bridge", 0x9: "Root Complex Integrated Endpoint",
    0xA: "Root Complex Event Collector",
}

CAP_SSVID = 0x0D
CAP_PCIE = 0x10
_STATUS_CAP_LIST = 0x10


@dataclass(frozen=True)
class Capability:
    """One entry of the (extended) capability list."""

    id: int
    offset: int
    version: int | None = None       # extended capabilities only

    @property
    def name(self) -> str:
        return CAP_NAMES.get(self.id, f"cap {self.id:#04x}")


@dataclass(frozen=True)
class PcieInfo:
    """The parts of the PCI Express capability that shape device naming and topology."""

    offset: int
    version: int
    port_type: int
    slot_implemented: bool
    physical_slot: int | None        # Slot Capabilities bits 31:19 (None if no slot / not in blob)

    @property
    def port_type_name(self) -> str:
        return PCIE_PORT_TYPES.get(self.port_type, f"type {self.port_type:#x}")


@dataclass(frozen=True)
class PciConfig:
    """Decoded config space header, capability list and PCIe port facts."""

    size: int
    vendor: int
    device: int
    command: int
    status: int
    revision: int
    prog_if: int
    subclass: int
    base_class: int
    header_type: int                 # layout 0 (device), 1 (PCI bridge), 2 (CardBus)
    multifunction: bool
    subsystem_vendor: int | None     # type 0/2 header; type 1: from the SSVID capability
    subsystem_device: int | None
    primary_bus: int | None          # bridges only
    secondary_bus: int | None
    subordinate_bus: int | None
    capabilities: tuple[Capability, ...]
    extended_capabilities: tuple[Capability, ...]
    capability_errors: tuple[str, ...]   # loops, pointers outside the blob
    pcie: PcieInfo | None

    @property
    def class_code(self) -> int:
        """24-bit class code as sysfs ``class`` shows it (base, sub, prog-if)."""
        return (self.base_class << 16) | (self.subclass << 8) | self.prog_if

    def capability(self, cap_id: int) -> Capability | None:
        for cap in self.capabilities:
            if cap.id == cap_id:
                return cap
        return None


def _u16(blob: bytes, off: int) -> int | None:
    return _pystruct.unpack_from("<H", blob, off)[0] if 0 <= off and off + 2 <= len(blob) else None


def _u32(blob: bytes, off: int) -> int | None:
    return _pystruct.unpack_from("<I", blob, off)[0] if 0 <= off and off + 4 <= len(blob) else None


def _walk_capabilities(blob: bytes, start: int, errors: list[str]) -> tuple[Capability, ...]:
    caps: list[Capability] = []
    seen: set[int] = set()
    ptr = start & 0xFC
    while ptr:
        if ptr < 0x40:
            errors.append(f"capability pointer {ptr:#x} points into the header")
            break
        if ptr in seen or len(caps) >= 48:
            errors.append(f"capability list loops at {ptr:#x}")
            break
        if ptr + 2 > len(blob):
            errors.append(f"capability at {ptr:#x} is beyond the {len(blob)}-byte config blob")
            break
        seen.add(ptr)
        caps.append(Capability(blob[ptr], ptr))
        ptr = blob[ptr + 1] & 0xFC
    return tuple(caps)


def _walk_extended(blob: bytes, errors: list[str]) -> tuple[Capability, ...]:
    caps: list[Capability] = []
    seen: set[int] = set()
    ptr = 0x100
    while len(blob) >= 0x104:
        head = _u32(blob, ptr)
        if head is None:
            errors.append(f"extended capability at {ptr:#x} is beyond the config blob")
            break
        if head in (0, 0xFFFFFFFF):
            break
        if ptr in seen or len(caps) >= 960:
            errors.append(f"extended capability list loops at {ptr:#x}")
            break
        seen.add(ptr)
        caps.append(Capability(head & 0xFFFF, ptr, (head >> 16) & 0xF))
        ptr = (head >> 20) & 0xFFC
        if ptr == 0:
            break
        if ptr < 0x100:
            errors.append(f"extended capability pointer {ptr:#x} is below 0x100")
            break
    return tuple(caps)


def _pcie_info(blob: bytes, cap: Capability) -> PcieInfo | None:
    flags = _u16(blob, cap.offset + _PCIE_CAP_FLAGS)
    if flags is None:
        return None
    slot = bool(flags & 0x0100)
    slot_cap = _u32(blob, cap.offset + _PCIE_SLOT_CAP) if slot else None
    return PcieInfo(
        offset=cap.offset,
        version=flags & 0xF,
        port_type=(flags >> 4) & 0xF,
        slot_implemented=slot,
        physical_slot=(slot_cap >> 19) if slot_cap is not None else None,
    )


def decode_config(blob: bytes) -> PciConfig:
    """Decode a config space blob (at least the 64-byte header)."""
    if len(blob) < 64:
        raise ProbeError(f"PCI config space blob has {len(blob)} bytes, need at least the 64-byte header")
    try:
        common = _COMMON.parse(blob[:16])
        layout = common.header_type.layout
        body = {0: _TYPE0, 1: _TYPE1, 2: _TYPE2}.get(layout)
        hdr = body.parse(blob[16:64]) if body is not None else None
    except cs.ConstructError as exc:
        raise ProbeError(f"PCI config space header does not decode: {exc}") from None
    errors: list[str] = []
    caps: tuple[Capability, ...] = ()
    if hdr is not None and common.status & _STATUS_CAP_LIST:
        caps = _walk_capabilities(blob, hdr.capabilities_pointer, errors)
    ext = _walk_extended(blob, errors) if len(blob) > 0x100 else ()
    svid = getattr(hdr, "subsystem_vendor", None)
    sdid = getattr(hdr, "subsystem_device", None)
    if layout == 2:
        svid, sdid = _u16(blob, 0x40), _u16(blob, 0x42)
    elif layout == 1:
        for cap in caps:
            if cap.id == CAP_SSVID:
                svid, sdid = _u16(blob, cap.offset + 4), _u16(blob, cap.offset + 6)
                break
    pcie = None
    for cap in caps:
        if cap.id == CAP_PCIE:
            pcie = _pcie_info(blob, cap)
            break
    bridge = layout in (1, 2) and hdr is not None
    return PciConfig(
        size=len(blob),
        vendor=common.vendor,
        device=common.device,
        command=common.command,
        status=common.status,
        revision=common.revision,
        prog_if=common.prog_if,
        subclass=common.subclass,
        base_class=common.base_class,
        header_type=layout,
        multifunction=bool(common.header_type.multifunction),
        subsystem_vendor=svid,
        subsystem_device=sdid,
        primary_bus=hdr.primary_bus if bridge else None,
        secondary_bus=hdr.secondary_bus if bridge else None,
        subordinate_bus=hdr.subordinate_bus if bridge else None,
        capabilities=caps,
        extended_capabilities=ext,
        capability_errors=tuple(errors),
        pcie=pcie,
    )
