"""Boot an imported VM from its own disk: the disk's kernel and initrd, its root file system.

The imported disk has no bootloader (images/fullguest.py explains why), so
what a bootloader would do is done here, without mounting anything: the VMDK
is converted to a sparse raw file, ``debugfs`` reads the root file system's
UUID and dumps ``/vmlinuz`` and ``/initrd.img`` (the symlinks Debian keeps to
the installed kernel), and QEMU boots them with ``root=UUID=… ro``. Everything
after the kernel starts (the initrd finding the root disk on the emulated
controller, systemd, udev naming the NIC) is the disk's own.

The root is mounted read-only: the disk is attached read-only because it is a
shared cached artefact several runs may boot at once.

Extractions are cached under ``cache_root()/diskboot/<key>`` keyed by the disk
file's path, size and mtime.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from guestcompat import paths
from guestcompat.emulation.compiler import CompiledMachine
from guestcompat.errors import ImageError, RunError
from guestcompat.harness.qemu_runner import BootImage
from guestcompat.images import cache
from guestcompat.images.tools import run_tool
from guestcompat.profiles.model import Profile


@dataclass(frozen=True)
class DiskBoot:
    """What a bootloader would have loaded from the disk."""

    disk: Path
    kernel: Path
    initrd: Path
    root_uuid: str


def _key(disk: Path) -> str:
    st = disk.stat()
    return hashlib.sha256(f"{disk.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:24]


def _format(disk: Path) -> str:
    return "vmdk" if disk.suffix.lower() == ".vmdk" else "qcow2" if disk.suffix.lower() == ".qcow2" else "raw"


def extract_boot_files(disk: Path) -> DiskBoot:
    """The kernel, initrd and root UUID of the ext4 file system on *disk* (cached)."""
    if not disk.is_file():
        raise RunError(f"disk image {disk} does not exist")
    parent = paths.cache_root() / "diskboot"
    final = parent / _key(disk)
    meta = cache.read_json(final / "boot.json")
    if not isinstance(meta, dict):
        with cache.locked(parent / f"{final.name}.lock"):
            meta = cache.read_json(final / "boot.json")
            if not isinstance(meta, dict):
                with cache.building_dir(final) as out, cache.scratch_dir(parent, "raw") as scratch:
                    meta = _extract(disk, scratch / "disk.raw", out)
                    cache.write_json_atomic(out / "boot.json", meta)
    return DiskBoot(disk, final / "vmlinuz", final / "initrd.img", meta["root_uuid"])


def _extract(disk: Path, raw: Path, out: Path) -> dict:
    run_tool(["qemu-img", "convert", "-f", _format(disk), "-O", "raw", str(disk), str(raw)],
             what=f"qemu-img convert of {disk}")
    stats = run_tool(["debugfs", "-R", "stats", str(raw)], what=f"debugfs stats of {disk}")
    match = re.search(r"^Filesystem UUID:\s*([0-9a-f-]{36})", stats, re.MULTILINE)
    if match is None:
        raise ImageError(f"{disk}: no ext2/3/4 file system UUID found (a partitioned disk or another file system "
                         f"is not supported: the root file system must fill the disk)")
    for link, name in (("/vmlinuz", "vmlinuz"), ("/initrd.img", "initrd.img")):
        target = run_tool(["debugfs", "-R", f"stat {link}", str(raw)], what=f"debugfs stat {link}")
        fast = re.search(r'Fast link dest:\s*"([^"]+)"', target)
        source = fast[1] if fast else link
        source = source if source.startswith("/") else f"/{source}"
        run_tool(["debugfs", "-R", f"dump {source} {out / name}", str(raw)], what=f"debugfs dump {source}")
        if not (out / name).is_file() or (out / name).stat().st_size == 0:
            raise ImageError(f"{disk}: {link} ({source}) is missing from the disk's root file system")
    return {"root_uuid": match[1]}


#: What the bootloader adds for a test boot of a full guest (measured, see README "Full guest"):
#: ``mitigations=off``: the CPU model (qemu64, no ARCH_CAPABILITIES) makes the kernel assume
#: Meltdown and switch page tables (PTI) on every syscall and interrupt, and under TCG every
#: CR3 write flushes QEMU's whole soft TLB: systemd's thousands of syscalls pay for it.
#: Nothing the probe records depends on it. ``fsck.mode=skip``: the root is read-only and
#: freshly made by mke2fs; neither the initrd nor systemd checks it.
TEST_BOOT_CMDLINE = ("mitigations=off", "fsck.mode=skip")


def boot_from_disk(compiled: CompiledMachine, boot: DiskBoot, nonce: str | None = None) -> BootImage:
    """The BootImage of a machine booting *boot*'s kernel with its root on the attached disk (``nonce``:
    the run's, on the command line as ``guestcompat.run=``; the disk's probe records it)."""
    return BootImage(boot.kernel, boot.initrd,
                     (*compiled.arch.kernel_cmdline(), f"root=UUID={boot.root_uuid}", "ro", *TEST_BOOT_CMDLINE,
                      *compiled.guest_cmdline, *((f"guestcompat.run={nonce}",) if nonce else ())))


def attach_disk(profile: Profile, disk_name: str, image: Path) -> Profile:
    """*profile* with the disk image *image* on its disk *disk_name* (the profile's ``disks[].image``).

    The small interface between an imported .vmx (whose ``scsiN:M.fileName``
    names the VMDK) and the compiler, which puts ``image`` on the argv.
    """
    names = [d.name for d in profile.disks]
    if disk_name not in names:
        raise RunError(f"profile {profile.name} has no disk {disk_name!r} (disks: {', '.join(names) or 'none'})")
    disks = tuple(d.model_copy(update={"image": str(image.resolve())}) if d.name == disk_name else d
                  for d in profile.disks)
    return profile.model_copy(update={"disks": disks})


def qemu_default_machine(compiled: CompiledMachine, disk: Path, memory_mb: int = 1024) -> CompiledMachine:
    """The counter-case: the same disk on QEMU's default ``pc`` machine (QEMU's defaults for
    everything: e1000 NIC at 00:03.0, the disk on the default interface (IDE)). The profile
    and its fidelity report are kept, so the verdict says what the profile lost."""
    argv = (compiled.argv[0], "-machine", compiled.arch.default_machine, "-m", str(memory_mb), "-display", "none",
            "-drive", f"file={str(disk).replace(',', ',,')},format={_format(disk)},snapshot=on")
    return dataclasses.replace(compiled, argv=argv, artefacts=())
