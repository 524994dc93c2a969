"""Compile a profile for a target: QEMU argv, fidelity report, image needs.

The compiled argv describes the machine only; the harness adds how it boots
(kernel, initramfs, console, QMP) so the same compiled machine can boot any
image and be compared in golden files without run-time paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from guestcompat.detection.selectors import Disk, DiskRate
from guestcompat.emulation import arches
from guestcompat.emulation.arches.base import ArchStrategy
from guestcompat.emulation.artefact import Artefact
from guestcompat.emulation.capabilities import Capabilities, capabilities_for
from guestcompat.emulation.guestos import check_guest_os
from guestcompat.emulation.fidelity import Expectation, FidelityReport
from guestcompat.emulation.pci import PciPlan, plan_pci
from guestcompat.emulation.qemucheck import check_argv, check_argv_size
from guestcompat.emulation.qemuopts import opts
from guestcompat.emulation.vio import VioPlan, plan_vio
from guestcompat.emulation.target import Target
from guestcompat.errors import CompileError
from guestcompat.profiles.blocked import Blocked, applicable
from guestcompat.profiles.catalog import Catalog, DeviceKind, load_catalog
from guestcompat.profiles.model import IMAGE_SUFFIXES, Profile

BASE_ARGS = ["-nodefaults", "-no-user-config", "-display", "none"]


@dataclass(frozen=True)
class CompiledMachine:
    profile: Profile
    target: Target
    arch: ArchStrategy
    argv: tuple[str, ...]
    """QEMU binary first, then the machine's options."""
    report: FidelityReport
    modaliases: tuple[str, ...]
    """Modaliases of every device the guest must drive (for the image builder)."""
    artefacts: tuple[Artefact, ...] = ()
    """Files the argv refers to by placeholder (e.g. an ACPI table's ASL); the runner builds them."""
    kernel_form: str = ""
    """How the probe kernel must be packaged for this firmware (images/ builds that form)."""
    guest_cmdline: tuple[str, ...] = ()
    """Kernel arguments telling the probe what to wait for before it looks
    (``guestcompat.disks=N``, ``guestcompat.nics=N``): some drivers
    find their disks asynchronously, after insmod has returned."""
    blocked: tuple[Blocked, ...] = ()
    """Blocked features (profiles/catalog/blocked.toml) that apply: ``compile`` lists them,
    ``run`` refuses the ``no-run`` ones before boot."""
    firmware: str = ""
    """Which firmware build the argv boots (reports name it); empty: the machine's default."""
    display_paths: tuple[tuple[str, str], ...] = ()
    """(machine-dependent path prefix in the argv, placeholder compile output shows instead)."""

    @property
    def expectations(self) -> tuple[Expectation, ...]:
        return self.report.expectations


def compile_profile(profile: Profile, target: Target | None = None,
                    capabilities: Capabilities | None = None) -> CompiledMachine:
    """Compile *profile* for *target*, checked against the target QEMU's *capabilities*
    (default: probed from the target's binary, cached). Without *target*: the profile's default
    target (``arches.resolve_target``)."""
    target = target or arches.resolve_target(profile.platform.arch)
    if profile.abstract:
        raise CompileError(f"profile {profile.name} is abstract (a base for other profiles); compile one that extends it")
    arch = arches.get(target.arch)
    arch.check_target(target)
    if profile.platform.arch is not None and profile.platform.arch != target.arch:
        raise CompileError(f"platform.arch: profile {profile.name} describes {profile.platform.arch} hardware; "
                           f"it cannot be compiled for {target.arch}")
    catalog = load_catalog()
    caps = capabilities or capabilities_for(arch.binary(target))
    cpu_properties = caps.cpu_properties.get(arch.cpu_model, ())
    kinds = {d.kind for d in profile.pci.devices} | {d.kind for d in profile.vio.devices}
    for entry in applicable(profile, target.arch, target.accel, kinds, cpu_properties):
        if entry.effect == "refuse":
            raise CompileError(f"{entry.requires or entry.feature}: {entry.message(profile, target.arch)}")
    machine = catalog.machine(target.machine)
    firmware = profile.platform.firmware or arch.default_firmware
    # A firmware build of guestcompat's is booted only where the machine layout this binary gives
    # needs what its manifest lists (stock binaries get no layout, hence today's firmware).
    firmware_build = arch.firmware_build(profile)
    pci = plan_pci(profile, catalog, machine, lambda topology: arch.slots(profile, target, topology),
                   caps, firmware, target.machine,
                   frozenset(firmware_build.capabilities) if firmware_build else frozenset())
    needed = pci.layout is not None and bool(pci.layout.firmware_needs.get(firmware))
    platform = arch.platform(profile, target, caps, pci.machine_options, firmware_build if needed else None)
    vio = plan_vio(profile, catalog, machine, target.machine)
    check_guest_os(profile, arch, pci, vio)
    presented = ({p.kind.name for p in pci.by_name.values() if p.qemu_id is not None}
                 | {d.kind.name for d in vio.by_name.values() if d.qemu_id is not None})
    blocked = applicable(profile, target.arch, target.accel, presented, cpu_properties)
    rates: list[str] = []
    disk_argv, disk_expect, disk_aliases = _disks(profile, catalog, pci, vio, rates)
    argv = [arch.binary(target), *BASE_ARGS, *platform.argv, *pci.argv, *vio.argv, *disk_argv]
    check_argv_size(argv)
    check_argv(argv, caps, profile)
    expectations = tuple(platform.expectations + pci.expectations + vio.expectations + disk_expect)
    modaliases = tuple(dict.fromkeys(pci.modaliases + vio.modaliases + disk_aliases))
    nics = (sum(1 for p in pci.by_name.values() if p.qemu_id is not None and p.kind.role == "nic")
            + sum(1 for d in vio.by_name.values() if d.qemu_id is not None and d.kind.role == "nic"))
    visible_disks = sum(1 for d in profile.disks if _disks_visible(_controller(d.controller, pci, vio)))
    guest_cmdline = (f"guestcompat.disks={visible_disks}", f"guestcompat.nics={nics}",
                     *((f"guestcompat.rate={','.join(rates)}",) if rates else ()))
    return CompiledMachine(profile, target, arch, tuple(argv), FidelityReport(expectations), modaliases,
                           tuple(pci.artefacts), arch.kernel_form_for(profile), guest_cmdline, blocked,
                           platform.firmware, tuple(platform.display_paths.items()))


