"""What a QEMU build can present beyond its models' own ids, decided from its capabilities.

Stock QEMU shows each model's fixed ids; guestcompat's patched build
(images/patches/) adds properties that lift such limits. The compiler never
asks which build it has: it asks the capability probe whether a driver has
the identity properties (profiles/catalog/qemu.toml ``[identity]``), whether
the machine offers a layout's options (machines.toml ``layouts``) and whether
the CPU model has a property that lifts an accelerator limit
(blocked.toml ``[accelerators.<arch>.<accel>.lifted_by]``). The same profile
therefore compiles to stock QEMU's recipe on a stock binary and to the
faithful one on a patched binary, and the fidelity report says which.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from guestcompat.emulation.capabilities import Capabilities
from guestcompat.profiles.catalog import Catalog, DeviceKind, Machine, MachineLayout, PciIds

ID_FIELDS = ("vendor", "device", "subsystem_vendor", "subsystem_device", "revision", "class_code")


@lru_cache(maxsize=1)
def identity_properties() -> dict[str, str]:
    """PCI id field → the property that sets it on a build that has them."""
    data = tomllib.loads(resources.files("guestcompat.profiles").joinpath("catalog/qemu.toml").read_text())
    table = data.get("identity", {})
    return {field: table[field] for field in ID_FIELDS if field in table}


def has_identity(caps: Capabilities | None, qemu_type: str) -> bool:
    """Whether *qemu_type* on this binary takes every identity property."""
    if caps is None:
        return False
    known = caps.device_properties.get(qemu_type)
    wanted = identity_properties()
    return known is not None and len(wanted) == len(ID_FIELDS) and all(p in known for p in wanted.values())


HEX_WIDTH = {"revision": 2, "class_code": 6}


def identity_settings(real: PciIds, native: PciIds) -> dict[str, str]:
    """The identity properties that turn *native* ids into *real* ones (only fields that differ),
    in hex as lspci shows them (QEMU's integer properties take 0x… values)."""
    props = identity_properties()
    return {props[field]: f"0x{getattr(real, field):0{HEX_WIDTH.get(field, 4)}x}" for field in ID_FIELDS
            if getattr(real, field) is not None and getattr(real, field) != getattr(native, field)}


@dataclass(frozen=True)
class DeviceIdentity:
    """The ids a presented device shows, and the properties that make it show them."""

    ids: PciIds
    properties: dict[str, str]


def device_identity(kind: DeviceKind, caps: Capabilities | None) -> DeviceIdentity:
    native = kind.presented_ids()
    assert kind.qemu is not None and kind.ids is not None
    lifted = dict(kind.qemu.disks_absent_lifted_by) if disks_lifted(kind, caps) else {}
    if kind.qemu.ids_settable and has_identity(caps, kind.qemu.driver):
        return DeviceIdentity(kind.ids, {**identity_settings(kind.ids, native), **lifted})
    return DeviceIdentity(native, lifted)


def disks_lifted(kind: DeviceKind, caps: Capabilities | None) -> bool:
    """Whether this binary's driver for *kind* has every property that makes its disks visible
    (``qemu.disks_absent_lifted_by``; guestcompat's series adds them, stock QEMU has none)."""
    if caps is None or kind.qemu is None or not kind.qemu.disks_absent_lifted_by:
        return False
    known = caps.device_properties.get(kind.qemu.driver)
    return known is not None and all(p in known for p in kind.qemu.disks_absent_lifted_by)


def disks_absent(kind: DeviceKind, caps: Capabilities | None) -> str | None:
    """Why the guest sees no disk on a controller of *kind* on this binary, None when it does."""
    if kind.qemu is None or kind.qemu.disks_absent is None or disks_lifted(kind, caps):
        return None
    return kind.qemu.disks_absent


def presentable(kind: DeviceKind, caps: Capabilities | None) -> bool:
    """Whether *kind* has a QEMU model that can stand for it on this build (its driver's
    existence is checked against the binary later, with a clear error)."""
    if kind.qemu is None:
        return False
    return not kind.qemu.needs_identity or has_identity(caps, kind.qemu.driver)


def presentable_here(kind: DeviceKind, caps: Capabilities | None) -> bool:
    """Whether this very binary can present *kind* as itself: a profile's substitute is for builds
    that cannot (the driver is missing, or the real ids need identity properties it lacks)."""
    return caps is not None and presentable(kind, caps) and kind.qemu is not None \
        and caps.has_device(kind.qemu.driver)


def chosen_layout(machine: Machine, wanted: dict[str, str], firmware: str, caps: Capabilities | None,
                  machine_name: str, firmware_capabilities: frozenset[str] = frozenset()
                  ) -> tuple[MachineLayout | None, str | None]:
    """The machine layout this profile gets (``wanted``: guest address → kind it asks for there).

    ``firmware_capabilities``: what the firmware build this target would boot can do (an OVMF
    build's manifest), checked against the layout's ``firmware_needs``.
    Returns (layout, None), or (None, why not) when the profile asks for a layout's functions but
    this target cannot give them, or (None, None) when no layout matches what the profile asks.
    """
    for layout in machine.layouts:
        if any(wanted.get(str(f.address)) != f.kind for f in layout.functions):
            continue
        if firmware not in layout.firmware:
            return None, layout.firmware_reason
        if not set(layout.firmware_needs.get(firmware, ())) <= firmware_capabilities:
            return None, layout.firmware_reason
        if caps is None:
            return None, None
        options = caps.machine_properties.get(machine_name, ())
        if not all(option in options for option in layout.machine_options):
            return None, None
        if not all(has_identity(caps, f.qemu_type) for f in layout.functions):
            return None, None
        return layout, None
    return None, None


def layout_globals(layout: MachineLayout, catalog: Catalog) -> list[tuple[str, str]]:
    """``-global`` settings (``type.property``, value) that give the layout's functions their real ids."""
    settings: list[tuple[str, str]] = []
    for function in layout.functions:
        real = catalog.kind(function.kind, "layout").ids
        native = catalog.kind(function.native, "layout").ids
        assert real is not None and native is not None
        settings += [(f"{function.qemu_type}.{prop}", value)
                     for prop, value in identity_settings(real, native).items()]
    return settings
