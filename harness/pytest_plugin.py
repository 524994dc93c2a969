"""pytest plugin (entry point ``pytest11``): boot profiles from a user's own test suite.

* ``guestcompat_boot`` (session fixture): a factory ``boot(profile, arch=None, machine=None,
  accel="tcg", qemu=None)`` returning the :class:`RunOutcome`; each (profile, target) boots
  once per session, so many tests can look at one boot.
* ``@pytest.mark.guestcompat_profiles("vmware/esxi-6.5", ...)`` parametrizes a test over
  profiles through the ``guestcompat_profile`` argument; ``guestcompat_outcome`` and
  ``guestcompat_fingerprint`` then give that profile's (cached) boot.
* ``guestcompat_baseline``: a function ``check(outcome_or_fingerprint, name=None)`` that
  compares with ``<baselines>/<profile>.json`` and fails the test on a difference;
  ``--guestcompat-update-baselines`` writes the files instead.

Under pytest-xdist every worker is its own process with its own session: the
boot cache lives in the session fixture (no module state), so a worker boots
what its own tests need, and baseline files are written atomically.
A boot that fails (QEMU error, hung guest) fails the tests that need it with
the harness's message, once per session, not with a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.emulation.target import Target
from guestcompat.errors import GuestcompatError

MARKER = "guestcompat_profiles"
PARAM = "guestcompat_profile"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("guestcompat", "guestcompat guest boots")
    group.addoption("--guestcompat-update-baselines", action="store_true", default=False,
                    help="write the guestcompat baselines instead of comparing with them")
    group.addoption("--guestcompat-baselines", default=None, metavar="DIR",
                    help="directory of baseline files <profile>.json (default: ini guestcompat_baselines, "
                         "else baselines/ under the rootdir)")
    group.addoption("--guestcompat-timeout", type=float, default=120.0, metavar="S",
                    help="seconds to wait for each guest's fingerprint (default 120)")
    parser.addini("guestcompat_baselines", "directory of guestcompat baseline files", default="baselines")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(*profiles): run the test once per guestcompat profile "
                                       f"(the profile name arrives as the `{PARAM}` argument)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None:
        return
    if not marker.args or not all(isinstance(a, str) for a in marker.args):
        raise pytest.UsageError(f"@pytest.mark.{MARKER} needs profile names, e.g. "
                                f"@pytest.mark.{MARKER}(\"vmware/esxi-6.5\")")
    if PARAM not in metafunc.fixturenames:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: @pytest.mark.{MARKER} needs the test (or one "
                                f"of its fixtures) to take `{PARAM}`, `guestcompat_outcome` or "
                                f"`guestcompat_fingerprint`")
    metafunc.parametrize(PARAM, marker.args, ids=list(marker.args))


Boot = Callable[..., Any]


@pytest.fixture(scope="session")
def guestcompat_boot(pytestconfig: pytest.Config) -> Boot:
    """Factory: boot a profile (once per session and target) and return its RunOutcome."""
    from guestcompat.emulation import arches
    from guestcompat.harness.run import run_profile
    from guestcompat.profiles.loader import load

    timeout = pytestconfig.getoption("--guestcompat-timeout")
    cache: dict[tuple[str, Target], Any] = {}

    def boot(profile: str, *, arch: str | None = None, machine: str | None = None, accel: str = "tcg",
             qemu: str | None = None):
        try:
            target = arches.resolve_target(load(profile).platform.arch, arch=arch, machine=machine, accel=accel,
                                           qemu_binary=qemu)
        except GuestcompatError as exc:
            pytest.fail(f"guestcompat: {exc}", pytrace=False)
        key = (profile, target)
        if key not in cache:
            try:
                cache[key] = run_profile(profile, target, timeout=timeout)
            except GuestcompatError as exc:
                cache[key] = exc
        found = cache[key]
        if isinstance(found, GuestcompatError):
            pytest.fail(f"guestcompat: {profile} on {target}: {found}", pytrace=False)
        return found

    return boot


@pytest.fixture
def guestcompat_profile(request: pytest.FixtureRequest) -> str:
    """The profile of a test parametrized by @pytest.mark.guestcompat_profiles."""
    raise pytest.UsageError(f"{request.node.nodeid}: `{PARAM}` comes from "
                            f"@pytest.mark.{MARKER}(\"vendor/profile\", ...) on the test")


@pytest.fixture
def guestcompat_outcome(guestcompat_boot: Boot, guestcompat_profile: str):
    """The RunOutcome of the test's profile (booted once per session)."""
    return guestcompat_boot(guestcompat_profile)


@pytest.fixture
def guestcompat_fingerprint(guestcompat_outcome) -> Fingerprint:
    """What the guest of the test's profile saw."""
    return guestcompat_outcome.fingerprint


@pytest.fixture(scope="session")
def guestcompat_baselines_dir(pytestconfig: pytest.Config) -> Path:
    chosen = pytestconfig.getoption("--guestcompat-baselines") or pytestconfig.getini("guestcompat_baselines")
    path = Path(chosen)
    return path if path.is_absolute() else pytestconfig.rootpath / path


@pytest.fixture
def guestcompat_baseline(pytestconfig: pytest.Config, guestcompat_baselines_dir: Path):
    """``check(outcome_or_fingerprint, name=None)``: compare with the stored baseline, fail on a
    difference or a missing file; with --guestcompat-update-baselines write it instead."""
    from guestcompat.harness.baseline_check import baseline_path, check_baseline

    update = pytestconfig.getoption("--guestcompat-update-baselines")

    def check(subject, name: str | None = None):
        fingerprint = subject if isinstance(subject, Fingerprint) else subject.fingerprint
        if name is None:
            if isinstance(subject, Fingerprint):
                raise pytest.UsageError("guestcompat_baseline(fingerprint) needs name= (the profile name)")
            name = subject.compiled.profile.name
        try:
            result = check_baseline(fingerprint, baseline_path(guestcompat_baselines_dir, name), update=update)
        except GuestcompatError as exc:
            pytest.fail(f"guestcompat baseline {name}: {exc}", pytrace=False)
        if result.status == "missing":
            pytest.fail(f"no baseline for {name} at {result.path}; record it with --guestcompat-update-baselines",
                        pytrace=False)
        if result.status == "different":
            shown = "\n  ".join(result.differences[:20])
            more = f"\n  … and {len(result.differences) - 20} more" if len(result.differences) > 20 else ""
            pytest.fail(f"{name} differs from its baseline {result.path} ({len(result.differences)} "
                        f"differences):\n  {shown}{more}", pytrace=False)
        return result

    return check
