"""The guest's VGA screen kept at the end of a boot and at its failure (issue 26, consoles).

Real boots on stock QEMU: a VMware profile (VMware SVGA, ``-display none``)
whose boot disk is empty, booted by its firmware (no ``-kernel``), stops at
SeaBIOS's "No bootable device" with nothing on the serial console; the run
must end in an error pointing to a PNG of the screen that is not blank.
"""

from __future__ import annotations

import pytest

from guestcompat.emulation.arches import resolve_target
from guestcompat.emulation.compiler import compile_profile
from guestcompat.errors import RunError
from guestcompat.harness.diskboot import attach_disk
from guestcompat.harness.qemu_runner import BootImage, boot
from guestcompat.harness.screenshot import is_black, png_size
from guestcompat.profiles.loader import load

pytestmark = [pytest.mark.boot, pytest.mark.usefixtures("leaves_nothing_behind")]


def test_empty_boot_disk_fails_with_a_picture_of_the_firmware_message(tmp_path):
    empty = tmp_path / "empty.raw"
    with open(empty, "wb") as fh:
        fh.truncate(64 << 20)
    profile = attach_disk(load("vmware/esxi-6.5"), "disk0", empty)
    compiled = compile_profile(profile, resolve_target())
    assert "-display" in compiled.argv and "vmware-svga" in " ".join(compiled.argv)
    shot = tmp_path / "screen.png"
    with pytest.raises(RunError) as err:
        boot(compiled, BootImage.firmware(), timeout=25, screenshot=shot)
    text = str(err.value)
    assert "printed nothing on its serial console within 25 s: it stopped before Linux started" in text
    assert f"the guest's screen at that moment: {shot}" in text
    assert err.value.screenshot == shot
    assert png_size(shot) == (720, 400)  # VGA text mode, 80x25 of 9x16 cells
    assert not is_black(shot)


def test_vmware_profile_boot_keeps_its_screen_and_finds_the_vmware_mouse(tmp_path):
    """A VMware profile with the backdoor: the guest's psmouse finds the VMMouse (issue 26, VMware mouse),
    and the boot keeps the screen at the end (the SeaBIOS/Linux VGA text console)."""
    from guestcompat.harness.run import run_compiled

    compiled = compile_profile(load("vmware/esxi-6.5"), resolve_target())
    shot = tmp_path / "end.png"
    outcome = run_compiled(compiled, timeout=240, screenshot=shot)
    mouse = next(c for c in outcome.checks if c.selector == "input.vmmouse")
    assert mouse.status.value == "pass" and mouse.observed == "VirtualPS/2 VMware VMMouse"
    assert "VirtualPS/2 VMware VMMouse" in outcome.fingerprint.input_devices
    assert outcome.boot.screenshot == shot and png_size(shot) == (720, 400) and not is_black(shot)
    assert outcome.to_json()["screenshot"] == str(shot)


def test_vmware_mouse_absent_where_the_kernel_does_not_detect_vmware(profile_dir):
    """The counter-case: the backdoor is there (QEMU's vmmouse too) but the DMI serial is not VMware's,
    so Linux does not detect VMware and psmouse keeps a plain PS/2 mouse: the predicted deviation."""
    from guestcompat.harness.compare import Status
    from guestcompat.harness.run import run_compiled

    profile_dir("t/notvmware", """
        extends = "vmware/esxi-6.5"
        [platform]
        kernel_hypervisor = "VMware"
        [smbios.system]
        serial = "1234"
    """)
    compiled = compile_profile(load("t/notvmware"), resolve_target())
    outcome = run_compiled(compiled, timeout=240)
    mouse = next(c for c in outcome.checks if c.selector == "input.vmmouse")
    assert mouse.status is Status.DEVIATION and mouse.observed is None and "vmmouse_detect" in mouse.note
    assert not any(name.endswith("VMMouse") for name in outcome.fingerprint.input_devices)
    assert outcome.fingerprint.input_devices  # the probe did record the input devices
