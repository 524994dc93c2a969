"""How a systemd guest names a PCI NIC, predicted from where the NIC sits: the one model of it.

systemd's net_id builtin (src/udev/udev-builtin-net_id.c, ``dev_pci_slot``)
prefers, for a PCI NIC without a firmware onboard index, the *slot* name
``ens<slot>`` when the kernel lists a physical slot for the device
(``/sys/bus/pci/slots``), else the *path* name ``enp<bus>s<device>``; both get
``P<domain>`` in front for a non-zero PCI domain, and ``f<function>`` when
``func > 0 || is_pci_multifunction(pcidev)``. ``is_pci_multifunction`` reads
bit 7 of the function's header-type byte, so function 0 of a multifunction
device is ``…f0`` (``enp2s0f0``, ``ens160f0``), not ``enp2s0``.

This is why a VMware guest's NIC behind root port 00:16.0 (slot 192) is
``ens192`` and one behind the PCI bridge at 02:01.0 (slot 33) is ``ens33``,
and why losing the slot number on migration renames it to ``enp11s0``.

Where the header byte is not known (an lspci text capture, a profile), the
bit is inferred from the functions present: Linux scans functions 1-7 of a
device only when function 0 sets the bit, and the compiler sets
``multifunction=on`` on function 0 exactly when the device has other
functions, so "another function at the same bus:device" is the bit
(:func:`multifunction_devices`).

VMware's absurd onboard indexes (``eno16777736``, systemd ignores indexes
above 16383 since v230-ish) and ``dev_port``/``phys_port_name`` suffixes are
not modelled: profiles describe guests of systemd versions that ignore the
former, and emulated NICs have one port per function.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

_ADDRESS = re.compile(r"(?:([0-9a-fA-F]{1,8}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])")


@dataclass(frozen=True, order=True)
class PciLocation:
    """Where a function sits, as net_id reads it from the device's sysfs name."""

    domain: int
    bus: int
    device: int
    function: int

    @classmethod
    def parse(cls, text: str) -> "PciLocation":
        """``BB:DD.F`` or ``DDDD:BB:DD.F`` (hex, as lspci and sysfs print it)."""
        match = _ADDRESS.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"not a PCI address (BB:DD.F or DDDD:BB:DD.F): {text!r}")
        domain, bus, device, function = match.groups()
        return cls(int(domain or "0", 16), int(bus, 16), int(device, 16), int(function))

    @property
    def unit(self) -> tuple[int, int, int]:
        """(domain, bus, device): what the multifunction bit is about."""
        return self.domain, self.bus, self.device


def multifunction_devices(locations: Iterable[PciLocation]) -> frozenset[tuple[int, int, int]]:
    """The devices (:attr:`PciLocation.unit`) among ``locations`` with more than one function:
    those whose function 0 sets the multifunction bit."""
    counts = Counter(loc.unit for loc in set(locations))
    return frozenset(unit for unit, n in counts.items() if n > 1)


def predicted_name(bus: int, device: int, function: int, physical_slot: int | None,
                   multifunction: bool = False, domain: int = 0) -> str:
    """The interface name systemd's default naming scheme gives this NIC.

    ``multifunction``: the function's header-type byte has bit 7 set (function 0 of a
    multifunction device; see :func:`multifunction_devices` when only the addresses are known).
    """
    suffix = f"f{function}" if function > 0 or multifunction else ""
    where = f"P{domain}" if domain > 0 else ""
    if physical_slot is not None:
        return f"en{where}s{physical_slot}{suffix}"
    return f"en{where}p{bus}s{device}{suffix}"


def name_at(location: PciLocation, physical_slot: int | None, present: Iterable[PciLocation],
            multifunction: bool | None = None) -> str:
    """:func:`predicted_name` for the function at ``location`` among the functions ``present``;
    ``multifunction``: the header bit when it was read (None: inferred from ``present``)."""
    if multifunction is None:
        multifunction = location.unit in multifunction_devices([location, *present])
    return predicted_name(location.bus, location.device, location.function, physical_slot, multifunction,
                          location.domain)
