"""The small baseline interface the pytest plugin uses: compare a fingerprint with a stored file.

A baseline is ``<directory>/<profile>.json`` (``vmware/esxi-6.5`` →
``baselines/vmware/esxi-6.5.json``): the fingerprint's JSON with the fields
that change from boot to boot removed. Two functions carry the policy and are
meant to be replaced by the ``guestcompat baseline`` implementation when the
branches are merged (docs/design.md, "pytest plugin"):

* :func:`normalise` — fingerprint → the baseline text;
* :func:`differences` — stored text × fingerprint → one line per difference
  (empty: the same machine).

:func:`check_baseline` (what the plugin calls) only does the file handling:
missing, same, different, or (re)written atomically when asked to update.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.errors import GuestcompatError

VOLATILE_FIELDS = ("kernel_log", "disk_rates")
"""Fields whose values change between boots of the same machine (log timestamps, measured rates)."""
_LOG_TIME = re.compile(r"^\[\s*\d+\.\d+\]\s*")


@dataclass(frozen=True)
class BaselineResult:
    """``status``: ``same``, ``different``, ``missing`` or ``written``."""

    path: Path
    status: str
    differences: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in ("same", "written")


def baseline_path(directory: Path, profile: str) -> Path:
    if not profile or profile.startswith("/") or ".." in profile.split("/"):
        raise GuestcompatError(f"baseline name {profile!r} is not a relative profile name")
    return directory / f"{profile}.json"


def _plain(fingerprint: Fingerprint) -> dict[str, Any]:
    plain = json.loads(fingerprint.to_json())
    for name in VOLATILE_FIELDS:
        plain.pop(name, None)
    plain["hypervisor_lines"] = [_LOG_TIME.sub("", line) for line in plain.get("hypervisor_lines") or []]
    return plain


def normalise(fingerprint: Fingerprint) -> str:
    """The baseline text of ``fingerprint``: stable JSON without volatile fields."""
    return json.dumps(_plain(fingerprint), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def differences(stored: str, fingerprint: Fingerprint) -> list[str]:
    """One line per JSON path whose value differs (a structural, not yet semantic, diff)."""
    try:
        old = json.loads(stored)
    except json.JSONDecodeError as exc:
        raise GuestcompatError(f"the baseline does not parse as JSON: {exc}") from None
    lines: list[str] = []
    _diff("", old, _plain(fingerprint), lines)
    return lines


def _diff(path: str, old: Any, new: Any, lines: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                lines.append(f"{sub}: removed (was {json.dumps(old[key])[:120]})")
            elif key not in old:
                lines.append(f"{sub}: added {json.dumps(new[key])[:120]}")
            else:
                _diff(sub, old[key], new[key], lines)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new)):
            _diff(f"{path}[{index}]", a, b, lines)
    elif old != new:
        lines.append(f"{path}: {json.dumps(old)[:120]} → {json.dumps(new)[:120]}")


def check_baseline(fingerprint: Fingerprint, path: Path, *, update: bool = False) -> BaselineResult:
    """Compare ``fingerprint`` with the baseline at ``path``; with ``update``, (re)write it instead
    when it is missing or different (atomically: a reader never sees half a file)."""
    text = normalise(fingerprint)
    stored = path.read_text() if path.exists() else None
    found = differences(stored, fingerprint) if stored is not None else None
    if found == []:
        return BaselineResult(path, "same")
    if update:
        _write_atomic(path, text)
        return BaselineResult(path, "written", tuple(found or ()))
    if found is None:
        return BaselineResult(path, "missing")
    return BaselineResult(path, "different", tuple(found))


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
