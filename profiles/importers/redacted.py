"""Values people redact before they paste a capture, read as unknown instead of as facts.

Careful people blank serials and UUIDs before sharing (``xxxxxxxx-xxxx-…``,
``****``, ``<redacted>``, inxi's ``<filter>``, a serial with its bytes
replaced: ``VMware-56 4d xx xx …``).  Taken literally such a value fails
validation (a UUID of x's) and stops the import, or worse, becomes a
"fact" the replay scores.  :func:`without_redacted` drops each one from the
dmidecode structures and names it, so the rest of the capture imports and
the report says which fields were redacted.
"""

from __future__ import annotations

import re
from dataclasses import replace

from guestcompat.detection.tools import Dmidecode

_MARKERS = re.compile(
    r"^(?:<\s*(?:redacted|removed|hidden|filter|filtered|masked|snip|private|censored)\s*>"
    r"|\[\s*(?:redacted|removed|hidden|masked|snip)\s*\]"
    r"|\(?(?:redacted|removed|hidden|masked)\)?"
    r"|\*{3,}|#{3,}|\?{3,}|\.{3,}|…)$", re.IGNORECASE)
_ID_CHARS = frozenset("0123456789abcdefABCDEFxX*# -")


def _masked_id(text: str) -> bool:
    """A UUID or VMware serial whose hex digits were (all or partly) replaced by x/X/*/#: only id
    characters, at least 8 of them digits or masks, two masks in a row.  Checked character by
    character: a regex with nested repeats took exponential time on a long near-miss."""
    body = text[7:] if text.startswith("VMware-") else text
    if not 8 <= len(body) <= 80 or not set(body) <= _ID_CHARS:
        return False
    return sum(c not in " -" for c in body) >= 8 and re.search(r"[xX*#]{2}", body) is not None


def is_redacted(value: str) -> bool:
    text = value.strip()
    return bool(text) and bool(_MARKERS.match(text) or _masked_id(text) or re.fullmatch(r"[xX*#]{4,}", text))


def without_redacted(dmi: Dmidecode | None) -> tuple[Dmidecode | None, list[str]]:
    """``dmi`` without redacted field values, and ``"<title> <field> (<value>)"`` for each one dropped."""
    if dmi is None:
        return None, []
    dropped: list[str] = []
    structures = []
    for structure in dmi.structures:
        kept = {}
        for key, value in structure.fields.items():
            if is_redacted(value):
                dropped.append(f"{structure.title or f'type {structure.type}'} {key} ({value[:40]!r})")
            else:
                kept[key] = value
        structures.append(replace(structure, fields=kept) if len(kept) != len(structure.fields) else structure)
    return (Dmidecode(dmi.smbios_version, tuple(structures)) if dropped else dmi), dropped
