"""Registry of architecture strategies (one module per architecture), and the one rule for a target.

Which target a profile runs on when the user does not say (``--arch``,
``--machine``, ``--accel``) is decided here, once: the CLI, the pytest plugin,
the matrix, ``run`` and the compiler's default all call :func:`resolve_target`.
"""

from __future__ import annotations

from guestcompat.emulation.arches.base import ArchStrategy
from guestcompat.emulation.arches.ppc64 import Ppc64
from guestcompat.emulation.arches.x86_64 import X86_64
from guestcompat.emulation.target import Target
from guestcompat.errors import CompileError

_STRATEGIES: dict[str, ArchStrategy] = {s.name: s for s in (X86_64(), Ppc64())}

#: The architecture of a profile whose ``platform.arch`` names none: VMware's x86 hardware.
DEFAULT_ARCH = X86_64.name


def get(name: str) -> ArchStrategy:
    try:
        return _STRATEGIES[name]
    except KeyError:
        raise CompileError(f"unknown architecture {name!r} (known: {', '.join(sorted(_STRATEGIES))})") from None


def all_strategies() -> list[ArchStrategy]:
    return list(_STRATEGIES.values())


def resolve_target(profile_arch: str | None = None, *, arch: str | None = None, machine: str | None = None,
                   accel: str | None = None, qemu_binary: str | None = None) -> Target:
    """The target: ``arch`` (an option) wins over the profile's ``platform.arch``, else
    :data:`DEFAULT_ARCH`; the machine and accelerator default to the strategy's first
    (``default_machine``, ``accels[0]``). An unknown architecture is a CompileError naming the
    known ones; an unsupported machine or accelerator is left to the compiler's check."""
    strategy = get(arch or profile_arch or DEFAULT_ARCH)
    return Target(arch=strategy.name, machine=machine or strategy.default_machine, accel=accel or strategy.accels[0],
                  qemu_binary=qemu_binary)
