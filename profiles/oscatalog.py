"""The guest-OS catalogue: which devices and firmware each guest OS can use, per architecture.

Data in ``profiles/catalog/os/*.toml`` (one entry per file, named by the
file); ``derived_from`` inheritance is resolved here, per architecture and
per key. The compiler (emulation/guestos.py) checks a profile's
``guest.os`` against the resolved entry.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources

from pydantic import ValidationError

from guestcompat.errors import ProfileError
from guestcompat.profiles.model import Frozen

#: device role (catalogue) -> the OS entry's list that names the kinds it can drive
ROLE_LISTS = {"storage": "storage", "nic": "nics", "display": "displays"}
#: how error messages call each list
LIST_TITLES = {"storage": "storage controllers", "nics": "NICs", "displays": "displays", "firmware": "firmware"}


class OsArchEntry(Frozen):
    """One architecture of an OS entry as written (None: inherited)."""

    storage: tuple[str, ...] | None = None
    nics: tuple[str, ...] | None = None
    displays: tuple[str, ...] | None = None
    firmware: tuple[str, ...] | None = None


class OsEntry(Frozen):
    summary: str = ""
    abstract: bool = False
    derived_from: str | None = None
    arch: dict[str, OsArchEntry] = {}


class GuestOsArch(Frozen):
    """What a resolved OS supports on one architecture."""

    storage: tuple[str, ...]
    nics: tuple[str, ...]
    displays: tuple[str, ...]
    firmware: tuple[str, ...]

    def supported(self, list_name: str) -> tuple[str, ...]:
        return getattr(self, list_name)


class GuestOs(Frozen):
    name: str
    summary: str
    abstract: bool
    lineage: tuple[str, ...]
    arches: dict[str, GuestOsArch]


def _raw() -> dict[str, OsEntry]:
    entries = {}
    folder = resources.files("guestcompat.profiles").joinpath("catalog", "os")
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".toml"):
            continue
        name = item.name[:-5]
        try:
            entries[name] = OsEntry.model_validate(tomllib.loads(item.read_text()))
        except (ValidationError, tomllib.TOMLDecodeError) as exc:
            raise ProfileError(f"guest-OS catalogue entry {name} is invalid:\n{exc}") from None
    return entries


def resolve(entries: dict[str, OsEntry]) -> dict[str, GuestOs]:
    """Resolve ``derived_from`` for every entry (pure: tests pass their own entries)."""
    resolved: dict[str, GuestOs] = {}

    def get(name: str, stack: tuple[str, ...]) -> GuestOs:
        if name in resolved:
            return resolved[name]
        if name in stack:
            raise ProfileError(f"guest-OS catalogue: derived_from loops: {' → '.join((*stack, name))}")
        if name not in entries:
            where = f" (derived_from of {stack[-1]})" if stack else ""
            raise ProfileError(f"guest-OS catalogue: no entry {name!r}{where}")
        entry = entries[name]
        parent = get(entry.derived_from, (*stack, name)) if entry.derived_from else None
        arches: dict[str, dict[str, tuple[str, ...] | None]] = {
            a: s.model_dump() for a, s in (parent.arches.items() if parent else ())}
        for arch, stated in entry.arch.items():
            merged = arches.setdefault(arch, dict.fromkeys(OsArchEntry.model_fields))
            merged.update({k: v for k, v in stated.model_dump().items() if v is not None})
        final = {}
        for arch, lists in arches.items():
            missing = [k for k, v in lists.items() if v is None]
            if missing:
                raise ProfileError(f"guest-OS catalogue: {name} on {arch} states no {', '.join(missing)} "
                                   f"(nor does an entry it derives from)")
            final[arch] = GuestOsArch(**lists)
        resolved[name] = GuestOs(name=name, summary=entry.summary, abstract=entry.abstract,
                                 lineage=(*(parent.lineage if parent else ()), name), arches=final)
        return resolved[name]

    for name in entries:
        get(name, ())
    return resolved


@lru_cache(maxsize=1)
def load_os_catalog() -> dict[str, GuestOs]:
    """The bundled guest-OS catalogue, resolved and checked against the device catalogue."""
    from guestcompat.profiles.catalog import load_catalog

    catalog = load_catalog()
    resolved = resolve(_raw())
    roles = {v: k for k, v in ROLE_LISTS.items()}
    for os_entry in resolved.values():
        for arch, lists in os_entry.arches.items():
            for list_name, role in roles.items():
                for kind in lists.supported(list_name):
                    found = catalog.kinds.get(kind)
                    if found is None or found.role != role:
                        raise ProfileError(f"guest-OS catalogue: {os_entry.name} on {arch}: {list_name} names "
                                           f"{kind!r}, which is no {role} kind of the device catalogue")
    return resolved


def guest_os(name: str) -> GuestOs:
    catalog = load_os_catalog()
    found = catalog.get(name)
    if found is None or found.abstract:
        known = ", ".join(n for n, e in catalog.items() if not e.abstract)
        what = "is an abstract base" if found else "is not in the guest-OS catalogue"
        raise ProfileError(f"guest.os: {name!r} {what} (known: {known})")
    return found
