"""The baseline interface the pytest plugin uses: compare a fingerprint with a stored file.

A baseline is ``<directory>/<profile>.json`` (``vmware/esxi-6.5`` →
``baselines/vmware/esxi-6.5.json``), the same file ``guestcompat baseline``
writes: the fingerprint normalised by the declared rules
(harness/normalize.py, harness/data/baseline-rules.toml). Differences are
the semantic ones of detection/diff.py ("vmxnet3 moved from 0b:00.0 to
13:00.0"), the same sentences ``guestcompat baseline check`` prints.

:func:`check_baseline` (what the plugin calls) does the file handling:
missing, same, different, or (re)written atomically when asked to update.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from guestcompat.detection.diff import diff
from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.errors import GuestcompatError, ProbeError
from guestcompat.harness.baseline import normalized, write_atomic


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


def normalise(fingerprint: Fingerprint) -> str:
    """The baseline text of ``fingerprint``: its JSON with the volatile fields blanked by the rules."""
    return normalized(fingerprint).to_json()


def differences(stored: str, fingerprint: Fingerprint) -> list[str]:
    """One semantic sentence per difference between a stored baseline and ``fingerprint``."""
    try:
        old = Fingerprint.from_json(stored)
    except ProbeError as exc:
        raise GuestcompatError(f"the baseline is not a fingerprint: {exc}") from None
    return [change.text for change in diff(normalized(old), normalized(fingerprint))]


def check_baseline(fingerprint: Fingerprint, path: Path, *, update: bool = False) -> BaselineResult:
    """Compare ``fingerprint`` with the baseline at ``path``; with ``update``, (re)write it instead
    when it is missing or different (atomically: a reader never sees half a file)."""
    text = normalise(fingerprint)
    stored = path.read_text() if path.exists() else None
    found = differences(stored, fingerprint) if stored is not None else None
    if found == []:
        return BaselineResult(path, "same")
    if update:
        write_atomic(path, text)
        return BaselineResult(path, "written", tuple(found or ()))
    if found is None:
        return BaselineResult(path, "missing")
    return BaselineResult(path, "different", tuple(found))
