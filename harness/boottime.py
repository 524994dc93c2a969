"""Where a full guest's boot time went, read from its console.

The full guest's probe wrapper (images/data/fullguest/fullguest.sh) prints,
before the framed document, the seconds since the kernel started, the
manager's ``UserspaceTimestampMonotonic`` (when systemd started on the real
root: kernel + initrd before it) and, per service, ``systemctl show``'s
``Id``, ``InactiveExitTimestampMonotonic`` and ``ActiveEnterTimestampMonotonic``
(what ``systemd-analyze blame`` computes, which refuses to run before the
boot has finished, and the probe unit is part of the boot). This is
diagnostics for keeping the full-guest tests inside the CI budget, not part of
the fingerprint: a guest that prints nothing of it gives ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_UPTIME = re.compile(r"gc-boot: uptime ([0-9.]+)")
_USERSPACE = re.compile(r"UserspaceTimestampMonotonic=(\d+)")
_PROPERTY = re.compile(r"^(Id|InactiveExitTimestampMonotonic|ActiveEnterTimestampMonotonic)=(\S*)$")


@dataclass(frozen=True)
class BootTiming:
    """Seconds of a full guest's boot as the guest measured them (guest clock, from kernel start)."""

    probe_start: float
    """When the probe unit started (multi-user reached)."""
    kernel_and_initrd: float | None
    """When systemd started on the real root."""
    blame: tuple[tuple[str, float], ...]
    """(unit, seconds its start took), slowest first."""

    @property
    def systemd(self) -> float | None:
        """Seconds from systemd on the real root to the probe unit."""
        return None if self.kernel_and_initrd is None else self.probe_start - self.kernel_and_initrd

    def summary(self, top: int = 5) -> str:
        units = ", ".join(f"{unit} {sec:.1f}s" for unit, sec in self.blame[:top])
        split = (f"kernel+initrd {self.kernel_and_initrd:.1f} s, systemd to the probe {self.systemd:.1f} s"
                 if self.kernel_and_initrd is not None else "no kernel/userspace split")
        return f"probe started {self.probe_start:.1f} s after the kernel ({split}); slowest units: {units or 'none'}"


def _blame(units: list[dict[str, str]]) -> list[tuple[str, float]]:
    """(unit, seconds from leaving inactive to entering active) of units that did both."""
    spans = []
    for unit in units:
        try:
            left, entered = int(unit["InactiveExitTimestampMonotonic"]), int(unit["ActiveEnterTimestampMonotonic"])
        except (KeyError, ValueError):
            continue
        if left and entered >= left:
            spans.append((unit.get("Id", "?"), (entered - left) / 1e6))
    return spans


def boot_timing(console: Iterable[str]) -> BootTiming | None:
    """The timing the wrapper printed on *console*, or None when it printed none."""
    uptime: float | None = None
    userspace: float | None = None
    units: list[dict[str, str]] = []
    inside = False
    for raw in console:
        line = raw.strip()
        if (m := _UPTIME.search(line)) is not None:
            uptime = float(m[1])
        elif line.endswith("gc-boot: begin"):
            inside = True
        elif line.endswith("gc-boot: end"):
            inside = False
        elif inside and (m := _USERSPACE.search(line)) is not None:
            userspace = int(m[1]) / 1e6 if int(m[1]) else None
        elif inside and (m := _PROPERTY.match(line)) is not None:
            if m[1] == "Id" or not units:
                units.append({})
            units[-1][m[1]] = m[2]
    if uptime is None:
        return None
    return BootTiming(uptime, userspace, tuple(sorted(_blame(units), key=lambda b: -b[1])))
