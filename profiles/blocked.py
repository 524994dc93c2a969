"""Blocked features as data (profiles/catalog/blocked.toml): what a target cannot give a guest.

One place for facts that used to be scattered through strategy code: the
accelerator's answers (CPUID signature, backdoor GETHZ, user-mode backdoor),
features an architecture lacks, and devices that forbid live migration.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal


from guestcompat.errors import ProfileError
from guestcompat.profiles.catalog import load_catalog_file
from guestcompat.profiles.model import Frozen, Profile


class AccelFacts(Frozen):
    cpuid_signature: str
    can_set_signature: bool
    backdoor_gethz: bool
    user_backdoor: bool
    vmware_signature: bool = False
    """CPUID 0x40000000/0x40000010 can answer as VMware's (signature and timing leaf)."""
    lifted_by: dict[str, str] = {}
    """Fact → the CPU property of a QEMU build that makes it true (images/patches/qemu-7.2):
    the capability probe finds the property, the fact holds for that binary."""

    lifting: tuple[str, ...] = ()
    """The ``lifted_by`` properties this binary has (set by :meth:`on_build`): the ones to emit."""

    def on_build(self, cpu_properties: tuple[str, ...]) -> "AccelFacts":
        """These facts for a binary whose CPU model has *cpu_properties*."""
        present = {fact: prop for fact, prop in self.lifted_by.items() if prop in cpu_properties}
        return self.model_copy(update={**{fact: True for fact in present}, "lifting": tuple(present.values())})


class Blocked(Frozen):
    feature: str
    reason: str
    effect: Literal["gap", "no-run", "refuse"]
    arch: str | None = None
    accel: str | None = None
    device: str | None = None
    """Catalogue kind whose presence blocks the feature."""
    requires: str | None = None
    """Dotted profile key that asks for the feature (``platform.migratable``)."""
    lifted_by: str | None = None
    """CPU property of a QEMU build on which the feature is not blocked."""

    def applies(self, profile: Profile, arch: str, accel: str, kinds: set[str],
                cpu_properties: tuple[str, ...] = ()) -> bool:
        if self.arch not in (None, arch) or self.accel not in (None, accel):
            return False
        if self.lifted_by is not None and self.lifted_by in cpu_properties:
            return False
        if self.device is not None and self.device not in kinds:
            return False
        return self.requires is None or bool(lookup(profile, self.requires))

    def message(self, profile: Profile, arch: str) -> str:
        return self.reason.format(profile=profile.name, arch=arch)


class BlockedData(Frozen):
    accelerators: dict[str, dict[str, AccelFacts]]
    blocked: tuple[Blocked, ...]


def lookup(profile: Profile, key: str) -> object:
    value: object = profile
    for part in key.split("."):
        value = getattr(value, part, None)
    return value


@lru_cache(maxsize=1)
def load_blocked() -> BlockedData:
    data = load_catalog_file("blocked.toml", BlockedData)
    probe = Profile(name="probe")
    for entry in data.blocked:
        if entry.requires is not None and not _key_exists(probe, entry.requires):
            raise ProfileError(f"profiles/catalog/blocked.toml: {entry.feature}: requires names no profile key "
                               f"{entry.requires!r}")
    return data


def _key_exists(profile: Profile, key: str) -> bool:
    value: object = profile
    for part in key.split("."):
        if not hasattr(value, part):
            return False
        value = getattr(value, part)
    return True


def accel_facts(arch: str, accel: str, cpu_properties: tuple[str, ...] = ()) -> AccelFacts:
    """What *accel* answers on *arch*, on a binary whose CPU model has *cpu_properties*."""
    return load_blocked().accelerators[arch][accel].on_build(cpu_properties)


def applicable(profile: Profile, arch: str, accel: str, kinds: set[str],
               cpu_properties: tuple[str, ...] = ()) -> tuple[Blocked, ...]:
    return tuple(b for b in load_blocked().blocked if b.applies(profile, arch, accel, kinds, cpu_properties))
