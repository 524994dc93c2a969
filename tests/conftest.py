"""Shared fixtures: writing throw-away profiles into a search directory."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest


@pytest.fixture
def profile_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A user profile directory on GUESTCOMPAT_PROFILE_PATH; call it with (name, toml) to add a profile."""
    monkeypatch.setenv("GUESTCOMPAT_PROFILE_PATH", str(tmp_path))

    def write(name: str, text: str) -> Path:
        path = tmp_path / f"{name}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    return write
