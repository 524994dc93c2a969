"""The multi-interface catalogue (profiles/catalog/interfaces.toml) as typed data.

Which hypervisor interfaces (VMware, KVM, Hyper-V, Xen) QEMU can present, facet
by facet (CPUID, DMI, backdoor, PCI, MAC, …), with the QEMU options that
present each and the accelerator it needs; and which booted combination
profile presents which of them.  Facts, not Python conditionals: the table
generator (harness/interfaces.py) checks each option against QEMU for real.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal


from guestcompat.errors import ProfileError
from guestcompat.profiles.catalog import load_catalog_file
from guestcompat.profiles.model import Frozen

Interface = Literal["vmware", "kvm", "hyperv", "xen"]
INTERFACES: tuple[str, ...] = ("vmware", "kvm", "hyperv", "xen")


class Presentation(Frozen):
    interface: Interface
    facet: str
    what: str
    argv: tuple[str, ...]
    accels: tuple[str, ...] = ("tcg",)
    needs: str | None = None
    """Accelerator the presentation requires when TCG cannot give it."""
    guest_sees: str | None = None
    note: str | None = None
    prove_on: str | None = None
    """A combination profile booted once more with these ``-cpu`` flags added, to show in a
    real guest what an accepted-but-ignored option gives (the CPUID signature it reads)."""

    @property
    def key(self) -> str:
        return f"{self.interface}:{self.facet}"


class Combination(Frozen):
    presents: tuple[str, ...]


class InterfaceCatalog(Frozen):
    presentation: tuple[Presentation, ...]
    combination: dict[str, Combination]

    def by_key(self) -> dict[str, Presentation]:
        return {p.key: p for p in self.presentation}


@lru_cache(maxsize=1)
def load_interfaces() -> InterfaceCatalog:
    data = load_catalog_file("interfaces.toml", InterfaceCatalog)
    keys = data.by_key()
    if len(keys) != len(data.presentation):
        raise ProfileError("profiles/catalog/interfaces.toml: two presentations share an interface:facet")
    for name, combo in data.combination.items():
        unknown = [k for k in combo.presents if k not in keys]
        if unknown:
            raise ProfileError(f"profiles/catalog/interfaces.toml: combination.{name!r}: presents unknown "
                               f"{', '.join(unknown)}")
        needing = [k for k in combo.presents if keys[k].needs is not None]
        if needing:
            raise ProfileError(f"profiles/catalog/interfaces.toml: combination.{name!r}: {', '.join(needing)} "
                               f"cannot be presented under TCG")
    for p in data.presentation:
        if p.prove_on is not None and (p.prove_on not in data.combination or list(p.argv[:1]) != ["-cpu"]):
            raise ProfileError(f"profiles/catalog/interfaces.toml: {p.key}: prove_on needs a combination and "
                               f"'-cpu' options")
    return data
