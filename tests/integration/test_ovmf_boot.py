"""EFI profiles on VMware's own layout: guestcompat's OVMF (images/ovmf_build.py, built by `make setup`)
booted on both patched QEMU releases.

Debian's OVMF hangs on the 440BX host bridge and looks for PIIX4 at 00:01.x only, so EFI profiles
kept QEMU's PIIX3 layout and lost VMCI at 00:07.7; with guestcompat's OVMF the guest must see the
same bus 0 as a BIOS profile on the patched build, and every check must pass.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from shared_boots import direct_boot

from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.target import Target
from guestcompat.harness.compare import Status
from guestcompat.images import ovmf_build
from guestcompat.profiles.loader import load
from guestcompat.qemu_process import QemuProcess

pytestmark = pytest.mark.boot

BUILDS = ["patched", "10.0-patched"]
EFI = "vmware/esxi-8.0-efi"


@pytest.fixture(scope="module")
def ovmf():
    build = ovmf_build.find_build()
    if build is None:
        pytest.fail("guestcompat's OVMF is not built for this checkout: run `make setup` "
                    "(or `guestcompat firmware build`)", pytrace=False)
    return build


@pytest.mark.parametrize("build", BUILDS)
def test_esxi_8_efi_boots_guestcompats_ovmf_on_vmwares_440bx_layout(build, ovmf):
    target = Target("x86_64", "pc", "tcg", qemu_binary=build)
    compiled = compile_profile(load(EFI), target)
    assert f"if=pflash,format=raw,unit=0,readonly=on,file={ovmf.code}" in compiled.argv
    assert any("x-piix-slot=7" in a for a in compiled.argv)

    outcome = direct_boot(EFI, target)
    fp = outcome.fingerprint
    seen = {f.address: (f.vendor, f.device) for f in fp.pci if f.address.startswith("00:0")}
    assert seen["00:00.0"] == (0x8086, 0x7190)                             # 440BX host bridge
    assert seen["00:01.0"] == (0x8086, 0x7191)                             # its AGP bridge
    assert seen["00:07.0"] == (0x8086, 0x7110)
    assert seen["00:07.1"] == (0x8086, 0x7111)
    assert seen["00:07.3"] == (0x8086, 0x7113)
    assert seen["00:07.7"] == (0x15AD, 0x0740)                             # VMCI behind PIIX4
    assert "00:01.1" not in seen and "00:01.3" not in seen                 # no PIIX3 left at 00:01.x
    assert any("efi: EFI v" in line for line in fp.kernel_log), "the guest did not boot through EFI"
    assert outcome.passed, [c.line() for c in outcome.checks if c.status is Status.FAIL]
    deviations = [c for c in outcome.checks if c.status is Status.DEVIATION]
    assert len(deviations) == len(compiled.report.deviations())


#: The boot manager's last words on each firmware when no disk holds a bootable ESP.
FIRMWARE_DONE = (b"No bootable option or device was found", b"Interactive Shell")


async def _boot_manager_console(firmware: list[str], controller: str) -> str:
    """What the firmware's boot manager prints with one blank disk behind *controller* (00:02.0)."""
    argv = ["qemu-system-x86_64", "-machine", "pc,accel=tcg", "-nodefaults", "-display", "none", "-m", "256",
            "-serial", "stdio", "-no-reboot", *firmware, "-device", f"{controller},id=hba,addr=0x2",
            "-blockdev", "driver=null-co,node-name=blank,size=1073741824,read-zeroes=on",
            "-device", "scsi-hd,drive=blank,bus=hba.0,scsi-id=0"]
    seen = b""
    async with QemuProcess(argv, purpose="ovmf-test", console=True) as qemu:
        async def read() -> None:
            nonlocal seen
            while not any(mark in seen for mark in FIRMWARE_DONE):
                chunk = await qemu.stdout.read(4096)
                if not chunk:
                    return
                seen += chunk
        await asyncio.wait_for(read(), 90)
    return seen.decode(errors="replace")


@pytest.mark.parametrize("controller", ["pvscsi", "mptsas1068"])
def test_guestcompats_ovmf_offers_a_disk_behind_vmwares_scsi_controllers_debians_does_not(
        controller, ovmf, leaves_nothing_behind):
    """The manifest's boot-pvscsi / boot-mpt-scsi are real: the boot manager makes a boot option of the
    disk behind the controller (it then finds no ESP on the blank disk); Debian's OVMF has no driver
    for either and never sees the disk."""
    ours = asyncio.run(_boot_manager_console(
        ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={ovmf.code}",
         "-drive", f"if=pflash,format=raw,unit=1,snapshot=on,file={ovmf.vars}"], controller))
    assert re.search(r'Boot\d+ "UEFI QEMU QEMU HARDDISK ?" from PciRoot\(0x0\)/Pci\(0x2,0x0\)/Scsi\(0x0,0x0\)', ours), ours
    debian = asyncio.run(_boot_manager_console(["-bios", "/usr/share/ovmf/OVMF.fd"], controller))
    assert "Interactive Shell" in debian and "Scsi(" not in debian, debian
