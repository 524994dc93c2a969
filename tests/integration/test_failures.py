"""What the harness does when things go wrong, on real QEMU boots.

Each case must end in one RunError that names the problem, and leave no
QEMU process and no temp dir behind.
"""

from __future__ import annotations

import dataclasses
import os
import signal

import pytest

from guestcompat.detection.payload import ProbePayload
from guestcompat.emulation.artefact import Artefact
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.arches import resolve_target
from guestcompat.errors import CompileError, RunError
from guestcompat.harness.qemu_runner import boot
from guestcompat.harness.run import boot_image
from guestcompat.images.build import ImageSpec, ensure_image
from guestcompat.profiles.loader import load

pytestmark = [pytest.mark.boot, pytest.mark.usefixtures("leaves_nothing_behind")]

SMALL = """
description = "small profile for failure tests"
[backdoor]
enabled = true
[smbios.system]
serial = "VMware-56 4d 00"
[[pci.devices]]
name = "nic"
kind = "vmxnet3"
address = "00:10.0"
mac = "00:50:56:00:00:01"
"""


@pytest.fixture
def small(profile_dir):
    profile_dir("t/small", SMALL)
    return compile_profile(load("t/small"), resolve_target())


def image_with_probe(compiled, script: str):
    payload = ProbePayload({"/probe/probe.sh": (("#!/bin/sh\n" + script + "\n").encode(), 0o755)})
    image = ensure_image(ImageSpec(arch=compiled.arch, modaliases=compiled.modaliases, payload=payload))
    return boot_image(compiled, image)


def test_corrupted_fingerprint_is_rejected_not_decoded(small):
    image = image_with_probe(small, "echo '@@GUESTCOMPAT-BEGIN v1 sha256=" + "0" * 64 + " bytes=5'\n"
                                    "echo '@@aGVsbG8='\necho '@@GUESTCOMPAT-END'\nsleep 600")
    with pytest.raises(RunError, match="fingerprint is unreadable: .*sha256"):
        boot(small, image, timeout=120)


def test_garbage_then_power_off(small):
    image = image_with_probe(small, "echo '@@GUESTCOMPAT-BEGIN v1 sha256=abc'; head -c 3000 /dev/urandom")
    with pytest.raises(RunError) as err:
        boot(small, image, timeout=120)
    assert "powered off" in str(err.value) or "unreadable" in str(err.value)


def test_guest_that_powers_off_silently(small):
    image = image_with_probe(small, "echo 'probe: nothing to say'")
    with pytest.raises(RunError, match="powered off before it delivered its fingerprint") as err:
        boot(small, image, timeout=120)
    assert "probe: nothing to say" in str(err.value)  # the console tail is shown


def test_hung_guest_times_out_with_console_tail(small):
    image = image_with_probe(small, "echo 'probe: about to hang'; sleep 600")
    with pytest.raises(RunError, match=r"did not deliver its fingerprint within 4 s") as err:
        boot(small, image, timeout=4)
    assert "command: qemu-system-x86_64" in str(err.value)


def test_qemu_killed_mid_boot(small, our_qemus):
    image = image_with_probe(small, "sleep 600")
    killed = []

    def kill_qemu(_line: str) -> None:
        for pid in our_qemus():
            if pid not in killed:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    with pytest.raises(RunError, match="QEMU was killed by signal 9 before the guest delivered"):
        boot(small, image, timeout=120, on_console=kill_qemu)


def test_qemu_refusing_an_option(small):
    broken = dataclasses.replace(small, argv=(*small.argv, "-device", "no-such-device"))
    image = image_with_probe(small, "true")
    with pytest.raises(RunError, match="QEMU refused to start .*no-such-device"):
        boot(broken, image, timeout=30)


def test_missing_qemu_binary(profile_dir):
    profile_dir("t/small", SMALL)
    with pytest.raises(CompileError, match="QEMU binary '/nonexistent/qemu-system-x86_64' not found"):
        compile_profile(load("t/small"), resolve_target(qemu_binary="/nonexistent/qemu-system-x86_64"))
    ok = compile_profile(load("t/small"), resolve_target())
    # The binary vanished between compile and boot: the runner still says so.
    compiled = dataclasses.replace(ok, argv=("/nonexistent/qemu-system-x86_64", *ok.argv[1:]))
    with pytest.raises(RunError, match="QEMU binary '/nonexistent/qemu-system-x86_64' not found"):
        boot(compiled, image_with_probe(ok, "true"), timeout=30)


def test_acpi_table_that_does_not_compile(small, tmp_path, monkeypatch):
    """A broken artefact stops the run before QEMU starts, naming the table and iasl's complaint."""
    image = image_with_probe(small, "true")
    monkeypatch.setenv("GUESTCOMPAT_CACHE", str(tmp_path))  # nothing cached: iasl really runs
    bad = Artefact("ssdt-broken.aml", "acpi-asl", 'DefinitionBlock ("", "SSDT", 2, "X", "Y", 1) { Name (ABCDE, 1) }\n')
    broken = dataclasses.replace(small, argv=(*small.argv, "-acpitable", f"file={bad.placeholder}"),
                                 artefacts=(bad,))
    with pytest.raises(RunError, match=r"(?s)cannot build ACPI table ssdt-broken.aml: iasl exited with code \d+:.*ABCDE"):
        boot(broken, image, timeout=30)
