"""The plugin's baseline file handling (pure logic on a fingerprint decoded from a stored document)."""

from __future__ import annotations

import json

import pytest

from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.errors import GuestcompatError
from guestcompat.harness.baseline_check import baseline_path, check_baseline, normalise

DOC = {"arch": "x86_64", "kernel": "6.1.0-test", "dmi": {"sys_vendor": "VMware, Inc."},
       "kernel_log": ["[    0.000000] Linux version 6.1.0-test"],
       "hypervisor_lines": ["[    0.000000] Hypervisor detected: VMware"]}


def _fingerprint(**changes) -> Fingerprint:
    return Fingerprint.from_document({**DOC, **changes})


def test_missing_then_written_then_same_then_different(tmp_path):
    path = baseline_path(tmp_path, "vmware/esxi-6.5")
    assert path == tmp_path / "vmware" / "esxi-6.5.json"
    assert check_baseline(_fingerprint(), path).status == "missing"
    assert not path.exists()
    written = check_baseline(_fingerprint(), path, update=True)
    assert written.status == "written" and written.ok and path.read_text() == normalise(_fingerprint())
    assert [p.name for p in path.parent.iterdir()] == ["esxi-6.5.json"]   # no temp file left
    # Log timestamps vary from boot to boot: the normalisation rules drop them.
    later = _fingerprint(kernel_log=["[    0.100000] Linux version 6.1.0-test"],
                         hypervisor_lines=["[    0.2] Hypervisor detected: VMware"])
    assert check_baseline(later, path).status == "same"
    changed = check_baseline(_fingerprint(dmi={"sys_vendor": "QEMU"}), path)
    assert changed.status == "different" and not changed.ok
    assert changed.differences == ("DMI sys_vendor: VMware, Inc. → QEMU",)
    assert json.loads(path.read_text())["dmi"] == {"sys_vendor": "VMware, Inc."}   # not overwritten


@pytest.mark.parametrize("name", ["", "/etc/passwd", "../up", "a/../../b"])
def test_baseline_names_stay_inside_the_directory(tmp_path, name):
    with pytest.raises(GuestcompatError, match="not a relative profile name"):
        baseline_path(tmp_path, name)


def test_a_broken_baseline_file_is_a_clear_error(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{not json")
    with pytest.raises(GuestcompatError, match="baseline is not a fingerprint.*does not parse"):
        check_baseline(_fingerprint(), path)
