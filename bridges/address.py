"""Guest-visible PCI addresses (bus:device.function).

Profiles write addresses the way ``lspci`` prints them (``0b:00.0``, or with
a domain ``0000:0b:00.0``); everything inside guestcompat compares them as
:class:`PciAddress` values so ``0B:00.0`` and ``0000:0b:00.0`` are one address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PATTERN = re.compile(
    r"^(?:(?P<domain>[0-9a-fA-F]{4}):)?(?P<bus>[0-9a-fA-F]{2}):(?P<dev>[0-9a-fA-F]{2})\.(?P<fn>[0-9a-fA-F])\Z")


@dataclass(frozen=True, order=True)
class PciAddress:
    """One PCI function. Ordered by (bus, device, function), as firmware scans."""

    bus: int
    device: int
    function: int

    def __post_init__(self) -> None:
        if not 0 <= self.bus <= 255:
            raise ValueError(f"bus {self.bus:#x} is out of range (00-ff)")
        if not 0 <= self.device <= 31:
            raise ValueError(f"device {self.device:#x} is out of range (00-1f)")
        if not 0 <= self.function <= 7:
            raise ValueError(f"function {self.function} is out of range (0-7)")

    @classmethod
    def parse(cls, text: str) -> "PciAddress":
        """Parse ``BB:DD.F`` or ``DDDD:BB:DD.F`` (hex, as lspci prints)."""
        match = _PATTERN.match(text.strip(" \t")) if isinstance(text, str) else None
        if not match:
            raise ValueError(f"{text!r} is not a PCI address like 0b:00.0 (bus:device.function, hex)")
        if match["domain"] and int(match["domain"], 16) != 0:
            raise ValueError(f"{text!r}: only PCI domain 0000 is supported")
        return cls(int(match["bus"], 16), int(match["dev"], 16), int(match["fn"], 16))

    def __str__(self) -> str:
        return f"{self.bus:02x}:{self.device:02x}.{self.function:x}"

    @property
    def slot(self) -> tuple[int, int]:
        """(bus, device): the unit multifunction rules and hotplug slots work on."""
        return (self.bus, self.device)

    def with_function(self, function: int) -> "PciAddress":
        return PciAddress(self.bus, self.device, function)

    def qemu_addr(self) -> str:
        """The ``addr=`` value QEMU's ``-device`` expects (``0x15.0x3``)."""
        return f"{self.device:#x}.{self.function:#x}" if self.function else f"{self.device:#x}"
