"""Machines (view.Machine) from what guestcompat knows: a profile, its compiled QEMU target, a fingerprint.

* :func:`from_profile`: the *source* platform the profile describes (VMware's
  ids at VMware's addresses, the bridges firmware numbers, VMware's root
  bridge), the machine a Windows guest booted on before the move;
* :func:`from_plan`: what a QEMU build will present for that profile (the
  compiler's presented topology: machine functions, substitutes, the ids
  this build can set), predicted without a boot;
* :func:`from_fingerprint`: what a booted guest saw (ids from sysfs, the tree
  from the bridges' secondary bus numbers, MACs from the NICs).

The platform facts (root bridge identity, serial numbers) come from
``platform.toml``, each with its source.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources

from guestcompat.bridges.topology import Placed, Topology, plan
from guestcompat.detection.fingerprint import Fingerprint, PciFunction
from guestcompat.detection.windows.ids import PciIdentity, dsn_from_mac
from guestcompat.detection.windows.view import Identity, Machine, MachineFunction, RootBridge, SerialNumber
from guestcompat.errors import ProfileError
from guestcompat.profiles.catalog import Catalog, DeviceKind, PciIds, load_catalog
from guestcompat.profiles.model import Profile

ROOT_PORT_TYPE, ENDPOINT_TYPE = 4, 0


@lru_cache(maxsize=1)
def platform_facts() -> dict:
    try:
        return tomllib.loads(resources.files("guestcompat.detection.windows").joinpath("platform.toml").read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"detection/windows/platform.toml is invalid: {exc}") from None


def root(name: str) -> RootBridge:
    entry = platform_facts()["roots"][name]
    return RootBridge(entry["hid"], entry.get("uid"), bool(entry["pcie_native"]), entry["source"])


def serial_for(platform: str, kind: str, mac: str | None, express: bool) -> SerialNumber | None:
    """The serial number a ``kind`` function has on ``platform`` (vmware | qemu), None if it has none."""
    entry = platform_facts()["serial"].get(platform, {}).get(kind)
    if entry is None or (entry.get("express_only") and not express):
        return None
    if entry["formula"] == "unknown":
        return SerialNumber(None, entry["source"])
    if mac is None:
        return SerialNumber(None, f"{entry['source']}; no MAC stated, so its value is unknown")
    return SerialNumber(dsn_from_mac(entry["formula"], mac), f"from MAC {mac} ({entry['formula']} formula)")


def identity_of(ids: PciIds) -> PciIdentity:
    return PciIdentity(ids.vendor, ids.device, ids.subsystem_vendor or 0, ids.subsystem_device or 0,
                       ids.revision or 0, ids.class_code)


def _express_type(placed: Placed, topology: Topology, kinds: dict[str, DeviceKind]) -> int | None:
    if kinds[placed.name].role == "root-port":
        return ROOT_PORT_TYPE
    if placed.parent is not None and kinds.get(placed.parent) is not None and kinds[placed.parent].role == "root-port":
        return ENDPOINT_TYPE
    return None


def _runs_windows(arch: str | None) -> bool:
    """Whether *arch* (a profile's platform.arch or a guest's uname; None: the default) is one whose
    strategy runs Windows guests; an architecture guestcompat has no strategy for does not."""
    from guestcompat.emulation import arches
    from guestcompat.errors import CompileError

    try:
        return arches.get(arch or arches.DEFAULT_ARCH).runs_windows
    except CompileError:
        return False


def from_profile(profile: Profile, catalog: Catalog | None = None) -> Machine:
    """The source machine a profile describes (the platform it was captured on)."""
    from guestcompat.emulation.pci import wanted_entries

    catalog = catalog or load_catalog()
    if not _runs_windows(profile.platform.arch):
        raise ProfileError(f"{profile.name}: a Windows view needs an x86 machine; this profile is {profile.platform.arch}")
    entries = wanted_entries(profile, catalog)
    topology = plan([e.function for e in entries])
    kinds = {e.function.name: e.kind for e in entries}
    macs = {e.function.name: getattr(e.source, "mac", None) for e in entries}
    vmware = (profile.platform.vendor or "").startswith("VMware") or "vmware/chipset" in profile.lineage
    firmware = profile.platform.firmware or "bios"
    root_bridge = root(f"vmware-{'efi' if firmware == 'efi' else 'bios'}") if vmware else root("qemu-pc")
    has_root_ports = any(k.role == "root-port" for k in kinds.values())
    if vmware and not has_root_ports:
        root_bridge = RootBridge(root_bridge.hid, root_bridge.uid, False,
                                 "VMware virtual hardware without PCIe root ports (hw4-6): no PCI Express [inferred]")
    functions = []
    for placed in topology.functions:
        kind = kinds[placed.name]
        express = _express_type(placed, topology, kinds)
        functions.append(MachineFunction(
            key=placed.name, device=placed.address.device, function=placed.address.function, parent=placed.parent,
            ids=identity_of(kind.ids), label=kind.summary, address=str(placed.address),
            is_bridge=placed.function.is_bridge, express_type=express,
            serial=serial_for("vmware" if vmware else "qemu", kind.name, macs.get(placed.name), express is not None),
            mac=macs.get(placed.name)))
    boot = profile.disks[0].controller if profile.disks else None
    return Machine(f"profile {profile.name}", root_bridge, tuple(functions), boot, _profile_identity(profile),
                   () if boot else ("the profile states no disk: no boot chain",))


def _profile_identity(profile: Profile) -> Identity:
    from guestcompat.profiles.identity import effective_smbios

    smbios = effective_smbios(profile)
    disks = tuple(" ".join(p for p in (d.vendor, d.model) if p) or d.name for d in profile.disks)
    return Identity(smbios.system.manufacturer, smbios.system.product, smbios.system.serial, smbios.system.uuid,
                    smbios.bios.vendor, smbios.bios.version, smbios.bios.date, profile.cpu.model_id,
                    profile.platform.memory_mb, disks)


def from_plan(profile: Profile, machine_name: str, caps=None, label: str | None = None) -> Machine:
    """What QEMU (a build with capabilities ``caps``; None = stock assumptions) presents for ``profile`` on
    ``machine_name``: the compiler's presented topology, predicted without booting."""
    from guestcompat.emulation.pci import plan_pci

    catalog = load_catalog()
    machine = catalog.machine(machine_name)
    firmware = profile.platform.firmware or "bios"
    pci = plan_pci(profile, catalog, machine, caps=caps, firmware=firmware, machine_name=machine_name)
    kinds = {name: p.kind for name, p in pci.by_name.items()}
    functions = []
    for placed in pci.presented.functions:
        p = pci.by_name[placed.name]
        express = _express_type(placed, pci.presented, kinds)
        mac = getattr(p.entry.source, "mac", None) if p.entry is not None else None
        ids = p.ids or p.kind.presented_ids()
        functions.append(MachineFunction(
            key=p.entry.function.name if p.entry is not None else placed.name, device=placed.address.device,
            function=placed.address.function, parent=placed.parent, ids=identity_of(ids),
            label=_presented_label(p.kind, ids, p.entry.kind if p.entry is not None else None),
            address=str(placed.address), is_bridge=placed.function.is_bridge, express_type=express,
            serial=serial_for("qemu", p.kind.name, mac, express is not None), mac=mac))
    root_bridge = root("qemu-q35" if machine_name.startswith("q35") else "qemu-pc")
    boot = profile.disks[0].controller if profile.disks else None
    if boot is not None and boot not in {f.key for f in functions}:
        boot = None
    return Machine(label or f"QEMU {machine_name} for {profile.name}", root_bridge, tuple(functions), boot,
                   _profile_identity(profile))


