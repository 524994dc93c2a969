"""A targeted initrd for the full guest: only the modules that find its root disk.

Debian's default ``MODULES=most`` initrd of the bookworm kernel is 36 MB of
gzip (130 MB unpacked): under TCG the kernel spends seconds inflating it and
the initrd's udev walks every module alias. ``MODULES=dep`` cannot be used at
build time (it inspects the *build host's* devices), so the list is resolved
from data instead:

* the PCI ids of every storage controller the disk must boot on: the VM's own
  controller (catalog kind, both VMware's ids and the ids QEMU presents) and
  the mass-storage functions (PCI base class 0x01) of the QEMU machine types
  the same disk is also booted on (the counter-case's ``pc``: PIIX3 IDE);
* the disk bus's modaliases (``scsi:t-0x00`` → ``sd_mod``; libata disks are
  SCSI disks too);
* the root file system's module (``ext4``),

each matched against the image's own ``modules.alias``, so a kernel that
renames a driver still resolves (or the build fails naming the device).
mkinitramfs pulls in the dependencies (``modules.dep``) of what is listed.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path

from guestcompat.errors import ImageError
from guestcompat.profiles.catalog import load_catalog

#: PCI base class of mass storage controllers.
MASS_STORAGE = 0x01


def storage_modaliases(controllers: Iterable[str], machines: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """{what: modaliases} of the storage a disk must be found on: the catalog kinds *controllers*
    (their disk bus included) and the mass-storage functions of the QEMU machine types *machines*."""
    catalog = load_catalog()
    wanted: dict[str, tuple[str, ...]] = {}
    for name in controllers:
        kind = catalog.kind(name, "full guest controller")
        if kind.ids is None or kind.disk_bus is None:
            raise ImageError(f"full guest controller {name!r} is not a PCI storage controller with disks")
        wanted[f"controller {name}"] = tuple(dict.fromkeys((kind.ids.modalias(), kind.presented_ids().modalias())))
        if catalog.disk_buses[kind.disk_bus].modaliases:  # NVMe namespaces need no driver of their own
            wanted[f"{kind.disk_bus} disks"] = catalog.disk_buses[kind.disk_bus].modaliases
    for machine in machines:
        for fixed in catalog.machine(machine).fixed:
            ids = catalog.kind(fixed.kind, f"machine {machine}").presented_ids()
            if ids.class_code is not None and ids.class_code >> 16 == MASS_STORAGE:
                wanted[f"{machine} {fixed.kind}"] = (ids.modalias(),)
    return wanted


def read_aliases(modules_alias: Path) -> list[tuple[str, str]]:
    """(pattern, module) pairs of a kernel's ``modules.alias``."""
    pairs = []
    for line in modules_alias.read_text().splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "alias":
            pairs.append((words[1], words[2]))
    return pairs


def resolve_modules(aliases: list[tuple[str, str]], wanted: dict[str, tuple[str, ...]],
                    fs_type: str) -> tuple[str, ...]:
    """Module names for *wanted* (first match per modalias, as modprobe would load) plus *fs_type*.

    A device whose modaliases match no module is an error: that initrd could not find the root disk.
    """
    modules: list[str] = []
    for what, modaliases in wanted.items():
        found = [module for alias in modaliases for pattern, module in aliases if fnmatch.fnmatchcase(alias, pattern)]
        if not found:
            raise ImageError(f"no kernel module of the guest matches {what} ({', '.join(modaliases)}): "
                             f"its initrd could not find the root disk there")
        modules.extend(found)
    modules.append(fs_type)
    return tuple(dict.fromkeys(modules))


def initramfs_conf(modules: Iterable[str]) -> dict[str, str]:
    """The initramfs-tools files (path in the guest → content) that build the targeted initrd.

    gzip: the guest has no zstd binary (minbase) and mkinitramfs would fall back to it with a warning.
    """
    return {
        "/etc/initramfs-tools/conf.d/guestcompat.conf": "# guestcompat: only the listed modules (fullguest_initrd.py)\n"
                                                        "MODULES=list\nCOMPRESS=gzip\n",
        "/etc/initramfs-tools/modules": "".join(f"{m}\n" for m in modules),
    }
