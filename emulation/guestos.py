"""Refuse profile × guest OS × architecture combinations the guest could not use.

A device the target presents (after substitution: what the guest will see)
must be one the profile's ``guest.os`` has a driver for on this
architecture, and the firmware one it boots from; otherwise the profile is
refused before boot, naming the device and listing what the OS supports.
"""

from __future__ import annotations

from guestcompat.emulation.arches.base import ArchStrategy
from guestcompat.emulation.pci import PciPlan
from guestcompat.emulation.vio import VioPlan
from guestcompat.errors import CompileError
from guestcompat.profiles.catalog import DeviceKind
from guestcompat.profiles.model import Profile
from guestcompat.profiles.oscatalog import LIST_TITLES, ROLE_LISTS, guest_os


def check_guest_os(profile: Profile, arch: ArchStrategy, pci: PciPlan, vio: VioPlan) -> None:
    if profile.guest.os is None:
        return
    entry = guest_os(profile.guest.os)
    name = entry.name
    where = entry.arches.get(arch.name)
    if where is None:
        raise CompileError(f"guest.os: {name} does not run on {arch.name} "
                           f"(it runs on: {', '.join(sorted(entry.arches))})")
    firmware = profile.platform.firmware or arch.default_firmware
    if firmware not in where.firmware:
        raise CompileError(f"platform.firmware: {name} on {arch.name} does not boot from {firmware}; "
                           f"supported firmware: {', '.join(where.firmware)}")
    presented: list[tuple[str, DeviceKind]] = []
    for device in profile.pci.devices:
        shown = pci.by_name.get(device.name)
        if shown is not None and shown.qemu_id is not None:
            presented.append((f"pci.devices[{device.name}]", shown.kind))
    for device in profile.vio.devices:
        shown = vio.by_name.get(device.name)
        if shown is not None and shown.qemu_id is not None:
            presented.append((f"vio.devices[{device.name}]", shown.kind))
    for key, kind in presented:
        list_name = ROLE_LISTS.get(kind.role)
        if list_name is None:
            continue
        supported = where.supported(list_name)
        if kind.name not in supported:
            raise CompileError(f"{key}: {name} on {arch.name} has no driver for {kind.name}; supported "
                               f"{LIST_TITLES[list_name]}: {', '.join(supported) or 'none'}")
