"""What the guest should see, what this target will show, and how they differ.

Each :class:`Expectation` is one guest-visible property: ``wanted`` is what
the source platform (the profile) shows, ``presented`` what the compiler
predicts QEMU will show on this target. Where the two differ, ``reason``
says why: that difference is a *known deviation*, listed in the fidelity
report, and the harness accepts it only when the guest shows exactly the
predicted value. Nothing is dropped to make a check pass.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass
from typing import Any

Value = str | int | bool | None | tuple


class Fidelity(enum.Enum):
    EXACT = "exact"
    APPROXIMATE = "approximate"
    """QEMU shows something else, and we know what."""
    UNSUPPORTED = "unsupported"
    """QEMU cannot show it at all (absent), or we cannot predict what it shows."""


UNKNOWN = "<unknown>"
"""``presented`` value when the compiler cannot predict what the guest will read."""


@dataclass(frozen=True)
class Expectation:
    category: str
    """detection | identity | placement | ids | drivers | names | disks"""
    selector: str
    """What to read from the fingerprint, e.g. ``pci[0b:00.0].vendor`` or ``dmi.sys_vendor``."""
    wanted: Value
    presented: Value
    reason: str | None = None
    subject: str = ""
    """The profile entry this is about (``ethernet0``), for reports."""
    tolerance: float | None = None
    """For measured quantities (a throttled disk's rate): the relative error a
    guest observation may have and still equal ``wanted``."""

    @property
    def fidelity(self) -> Fidelity:
        if self.presented == self.wanted:
            return Fidelity.EXACT
        if self.presented is None or self.presented == UNKNOWN:
            return Fidelity.UNSUPPORTED
        return Fidelity.APPROXIMATE

    def __post_init__(self) -> None:
        if self.presented != self.wanted and not self.reason:
            raise ValueError(f"{self.selector}: a deviation needs a reason")


@dataclass(frozen=True)
class FidelityReport:
    """All expectations of one compiled profile, grouped for people."""

    expectations: tuple[Expectation, ...]

    def deviations(self) -> list[Expectation]:
        return [e for e in self.expectations if e.fidelity is not Fidelity.EXACT]

    def counts(self) -> dict[str, int]:
        counts = {f.value: 0 for f in Fidelity}
        for e in self.expectations:
            counts[e.fidelity.value] += 1
        return counts

    def to_json(self) -> list[dict[str, Any]]:
        return [dict(asdict(e), fidelity=e.fidelity.value) for e in self.expectations]


def fmt(value: Value) -> str:
    """A value as reports print it."""
    if value is None:
        return "(absent)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return str(value)
