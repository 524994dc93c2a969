"""Registry of architecture strategies (one module per architecture)."""

from __future__ import annotations

from guestcompat.emulation.arches.base import ArchStrategy
from guestcompat.emulation.arches.ppc64 import Ppc64
from guestcompat.emulation.arches.x86_64 import X86_64
from guestcompat.errors import CompileError

_STRATEGIES: dict[str, ArchStrategy] = {s.name: s for s in (X86_64(), Ppc64())}


def get(name: str) -> ArchStrategy:
    try:
        return _STRATEGIES[name]
    except KeyError:
        raise CompileError(f"unknown architecture {name!r} (known: {', '.join(sorted(_STRATEGIES))})") from None


def all_strategies() -> list[ArchStrategy]:
    return list(_STRATEGIES.values())
