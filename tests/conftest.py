"""Shared fixtures: writing throw-away profiles into a search directory."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# The suite runs on a shared 2-core host whose load swings (other engineers' QEMU guests): a property
# test's first example can take 30x its usual time, which is no finding.  Timing checks off; the
# number of examples and every assertion stay as the tests state them.
settings.register_profile("shared-host", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared-host")


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
