"""Pure logic of the full guest build: initrd module resolution, vmx, boot timing, scratch sweeping."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from guestcompat.emulation import arches
from guestcompat.errors import ImageError
from guestcompat.harness.boottime import boot_timing
from guestcompat.images import cache
from guestcompat.images.fullguest import FullGuestConfig, vmx_text
from guestcompat.images.fullguest_initrd import initramfs_conf, read_aliases, resolve_modules, storage_modaliases

# Lines as the bookworm kernel's modules.alias has them (6.1.0).
ALIASES = """\
# Aliases extracted from modules themselves.
alias pci:v000015ADd000007C0sv*sd*bc*sc*i* vmw_pvscsi
alias pci:v000015ADd000007B0sv*sd*bc*sc*i* vmxnet3
alias pci:v00008086d00007010sv*sd*bc*sc*i* ata_piix
alias pci:v*d*sv*sd*bc01sc01i* ata_generic
alias pci:v00008086d00007113sv*sd*bc*sc*i* i2c_piix4
alias scsi:t-0x00* sd_mod
alias scsi:t-0x05* sr_mod
"""


@pytest.fixture
def aliases(tmp_path: Path) -> list[tuple[str, str]]:
    path = tmp_path / "modules.alias"
    path.write_text(ALIASES)
    return read_aliases(path)


def test_storage_of_pvscsi_and_the_pc_machine_comes_from_the_catalog():
    wanted = storage_modaliases(["pvscsi"], ["pc"])
    assert set(wanted) == {"controller pvscsi", "scsi disks", "pc qemu-piix3-ide"}
    # VMware's class (SAS 0x0107) and the class QEMU presents (SCSI 0x0100): both must resolve
    assert wanted["controller pvscsi"] == ("pci:v000015ADd000007C0sv000015ADsd000007C0bc01sc07i00",
                                           "pci:v000015ADd000007C0sv000015ADsd000007C0bc01sc00i00")
    assert wanted["scsi disks"] == ("scsi:t-0x00",)
    # only mass storage (base class 0x01) of the machine: not its ISA bridge, not its PM function
    assert wanted["pc qemu-piix3-ide"] == ("pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80",)


def test_modules_resolve_through_the_images_aliases(aliases):
    modules = resolve_modules(aliases, storage_modaliases(["pvscsi"], ["pc"]), "ext4")
    assert modules == ("vmw_pvscsi", "sd_mod", "ata_piix", "ata_generic", "ext4")
    conf = initramfs_conf(modules)
    assert "MODULES=list" in conf["/etc/initramfs-tools/conf.d/guestcompat.conf"]
    assert conf["/etc/initramfs-tools/modules"] == "vmw_pvscsi\nsd_mod\nata_piix\nata_generic\next4\n"


def test_a_controller_no_module_matches_is_an_error_naming_it(aliases):
    with pytest.raises(ImageError, match=r"controller lsilogic .*could not find the root disk"):
        resolve_modules(aliases, {"controller lsilogic": ("pci:v00001000d00000030sv0sd0bc01sc00i00",)}, "ext4")


def test_a_controller_without_disks_is_refused():
    with pytest.raises(ImageError, match="vmxnet3"):
        storage_modaliases(["vmxnet3"], [])


def test_vmx_names_the_configured_controller_and_vmdk():
    text = vmx_text(FullGuestConfig.for_arch(arches.get(arches.DEFAULT_ARCH), controller="lsilogic"), "disk.vmdk")
    assert 'scsi0.virtualDev = "lsilogic"\n' in text
    assert 'scsi0:0.fileName = "disk.vmdk"\n' in text
    assert 'ethernet0.pciSlotNumber = "192"\n' in text


CONSOLE = """\
[    0.000000] Linux version 6.1.0-50-amd64
gc-boot: uptime 41.27
gc-boot: begin
UserspaceTimestampMonotonic=12345678
Id=systemd-udev-trigger.service
InactiveExitTimestampMonotonic=13000000
ActiveEnterTimestampMonotonic=75500000

Id=systemd-networkd.service
InactiveExitTimestampMonotonic=20000000
ActiveEnterTimestampMonotonic=20350000

Id=systemd-journald.service
InactiveExitTimestampMonotonic=14000000
ActiveEnterTimestampMonotonic=16125000

Id=never-started.service
InactiveExitTimestampMonotonic=0
ActiveEnterTimestampMonotonic=0
gc-boot: end
@@GUESTCOMPAT-BEGIN
""".splitlines()


def test_boot_timing_reads_the_wrappers_lines():
    timing = boot_timing(CONSOLE)
    assert timing is not None
    assert timing.probe_start == 41.27
    assert timing.kernel_and_initrd == pytest.approx(12.345678)
    assert timing.systemd == pytest.approx(41.27 - 12.345678)
    assert [unit for unit, _ in timing.blame] == ["systemd-udev-trigger.service", "systemd-journald.service",
                                                 "systemd-networkd.service"]
    assert [sec for _, sec in timing.blame] == pytest.approx([62.5, 2.125, 0.35])
    assert "udev-trigger.service 62.5s" in timing.summary()


def test_boot_timing_of_a_console_without_it_is_none():
    assert boot_timing(["@@GUESTCOMPAT-BEGIN", "x"]) is None


def test_sweep_scratch_prepares_only_abandoned_dirs_of_its_label(tmp_path: Path):
    prepared: list[str] = []
    for label in ("tree", "raw"):
        (tmp_path / f"{cache.TMP_PREFIX}{label}-x").mkdir()
        lock = tmp_path / f"{cache.TMP_PREFIX}{label}-x.lock"
        lock.touch()
        old = time.time() - 3600
        os.utime(lock, (old, old))
    cache.sweep_scratch(tmp_path, label="tree", before_remove=lambda d: prepared.append(d.name))
    assert prepared == [f"{cache.TMP_PREFIX}tree-x"]
    assert not (tmp_path / f"{cache.TMP_PREFIX}tree-x").exists()
    assert (tmp_path / f"{cache.TMP_PREFIX}raw-x").exists()