def _presented_label(kind: DeviceKind, shown: PciIds, wanted: DeviceKind | None) -> str:
    label = kind.summary
    if kind.ids is not None and kind.qemu is not None and (shown.vendor, shown.device) != (kind.ids.vendor, kind.ids.device):
        label = f"QEMU {kind.qemu.driver} standing for the {kind.summary}"
    if wanted is not None and wanted is not kind:
        label += f" (substitute for {wanted.name})"
    return label


def from_fingerprint(fp: Fingerprint, label: str = "fingerprint") -> Machine:
    """What a booted (Linux) guest saw, as Windows would name it on the same machine."""
    if not _runs_windows(fp.arch):
        raise ProfileError(f"{label}: a Windows view needs an x86 guest; this fingerprint is {fp.arch}")
    if not fp.pci:
        raise ProfileError(f"{label}: the fingerprint lists no PCI function")
    by_bus: dict[int, PciFunction] = {}
    for fn in fp.pci:
        if fn.secondary_bus is not None:
            by_bus[fn.secondary_bus] = fn
    catalog = load_catalog()
    kinds_by_ids: dict[tuple[int, int], str] = {}
    for name, kind in sorted(catalog.kinds.items(), key=lambda item: not item[0].startswith("qemu-")):
        if kind.ids is not None:
            kinds_by_ids[(kind.ids.vendor, kind.ids.device)] = name     # VMware's kinds last: they win
    for name, kind in catalog.kinds.items():
        if kind.ids is not None and kind.qemu is not None:             # what QEMU shows for a kind, if unclaimed
            shown = kind.presented_ids()
            kinds_by_ids.setdefault((shown.vendor, shown.device), name)
    macs = {n.pci: n.mac for n in fp.net if n.pci}
    host = fp.pci_function("00:00.0")
    q35 = host is not None and (host.vendor, host.device) == (0x8086, 0x29C0)
    base = root("qemu-q35" if q35 else "qemu-pc")
    extended = any((fn.config_size or 0) > 256 for fn in fp.pci)
    root_bridge = base if (base.pcie_native and extended) or not base.pcie_native else RootBridge(
        base.hid, base.uid, False, base.why + "; but no function showed extended config space (no MCFG)")
    functions = []
    notes: list[str] = []
    for fn in fp.pci:
        if fn.domain:
            notes.append(f"{fn.ref}: PCI domain {fn.domain:04x} is not modelled; skipped")
            continue
        parent = by_bus.get(fn.bus)
        if fn.bus != 0 and parent is None:
            notes.append(f"{fn.ref}: no bridge in the fingerprint leads to bus {fn.bus:02x}; placed on bus 0")
        express = {"Root Port": ROOT_PORT_TYPE, "Endpoint": ENDPOINT_TYPE, "Legacy Endpoint": 1}.get(fn.pcie_port_type or "")
        kind = kinds_by_ids.get((fn.vendor, fn.device))
        mac = macs.get(fn.ref)
        functions.append(MachineFunction(
            key=fn.ref, device=fn.slot, function=fn.function, parent=parent.ref if parent else None,
            ids=PciIdentity(fn.vendor, fn.device, fn.subsystem_vendor or 0, fn.subsystem_device or 0, fn.revision,
                            fn.class_code),
            label=catalog.kinds[kind].summary if kind else f"{fn.vendor:04x}:{fn.device:04x}", address=fn.ref,
            is_bridge=fn.secondary_bus is not None, express_type=express,
            serial=serial_for("qemu", kind, mac, express is not None) if kind else None, mac=mac))
    disks = [b for b in sorted(fp.block, key=lambda b: b.name) if b.pci]
    boot = disks[0].pci if disks else None
    dmi = fp.dmi
    identity = Identity(dmi.get("sys_vendor") or None, dmi.get("product_name") or None,
                        dmi.get("product_serial") or None, dmi.get("product_uuid") or None,
                        dmi.get("bios_vendor") or None, dmi.get("bios_version") or None, dmi.get("bios_date") or None,
                        None, None, tuple(" ".join(p for p in (b.vendor, b.model) if p) for b in disks))
    return Machine(label, root_bridge, tuple(functions), boot, identity,
                   tuple(notes) + (() if boot else ("the guest showed no disk on a PCI controller: no boot chain",)))
