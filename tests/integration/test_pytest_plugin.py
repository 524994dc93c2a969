"""The pytest plugin, exercised the way a user's CI uses it: an inner pytest session (pytester)
that boots a real profile through the plugin's fixtures and marker."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

PROFILE = "power/pseries-vscsi"   # the quickest boot (~4-9 s)

INNER = f'''
import pytest

SEEN = []

@pytest.mark.guestcompat_profiles("{PROFILE}")
def test_passes(guestcompat_outcome):
    SEEN.append(guestcompat_outcome)
    assert guestcompat_outcome.passed

@pytest.mark.guestcompat_profiles("{PROFILE}")
def test_same_boot_and_baseline(guestcompat_profile, guestcompat_outcome, guestcompat_fingerprint,
                                guestcompat_baseline):
    assert guestcompat_profile == "{PROFILE}"
    assert guestcompat_outcome is SEEN[0], "booted twice in one session"
    assert guestcompat_fingerprint is guestcompat_outcome.fingerprint
    guestcompat_baseline(guestcompat_outcome)
'''


@pytest.mark.boot
def test_marker_boots_once_per_session_and_baselines_are_recorded_then_checked(pytester, leaves_nothing_behind):
    pytester.makepyfile(test_inner=INNER)
    baseline = pytester.path / "baselines" / f"{PROFILE}.json"

    recorded = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--guestcompat-update-baselines")
    recorded.assert_outcomes(passed=2)
    stored = json.loads(baseline.read_text())
    assert stored["format"] == "guestcompat-fingerprint"

    # A fresh boot of the same machine matches what was recorded (the normalisation drops what varies).
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)

    # A changed machine (here: the recorded one edited) fails with the path of what differs.
    stored["kernel"] = "9.9.9-other"
    baseline.write_text(json.dumps(stored))
    changed = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    changed.assert_outcomes(passed=1, failed=1)
    changed.stdout.fnmatch_lines([f"*{PROFILE} differs from its baseline*",
                                  '*kernel release: 9.9.9-other → 6.*'])
    assert "Traceback" not in changed.stdout.str()


@pytest.mark.boot
def test_under_xdist_each_worker_boots_what_it_needs(pytester):
    pytester.makepyfile(test_inner=f'''
import pytest

@pytest.mark.guestcompat_profiles("{PROFILE}", "power/pseries-pci")
def test_passes(guestcompat_outcome, guestcompat_baseline):
    assert guestcompat_outcome.passed
    guestcompat_baseline(guestcompat_outcome)
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--guestcompat-update-baselines")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*2 workers*"])
    assert sorted(p.relative_to(pytester.path / "baselines").as_posix()
                  for p in (pytester.path / "baselines").rglob("*.json")) == \
        ["power/pseries-pci.json", "power/pseries-vscsi.json"]


def test_a_boot_that_cannot_happen_fails_the_test_with_the_reason(pytester):
    pytester.makepyfile(test_inner='''
def test_unknown(guestcompat_boot):
    guestcompat_boot("no/such-profile")

def test_wrong_arch(guestcompat_boot):
    guestcompat_boot("power/pseries-vscsi", arch="x86_64")
''')
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*guestcompat: *no/such-profile*",
                                 "*guestcompat: power/pseries-vscsi on x86_64/pc/tcg: platform.arch: *"])
    assert "Traceback" not in result.stdout.str()


def test_marker_misuse_is_a_usage_error(pytester):
    pytester.makepyfile(test_inner='''
import pytest

@pytest.mark.guestcompat_profiles("vmware/esxi-6.5")
def test_forgets_the_argument():
    pass
''')
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*needs the test (or one of its fixtures) to take `guestcompat_profile`*"])