#: How far a guest's measured rate may be from a throttle limit: QEMU's leaky
#: bucket lets a burst of a tenth of a second through before it throttles.
RATE_TOLERANCE = 0.15
#: Seconds of I/O the probe runs per limit: long enough that the burst and
#: /proc/uptime's 10 ms resolution stay a few percent of the measurement.
RATE_SECONDS = 2


def rate_probe(address: object, unit: int, metric: str, limit: int) -> str:
    """The probe's instruction to measure *metric* on a disk: ``PCI/target/metric/block_size/count``."""
    block = 65536 if metric.startswith("bps") else 4096
    per_second = limit / block if metric.startswith("bps") else limit
    count = max(1, round(per_second * RATE_SECONDS))
    return f"0000:{address}/{unit}/{metric}/{block}/{count}"


def _controller(name: str, pci: PciPlan, vio: VioPlan) -> tuple[str | None, DeviceKind, str] | None:
    """(QEMU id, catalogue kind, how disk selectors name the controller) of disk controller ``name``.

    A PCI controller is named by its guest address (``03:00.0``), a VIO one by
    its unit address (``vio:71000010``), as the fingerprint links block devices.
    """
    if name in pci.by_name:
        presented = pci.by_name[name]
        return presented.qemu_id, presented.kind, str(pci.presented_address(name))
    if name in vio.by_name:
        device = vio.by_name[name]
        return device.qemu_id, device.kind, f"vio:{device.slot.reg:x}"
    return None


#: image file suffix -> QEMU block driver (the model refuses any other suffix); VMDKs (imported from a .vmx)
#: are read by QEMU's vmdk driver in every subformat, descriptor + extents included.
_IMAGE_FORMATS = IMAGE_SUFFIXES


def _disks_visible(controller: tuple[str | None, DeviceKind, str] | None) -> bool:
    return controller is not None and not (controller[1].qemu and controller[1].qemu.disks_absent)


def _disks(profile: Profile, catalog: Catalog, pci: PciPlan, vio: VioPlan, rates: list[str]
           ) -> tuple[list[str], list[Expectation], list[str]]:
    argv: list[str] = []
    expectations: list[Expectation] = []
    aliases: list[str] = []
    for disk in profile.disks:
        key = f"disks[{disk.name}]"
        controller = _controller(disk.controller, pci, vio)
        if controller is None or controller[0] is None:
            raise CompileError(f"{key}.controller: {disk.controller} is not presented on this target")
        qemu_id, kind, address = controller
        bus_name = kind.disk_bus
        if bus_name is None or bus_name not in catalog.disk_buses:
            raise CompileError(f"{key}.controller: {disk.controller} ({kind.name}) takes no disks")
        bus = catalog.disk_buses[bus_name]
        node = f"drive-{disk.name}"
        base_node = f"{node}-base" if disk.limits is not None else node
        if disk.image:
            fmt = _IMAGE_FORMATS[Path(disk.image).suffix.lower()]
            argv += ["-blockdev", opts(None, **{"driver": "file", "node-name": f"{node}-file", "filename": disk.image,
                                                "read-only": True}),
                     "-blockdev", opts(None, **{"driver": fmt, "node-name": base_node, "file": f"{node}-file",
                                                "read-only": True})]
        else:
            argv += ["-blockdev", opts(None, **{"driver": "null-co", "node-name": base_node, "size": disk.size_mb << 20,
                                                "read-zeroes": True})]
        if disk.limits is not None:
            group = f"throttle-{disk.name}"
            argv += ["-object", opts("throttle-group", id=group,
                                     **{f"x-{m.replace('_', '-')}": v for m, v in disk.limits.items()}),
                     "-blockdev", opts(None, **{"driver": "throttle", "node-name": node, "throttle-group": group,
                                                "file": base_node})]
        argv += ["-device", opts(bus.qemu_device, **{"id": disk.name, "drive": node, "bus": f"{qemu_id}.0",
                                                     "scsi-id": disk.unit, "vendor": disk.vendor,
                                                     "product": disk.model, "ver": disk.revision})]
        aliases += bus.modaliases
        absent = kind.qemu.disks_absent if kind.qemu else None
        for field, value in (("vendor", disk.vendor), ("model", disk.model), ("revision", disk.revision)):
            if value is not None:
                expectations.append(Expectation("disks", str(Disk(address, disk.unit, field)), value,
                                                 None if absent else value, absent, disk.name))
        for metric, limit in (disk.limits.items() if disk.limits else ()):
            expectations.append(Expectation("disks", str(DiskRate(address, disk.unit, metric)), limit,
                                            None if absent else limit, absent, disk.name, tolerance=RATE_TOLERANCE))
            if not absent:
                rates.append(rate_probe(address, disk.unit, metric, limit))
    return argv, expectations, aliases
