"""Auxiliary files a compiled machine needs besides its argv (e.g. an extra ACPI table).

Compile output is pure data, comparable in golden files: an artefact carries
its *source* (readable text, e.g. ASL), never a built file or a run-time
path. The argv refers to it through :attr:`Artefact.placeholder`, a fixed
string the runner replaces with the path of the file it built (see
``guestcompat.harness.artefacts``), so golden files stay deterministic.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

PLACEHOLDER_PREFIX = "@artefact/"

KINDS = ("acpi-asl", "json")
"""``acpi-asl``: ACPI Source Language, compiled by ``iasl`` into an AML table file;
``json``: a JSON document QEMU reads as is (vmport's guestinfo store)."""


@dataclass(frozen=True)
class Artefact:
    name: str
    """File name the argv refers to, e.g. ``ssdt-slots.aml``; unique within a compiled machine."""
    kind: str
    source: str
    description: str = ""
    """What it is for, for reports (``ACPI _SUN slot numbers``)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"artefact {self.name}: unknown kind {self.kind!r}")
        if not self.name or "/" in self.name or "," in self.name:
            raise ValueError(f"artefact name {self.name!r} must be a plain file name without commas")

    @property
    def placeholder(self) -> str:
        """What the argv holds where the built file's path goes."""
        return PLACEHOLDER_PREFIX + self.name

    @property
    def digest(self) -> str:
        """Content hash of kind and source: the build cache key."""
        return hashlib.sha256(f"{self.kind}\0{self.source}".encode()).hexdigest()
