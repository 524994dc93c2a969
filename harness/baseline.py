"""Baselines: a profile's normalised fingerprint stored as reviewable JSON.

``record`` boots a profile and writes ``<dir>/<profile>.json`` (the profile
name's ``/`` becomes a subdirectory, ``baselines/vmware/esxi-6.5.json``);
``check`` boots again and returns the semantic changes (detection/diff.py)
against the stored file.  Both sides pass through the same declared
normalisation (normalize.py), so a rule added later applies to old
baselines too.  Files are written atomically: a temp file in the same
directory, then ``os.replace``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from guestcompat.detection.diff import Change, diff
from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.errors import GuestcompatError

from .normalize import BaselineError, Rule, default_rules, normalize_plain

DEFAULT_DIR = Path("baselines")


def baseline_path(profile: str, directory: Path = DEFAULT_DIR) -> Path:
    if not profile or profile.startswith("/") or ".." in profile.split("/"):
        raise BaselineError(f"profile name {profile!r} cannot name a baseline file")
    return directory / f"{profile}.json"


def normalized(fp: Fingerprint, rules: tuple[Rule, ...] | None = None) -> Fingerprint:
    """*fp* with every volatile field blanked by the declared rules."""
    plain = json.loads(fp.to_json())
    return Fingerprint.from_json(json.dumps(normalize_plain(plain, default_rules() if rules is None else rules)))


def write_atomic(path: Path, text: str) -> None:
    """Write *text* to *path* so readers see the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def store(fp: Fingerprint, path: Path) -> Fingerprint:
    """Normalise *fp* and write it to *path*; returns what was stored."""
    stored = normalized(fp)
    write_atomic(path, stored.to_json())
    return stored


def load_fingerprint(path: Path) -> Fingerprint:
    """A fingerprint file, or the ``fingerprint`` of a ``run --json`` document."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read: {exc}") from None
    try:
        plain = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise BaselineError(f"{path}: not JSON: {exc}") from None
    if isinstance(plain, dict) and "fingerprint" in plain and "format" not in plain:
        plain = plain["fingerprint"]
    try:
        return Fingerprint.from_json(json.dumps(plain))
    except GuestcompatError as exc:
        raise BaselineError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class CheckResult:
    path: Path
    changes: tuple[Change, ...]

    @property
    def same(self) -> bool:
        return not self.changes


def compare_files(a: Path, b: Path) -> tuple[Change, ...]:
    """Semantic changes from fingerprint file *a* to *b*, both normalised."""
    return diff(normalized(load_fingerprint(a)), normalized(load_fingerprint(b)))


def check(fp: Fingerprint, path: Path) -> CheckResult:
    """Compare a freshly booted fingerprint with the baseline at *path*."""
    if not path.exists():
        raise BaselineError(f"no baseline at {path} (record one with `guestcompat baseline record`)")
    return CheckResult(path, diff(normalized(load_fingerprint(path)), normalized(fp)))
