"""Plan a matrix: which profile × architecture × QEMU binary × accelerator cells can run.

A combination that cannot work is *skipped with a stated reason*, never
failed and never silently dropped: a ppc64 profile on x86_64, a QEMU binary
without the target's machine type, an accelerator the binary does not have
or the architecture strategy does not accept (KVM: guests hang after the
BIOS on the machines this was built on, see docs/design.md). What the QEMU
binary can do is asked of the binary itself: its machine types from the
capability probe (emulation/capabilities.py), its accelerators over QMP, once
per binary.

Bad input (an unknown profile or architecture name) is an error for the
whole command; a profile that compiles on its own target but not on a cell's
target is a skip; one that compiles nowhere is an error for its cells.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass

from guestcompat.emulation import arches
from guestcompat.emulation.capabilities import capabilities_for
from guestcompat.images import qemu_build, qemu_builds
from guestcompat.emulation.compiler import CompiledMachine, compile_profile
from guestcompat.emulation.target import Target
from guestcompat.errors import GuestcompatError, QemuUnusableError, RunError
from guestcompat.profiles.loader import list_profiles, load
from guestcompat.profiles.model import Profile
from guestcompat.qemu_process import QemuProcess

CAPS_TIMEOUT = 20.0


@dataclass(frozen=True)
class Cell:
    """One run of the matrix."""

    profile: str
    target: Target

    @property
    def label(self) -> str:
        """The target as the summary, JUnit and JSON show it (binary only when chosen)."""
        binary = f" [{self.target.qemu_binary}]" if self.target.qemu_binary else ""
        return f"{self.target}{binary}"


@dataclass(frozen=True)
class PlannedCell:
    """A cell and what to do with it: run ``compiled``, or skip / fail it for ``reason``."""

    cell: Cell
    compiled: CompiledMachine | None = None
    skip_reason: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class QemuCaps:
    """What one QEMU binary offers, as it says itself."""

    binary: str
    machines: frozenset[str]
    accels: frozenset[str]


@functools.lru_cache(maxsize=None)
def qemu_caps(binary: str) -> QemuCaps:
    """Ask ``binary`` for its machine types (the capability probe, cached on disk) and its
    accelerators (QMP ``qom-list-types`` of ``accel``; cached per process)."""
    return QemuCaps(binary, frozenset(capabilities_for(binary).machines), _accels(binary))


def _accels(binary: str) -> frozenset[str]:
    async def ask() -> list[dict]:
        argv = [binary, "-machine", "none", "-nodefaults", "-display", "none", "-S"]
        async with QemuProcess(argv, purpose="accels", connect_timeout=CAPS_TIMEOUT) as qemu:
            return await qemu.execute("qom-list-types", {"implements": "accel", "abstract": False})

    try:
        types = asyncio.run(ask())
    except RunError as exc:
        raise QemuUnusableError(f"QEMU binary {binary!r} does not list its accelerators: {exc.args[0]}") from None
    return frozenset(t["name"].removesuffix("-accel") for t in types if t["name"].endswith("-accel"))


def concrete_profiles() -> list[str]:
    """Every bundled (or user-path) profile that is not abstract."""
    return [s.name for s in list_profiles() if not load(s.name).abstract]


def plan(profiles: Sequence[str] = (), arch_names: Sequence[str] = (), qemu_binaries: Sequence[str] = (),
         accels: Sequence[str] = ("tcg",)) -> list[PlannedCell]:
    """Expand the matrix. Empty ``profiles``: every concrete profile; empty ``arch_names``:
    each profile's own ``platform.arch`` (else x86_64); empty ``qemu_binaries``: the
    architecture's default binary."""
    names = list(profiles) or concrete_profiles()
    loaded = {name: load(name) for name in dict.fromkeys(names)}  # unknown name: error for the command
    for arch in arch_names:
        arches.get(arch)  # unknown architecture: error for the command
    cells: list[PlannedCell] = []
    for name, profile in loaded.items():
        for arch in arch_names or [arches.resolve_target(profile.platform.arch).arch]:
            for binary in qemu_binaries or [None]:
                for accel in accels or ("tcg",):
                    cells.append(_plan_cell(profile, arch, binary, accel))
    return cells


def _plan_cell(profile: Profile, arch: str, binary: str | None, accel: str) -> PlannedCell:
    strategy = arches.get(arch)
    cell = Cell(profile.name, arches.resolve_target(arch=arch, accel=accel, qemu_binary=binary))
    if profile.abstract:
        return PlannedCell(cell, skip_reason="abstract profile (only extended by others)")
    if profile.platform.arch is not None and profile.platform.arch != arch:
        return PlannedCell(cell, skip_reason=f"the profile describes {profile.platform.arch} hardware")
    if binary in qemu_builds.BUILDS and arch not in qemu_build.ARCHES:
        return PlannedCell(cell, skip_reason=f"guestcompat's QEMU build {binary} is for {', '.join(qemu_build.ARCHES)} only")
    try:
        program = strategy.binary(cell.target)  # a build alias (--qemu patched) may be missing here
        caps = qemu_caps(program)
    except GuestcompatError as exc:
        return PlannedCell(cell, error=str(exc))
    if cell.target.machine not in caps.machines:
        return PlannedCell(cell, skip_reason=f"{program} has no machine type {cell.target.machine!r} "
                                             f"(a QEMU for another architecture)")
    if accel not in caps.accels:
        return PlannedCell(cell, skip_reason=f"{program} has no accelerator {accel!r} "
                                             f"(it offers: {', '.join(sorted(caps.accels))})")
    if accel not in strategy.accels:
        return PlannedCell(cell, skip_reason=_accel_refusal(arch, accel, strategy.accels))
    try:
        return PlannedCell(cell, compiled=compile_profile(profile, cell.target))
    except QemuUnusableError as exc:
        return PlannedCell(cell, error=str(exc))
    except GuestcompatError as exc:
        if _compiles_on_own_target(profile):
            return PlannedCell(cell, skip_reason=f"does not compile for {cell.target}: {exc}")
        return PlannedCell(cell, error=f"does not compile: {exc}")


def _accel_refusal(arch: str, accel: str, accepted: tuple[str, ...]) -> str:
    reason = f"the {arch} strategy accepts {', '.join(accepted)} only"
    if accel == "kvm":
        reason = "KVM is not proven to boot here (KVM guests hang after the BIOS); " + reason
    return reason


def _compiles_on_own_target(profile: Profile) -> bool:
    try:
        compile_profile(profile, arches.resolve_target(profile.platform.arch))
    except GuestcompatError:
        return False
    return True
