"""Fleet pieces that need no daemon: what the report says a QEMU build is, an embedded root's capacity,
and ``fleet clean`` refusing a host it cannot reach (clear message, exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from guestcompat.harness.fleet import HostInfo, probe
from guestcompat.harness.libvirt_runner import _qemu_build

GUESTCOMPAT = str(Path(sys.executable).with_name("guestcompat"))


def test_the_qemu_build_names_the_emulator_its_version_and_package():
    version = {"qemu": {"major": 7, "minor": 2, "micro": 22}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}
    assert _qemu_build("qemu-system-x86_64", version) == \
        "qemu-system-x86_64 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"
    assert _qemu_build("/opt/q/qemu-system-x86_64", {"qemu": {"major": 8, "minor": 0, "micro": 0}, "package": ""}) == \
        "/opt/q/qemu-system-x86_64 8.0.0"
    assert _qemu_build("qemu-system-ppc64", None) == "qemu-system-ppc64"  # the guest was gone before QMP answered


def test_an_embedded_root_is_not_probed_and_runs_jobs_per_host_or_one():
    assert probe("qemu:///embed?root=/tmp/x", set(), 512, None) == HostInfo("qemu:///embed?root=/tmp/x", 1)
    assert probe("qemu:///embed?root=/tmp/x", set(), 512, 3).jobs == 3


def test_an_unreachable_host_at_probe_keeps_its_share_with_the_reason():
    uri = "qemu+unix:///system?socket=/nonexistent/guestcompat-test/sock"
    info = probe(uri, set(), 512, None)
    assert info.jobs == 1 and not info.probed and not info.cannot
    assert info.error.startswith(f"cannot open libvirt connection {uri}")


def test_fleet_clean_of_an_unreachable_host_is_a_clear_error():
    uri = "qemu+unix:///system?socket=/nonexistent/guestcompat-test/sock"
    cli = subprocess.run([GUESTCOMPAT, "fleet", "clean", uri], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 2 and "Traceback" not in cli.stderr
    assert f"{uri}: cannot open libvirt connection" in cli.stderr
    assert "could not clean 1 of 1 hosts" in cli.stderr
