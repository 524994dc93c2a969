"""What every importer returns: the profile it made, validated, and what it could not reproduce.

An importer builds TOML-ready data (only what differs from the profile it
``extends``, so the file a user reviews stays short) and hands it to
``loader.load_mapping``: the result carries both that data, for writing, and
the typed :class:`Profile` it resolves to, for compiling and booting, so no
caller writes a temp file or changes the profile search path to load it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import tomli_w

from guestcompat.profiles.loader import load_mapping
from guestcompat.profiles.model import Profile


@dataclass(frozen=True)
class ImportResult:
    name: str
    profile: Profile
    """The imported profile, resolved (``extends``) and validated."""
    data: Mapping[str, Any]
    """The TOML-ready data ``profile`` was loaded from (``toml()`` writes it)."""
    notes: tuple[str, ...] = ()
    """What the source describes that the profile does not reproduce, one sentence each."""
    inferred: tuple[str, ...] = ()
    """Facts the profile states that the source did not hold: ``key: how (why)`` (capture imports)."""

    def toml(self) -> str:
        return tomli_w.dumps(dict(self.data))


def imported(name: str, data: Mapping[str, Any], notes: list[str] | tuple[str, ...], source: str,
             inferred: list[str] | tuple[str, ...] = ()) -> ImportResult:
    """Validate ``data`` as profile ``name``; errors name ``source`` (the file imported from)."""
    return ImportResult(name, load_mapping(data, name, origin=f"{source} (imported as {name})"), data, tuple(notes),
                        tuple(inferred))
