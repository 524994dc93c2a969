"""The target a profile is compiled for: architecture × machine × accelerator × QEMU build.

No architecture or machine default here: ``arches.resolve_target`` owns them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    arch: str
    machine: str
    accel: str = "tcg"
    qemu_binary: str | None = None
    """Path or name of the QEMU binary; None = the architecture's default."""

    def __str__(self) -> str:
        return f"{self.arch}/{self.machine}/{self.accel}"
