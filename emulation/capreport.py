"""``guestcompat capabilities``: what this host's QEMU can present, per catalogue kind.

For every catalogue kind QEMU can present (``qemu.driver``): whether this
build has the driver, and which of the properties the compiler sets on it
(the kind's ``qemu.properties``, plus disk properties for a disk bus's
device) exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guestcompat.emulation.capabilities import Capabilities
from guestcompat.profiles.catalog import Catalog



def needs() -> dict[str, dict[str, list[str]]]:
    """profiles/catalog/qemu.toml [needs]: the properties the compiler sets, per role, bus and object."""
    import tomllib
    from importlib import resources

    return tomllib.loads(resources.files("guestcompat.profiles").joinpath("catalog/qemu.toml").read_text())["needs"]


@dataclass(frozen=True)
class DriverStatus:
    kind: str
    role: str
    driver: str
    present: bool
    properties: dict[str, bool]
    """Property the compiler needs → whether this build has it."""


def driver_statuses(caps: Capabilities, catalog: Catalog) -> list[DriverStatus]:
    wanted = needs()
    rows = []
    for name, kind in sorted(catalog.kinds.items()):
        if not kind.qemu or not kind.qemu.driver:
            continue
        props = (*wanted["buses"].get(kind.bus, ()), *wanted["roles"].get(kind.role, ()), *(kind.qemu.properties or ()))
        rows.append(_status(caps, name, kind.role, kind.qemu.driver, tuple(dict.fromkeys(props))))
    for name, bus in sorted(catalog.disk_buses.items()):
        props = ("drive", *bus.unit_properties, *bus.identity.values())
        rows.append(_status(caps, f"disk on {name}", "disk", bus.qemu_device, tuple(dict.fromkeys(props))))
        if bus.cdrom_device:
            rows.append(_status(caps, f"CD-ROM on {name}", "disk", bus.cdrom_device,
                                tuple(dict.fromkeys((*bus.unit_properties, *bus.identity.values())))))
    return rows


def object_statuses(caps: Capabilities) -> dict[str, dict[str, bool] | None]:
    """Object type → {property: present}, None when this build lacks the type."""
    out: dict[str, dict[str, bool] | None] = {}
    for typename, props in needs()["objects"].items():
        known = caps.object_properties.get(typename)
        out[typename] = None if known is None else {p: p in known for p in props}
    return out


def _status(caps: Capabilities, kind: str, role: str, driver: str, needed: tuple[str, ...]) -> DriverStatus:
    present = caps.has_device(driver)
    known = set(caps.device_properties.get(driver, ()))
    return DriverStatus(kind, role, driver, present, {p: p in known for p in needed})


def build_features(caps: Capabilities, catalog: Catalog, arch: str) -> dict[str, bool]:
    """What of guestcompat's patch series (images/patches/) this binary has, by the properties the
    probe found (never by the binary's name): stock QEMU has none of them."""
    from guestcompat.emulation.recipes import has_identity, identity_properties
    from guestcompat.profiles.blocked import load_blocked

    features = {"pci identity (" + ", ".join(identity_properties().values()) + ")":
                has_identity(caps, "pci-bridge")}
    cpu_model = next(iter(caps.cpu_properties), None)
    cpu_props = caps.cpu_properties.get(cpu_model, ()) if cpu_model else ()
    for accel, facts in load_blocked().accelerators.get(arch, {}).items():
        for fact, prop in facts.lifted_by.items():
            features[f"{accel}: {fact} ({prop} on -cpu {cpu_model})"] = prop in cpu_props
    for name, kind in sorted(catalog.kinds.items()):
        if kind.qemu and kind.qemu.disks_absent_lifted_by:
            props = ", ".join(kind.qemu.disks_absent_lifted_by)
            known = caps.device_properties.get(kind.qemu.driver, ())
            features[f"{name}: disks visible ({props} on {kind.qemu.driver})"] = \
                all(p in known for p in kind.qemu.disks_absent_lifted_by)
        elif kind.qemu and kind.nearest:  # a model only guestcompat's series has
            features[f"{name}: {kind.qemu.driver} ({kind.summary})"] = caps.has_device(kind.qemu.driver)
    for name, machine in catalog.machines.items():
        for layout in machine.layouts:
            options = ", ".join(layout.machine_options)
            features[f"machine {name} layout {layout.name} ({options})"] = \
                all(o in caps.machine_properties.get(name, ()) for o in layout.machine_options)
    return features


def firmware_json(builds: dict[str, Any], caps: Capabilities, catalog: Catalog) -> dict[str, Any]:
    """Firmware → guestcompat's build of it (None: not built): which image, which options, and the
    machine layouts it makes possible (each also needs the binary's machine options)."""
    out: dict[str, Any] = {}
    for firmware, build in builds.items():
        if build is None:
            out[firmware] = None
            continue
        layouts = [{"machine": name, "layout": layout.name,
                    "binary_has_options": all(o in caps.machine_properties.get(name, ())
                                              for o in layout.machine_options)}
                   for name, machine in catalog.machines.items() for layout in machine.layouts
                   if firmware in layout.firmware_needs
                   and set(layout.firmware_needs[firmware]) <= set(build.capabilities)]
        out[firmware] = {"summary": build.summary(), "code": str(build.code), "vars": str(build.vars),
                         "source": build.source, "patches": list(build.patches), "defines": list(build.defines),
                         "capabilities": list(build.capabilities), "layouts": layouts}
    return out


def firmware_text(builds: dict[str, Any], caps: Capabilities, catalog: Catalog) -> list[str]:
    lines: list[str] = []
    for firmware, data in firmware_json(builds, caps, catalog).items():
        if data is None:
            lines.append(f"firmware {firmware}: guestcompat's build is not in the cache (`guestcompat firmware "
                         f"build`); the machine's default firmware is used")
            continue
        lines.append(f"firmware {firmware}: {data['summary']}")
        lines.append(f"  code {data['code']}")
        lines.append(f"  defines: {' '.join(data['defines'])}")
        for layout in data["layouts"]:
            lines.append(f"  {'yes' if layout['binary_has_options'] else 'no ':<3} enables machine "
                         f"{layout['machine']} layout {layout['layout']}"
                         + ("" if layout["binary_has_options"] else " (this binary lacks its machine options)"))
    return lines


def to_json(caps: Capabilities, catalog: Catalog, arch: str, firmware: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    return {
        "arch": arch, "binary": caps.binary, "version": caps.version, "package": caps.package,
        "firmware": firmware_json(firmware or {}, caps, catalog),
        "build_features": build_features(caps, catalog, arch),
        "machines": sorted(caps.machines),
        "kinds": [{"kind": r.kind, "role": r.role, "driver": r.driver, "present": r.present,
                   "properties": r.properties} for r in driver_statuses(caps, catalog)],
        "objects": object_statuses(caps),
        "cpu_models": len(caps.cpu_models),
        "device_types": len(caps.device_types),
    }


def text_lines(caps: Capabilities, catalog: Catalog, arch: str, firmware: dict[str, Any] | None = None
               ) -> list[str]:
    aliases = sorted(a for a, m in caps.machines.items() if a != m)
    lines = [f"{arch}: {caps.binary} (QEMU {caps.version}{', ' + caps.package if caps.package else ''})",
             f"machines: {len(set(caps.machines.values()))} types; aliases: "
             + ", ".join(f"{a} → {caps.machines[a]}" for a in aliases),
             f"CPU models: {len(caps.cpu_models)}; device types: {len(caps.device_types)}"]
    features = build_features(caps, catalog, arch)
    found = sum(features.values())
    build = (f"guestcompat patched ({found} of {len(features)} options)" if found
             else "stock QEMU (none of guestcompat's options)")
    lines += ["", f"build: {build}"]
    lines += [f"  {'yes' if ok else 'no ':<3} {feature}" for feature, ok in features.items()]
    fw_lines = firmware_text(firmware or {}, caps, catalog)
    if fw_lines:
        lines += ["", *fw_lines]
    lines += ["", "catalogue kinds:"]
    for row in driver_statuses(caps, catalog):
        props = ", ".join(f"{p} {'ok' if ok else 'MISSING'}" for p, ok in row.properties.items())
        lines.append(f"  {row.kind:<24} {row.role:<10} {row.driver:<16} {'present' if row.present else 'MISSING'}"
                     + (f"  ({props})" if props else ""))
    for typename, props in object_statuses(caps).items():
        shown = "MISSING" if props is None else ", ".join(f"{p} {'ok' if ok else 'MISSING'}" for p, ok in props.items())
        lines.append(f"  object {typename}: {shown}")
    return lines
