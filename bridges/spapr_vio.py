"""PAPR VIO addressing (pseries): which unit address (``reg``) each virtual device gets.

A VIO device is a device-tree node ``/vdevice/<name>@<reg>``; ``reg`` is its
only address.  QEMU (hw/ppc/spapr_vio.c, 7.2) refuses two devices with one
``reg`` and derives each device's interrupt from ``reg`` by a many-to-one
formula, so two different ``reg`` values can still collide on the IRQ
(measured: an explicit ``reg=0x2000`` collided with the machine's own
devices).  QEMU reports that only at start-up, as a bare "IRQ already
claimed"; here both conflicts are found at compile time, naming the entries.

The machine's own devices (``vty@71000000``, ``nvram@71000001``) take part in
the checks like any other: a profile cannot take their addresses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from guestcompat.errors import TopologyError

QEMU_REG_BASE = 0x71000000
"""Where QEMU numbers VIO devices it places itself (one by one, upwards)."""
TTY_REG_BASE = 0x30000000
AUTO_REG = 0xFFFFFFFF
"""QEMU's "choose for me" value of ``reg``: a profile must state a real address."""


@dataclass(frozen=True)
class VioSlot:
    """One VIO device to place: its profile name, its ``reg`` and its node name."""

    name: str
    reg: int
    node: str
    """Device-tree node name without the unit address (``v-scsi``)."""
    fixed: bool = False
    """Created by the machine itself (not movable by a profile)."""

    @property
    def path(self) -> str:
        """The node as the guest names it under /proc/device-tree/vdevice (``v-scsi@71000010``)."""
        return f"{self.node}@{self.reg:x}"


def irq_index(reg: int) -> int:
    """The VIO interrupt index QEMU derives from ``reg`` (0-255, same formula as QEMU 7.2)."""
    if reg >= QEMU_REG_BASE:
        return reg & 0xFF
    if reg >= TTY_REG_BASE:
        return 0xF0 | ((reg >> 12) & 0xF)
    return (reg >> 12) & 0xFF


def check(slots: Iterable[VioSlot]) -> tuple[VioSlot, ...]:
    """The slots in unit-address order, after refusing every conflict QEMU would hit."""
    slots = list(slots)
    by_reg: dict[int, VioSlot] = {}
    by_irq: dict[int, VioSlot] = {}
    for slot in slots:
        if slot.reg in (0, AUTO_REG):
            raise TopologyError(f"{slot.name}: reg {slot.reg:#x} is not a usable VIO unit address "
                                f"(QEMU treats {AUTO_REG:#x} as 'choose for me'; state an address like 0x71000010)")
        if slot.reg in by_reg:
            other = by_reg[slot.reg]
            raise TopologyError(f"{slot.name}: reg {slot.reg:#x} is already taken by {_who(other)}")
        irq = irq_index(slot.reg)
        if irq in by_irq:
            other = by_irq[irq]
            raise TopologyError(
                f"{slot.name}: reg {slot.reg:#x} gets VIO interrupt {irq:#x}, which {_who(other)} "
                f"already has; QEMU derives the interrupt from reg "
                f"(reg >= {QEMU_REG_BASE:#x}: its low 8 bits), so choose a reg whose interrupt is free")
        by_reg[slot.reg] = slot
        by_irq[irq] = slot
    return tuple(sorted(slots, key=lambda s: s.reg))


def _who(slot: VioSlot) -> str:
    return f"the machine's own {slot.path}" if slot.fixed else f"{slot.name} ({slot.path})"
