"""Shared fixtures: writing throw-away profiles into a search directory."""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# The suite runs on a shared 2-core host whose load swings (other engineers' QEMU guests): a property
# test's first example can take 30x its usual time, which is no finding.  Timing checks off; the
# number of examples and every assertion stay as the tests state them.
settings.register_profile("shared-host", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared-host")

import fuzz_tally
from shared_boots import ENV as SHARED_BOOTS_ENV


def pytest_sessionfinish(session: pytest.Session) -> None:
    fuzz_tally.sessionfinish(session)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """The fuzz targets' tallies (tests/fuzz; ``make fuzz``), added up over the xdist workers."""
    fuzz_tally.summary(terminalreporter, config)


def pytest_configure(config: pytest.Config) -> None:
    """The controller makes the session's shared-boot directory; xdist workers inherit its path."""
    fuzz_tally.configure(config)
    if not hasattr(config, "workerinput") and SHARED_BOOTS_ENV not in os.environ:
        config._shared_boots = tempfile.mkdtemp(prefix="gctest-boots-")  # type: ignore[attr-defined]
        os.environ[SHARED_BOOTS_ENV] = config._shared_boots  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    made = getattr(config, "_shared_boots", None)
    if made:
        shutil.rmtree(made, ignore_errors=True)
        os.environ.pop(SHARED_BOOTS_ENV, None)


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
