"""``guestcompat boot-imported VMX``: import a VMware VM and boot it from its own disk.

The .vmx becomes a profile (profiles/importers/vmx.py); the VMDK its
``scsiN:M.fileName`` names is attached to that disk (diskboot.attach_disk,
the profile's ``disks[].image``); the machine boots the disk's own kernel,
initrd and root file system (diskboot.py) and the probe unit inside the guest
prints the fingerprint, which is compared with the imported profile.

``qemu_defaults=True`` is the counter-case: the same disk on QEMU's default
``pc`` machine, judged against the same profile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from guestcompat.emulation.compiler import CompiledMachine, compile_profile
from guestcompat.emulation.target import Target
from guestcompat.errors import ProfileError, RunError
from guestcompat.harness.diskboot import (DiskBoot, attach_disk, boot_from_disk, extract_boot_files,
                                          qemu_default_machine)
from guestcompat.harness.qemu_runner import boot_async
from guestcompat.harness.run import RunOutcome, _judge, new_nonce, refuse_blocked
from guestcompat.images.build import GuestImage
from guestcompat.profiles.importers.vmdk import descriptor_extents
from guestcompat.profiles.importers.vmx import import_vmx, package_file, parse_vmx
from guestcompat.profiles.importers.vmx_text import read_vmx_file
from guestcompat.profiles.model import Profile

Progress = Callable[[str], None]

#: A full systemd guest under TCG: kernel, initrd, systemd to multi-user and the probe.
DEFAULT_TIMEOUT = 300.0


def imported_profile(vmx: Path) -> tuple[Profile, str, Path]:
    """(profile imported from *vmx*, name of the disk that holds its VMDK, the VMDK's path)."""
    text = read_vmx_file(vmx)
    name = f"imported/{vmx.stem}"
    result = import_vmx(text, name, str(vmx))
    values = parse_vmx(text, str(vmx))
    # the importer names each disk after its .vmx position (scsi0:0 -> scsi0-0, ide1:0 -> ide1-0)
    disks = [(d.name, values.get(f"{d.name.replace('-', ':', 1)}.filename")) for d in result.profile.disks
             if d.media == "disk"]
    disks = [(n, f) for n, f in disks if f]
    if not disks:
        raise RunError(f"{vmx}: no disk with a fileName (on SCSI, SATA, NVMe or IDE): nothing to boot from")
    disk_name, file_name = disks[0]
    try:
        disk = package_file(file_name, vmx.parent)  # the package's own disk only (issue 13)
    except ProfileError as exc:
        raise ProfileError(f"{vmx}: {disk_name}: {exc}") from None
    if not disk.is_file():
        raise RunError(f"{vmx}: {disk_name} names {file_name}, which does not exist ({disk})")
    for extent in descriptor_extents(disk):
        try:
            package_file(str(extent), vmx.parent)
        except ProfileError as exc:
            raise ProfileError(f"{vmx}: {disk_name}: extent {exc}") from None
    return attach_disk(result.profile, disk_name, disk), disk_name, disk


def _image_record(boot: DiskBoot) -> GuestImage:
    """What RunOutcome reports as the image: the disk's own kernel and initrd."""
    return GuestImage(kernel=boot.kernel, initrd=boot.initrd, kernel_version=boot.kernel.name, packages={},
                      key=f"disk:{boot.disk}", modules=(), cmdline=f"root=UUID={boot.root_uuid} ro")


def run_imported(vmx: Path, *, target: Target | None = None, qemu_defaults: bool = False,
                 timeout: float = DEFAULT_TIMEOUT, progress: Progress | None = None,
                 screenshot: Path | None = None, guestinfo: dict[str, str] | None = None) -> RunOutcome:
    """Boot the VM *vmx* describes from its own disk and compare with its imported profile
    (on *target*: default, the architecture's own QEMU); ``guestinfo``: keys for the backdoor RPC
    channel's store (``--guestinfo``)."""
    from guestcompat.profiles.guestinfo import with_guestinfo

    say = progress or (lambda _msg: None)
    say("importing the .vmx")
    profile, _disk_name, disk = imported_profile(vmx)
    profile = with_guestinfo(profile, guestinfo or {})
    compiled = compile_profile(profile, target)
    refuse_blocked(compiled)
    say("reading the kernel and initrd from the disk")
    boot = extract_boot_files(disk)
    machine: CompiledMachine = qemu_default_machine(compiled, disk) if qemu_defaults else compiled
    say("booting the guest from its disk" + (" on QEMU's default machine" if qemu_defaults else ""))
    nonce = new_nonce()
    result = asyncio.run(boot_async(machine, boot_from_disk(compiled, boot, nonce), timeout=timeout,
                                    screenshot=screenshot))
    return _judge(compiled, _image_record(boot), result, compiled.report, say, nonce)
