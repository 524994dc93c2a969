"""Compile a profile for a target: QEMU argv, fidelity report, image needs.

The compiled argv describes the machine only; the harness adds how it boots
(kernel, initramfs, console, QMP) so the same compiled machine can boot any
image and be compared in golden files without run-time paths.
"""

from __future__ import annotations

from dataclasses import dataclass

from guestcompat.emulation import arches
from guestcompat.emulation.arches.base import ArchStrategy
from guestcompat.emulation.artefact import Artefact
from guestcompat.emulation.capabilities import Capabilities, capabilities_for
from guestcompat.emulation.disks import controller_properties, plan_disks
from guestcompat.emulation.guestos import check_guest_os
from guestcompat.emulation.fidelity import Expectation, FidelityReport
from guestcompat.emulation.pci import plan_pci
from guestcompat.emulation.qemucheck import check_argv, check_argv_size
from guestcompat.emulation.vio import plan_vio
from guestcompat.emulation.target import Target
from guestcompat.errors import CompileError
from guestcompat.profiles.blocked import Blocked, applicable
from guestcompat.profiles.catalog import load_catalog
from guestcompat.profiles.model import Profile

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


def _guestinfo_elsewhere(profile: Profile, arch: str, stated: list[Expectation]) -> list[Expectation]:
    """guestinfo keys on an architecture whose strategy has no VMware backdoor (only x86's has one):
    unsupported, with the reason, rather than silently dropped."""
    if not profile.guestinfo or any(e.selector.startswith("guestinfo[") for e in stated):
        return []
    return [Expectation("detection", f"guestinfo[{key}].value", value, None,
                        f"{arch} has no VMware backdoor, so no RPC channel to read guestinfo", "guestinfo")
            for key, value in sorted(profile.guestinfo.items())]


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
                   frozenset(firmware_build.capabilities) if firmware_build else frozenset(),
                   controller_properties(profile, catalog))
    needed = pci.layout is not None and bool(pci.layout.firmware_needs.get(firmware))
    platform = arch.platform(profile, target, caps, pci.machine_options, firmware_build if needed else None)
    vio = plan_vio(profile, catalog, machine, target.machine)
    check_guest_os(profile, arch, pci, vio)
    presented = ({p.kind.name for p in pci.by_name.values() if p.qemu_id is not None}
                 | {d.kind.name for d in vio.by_name.values() if d.qemu_id is not None})
    blocked = applicable(profile, target.arch, target.accel, presented, cpu_properties)
    disks = plan_disks(profile, catalog, pci, vio, caps)
    argv = [arch.binary(target), *BASE_ARGS, *platform.argv, *pci.argv, *vio.argv, *disks.argv]
    check_argv_size(argv)
    check_argv(argv, caps, profile)
    expectations = tuple(platform.expectations + pci.expectations + vio.expectations + disks.expectations
                         + _guestinfo_elsewhere(profile, arch.name, platform.expectations))
    modaliases = tuple(dict.fromkeys(platform.modaliases + pci.modaliases + vio.modaliases + disks.modaliases))
    nics = (sum(1 for p in pci.by_name.values() if p.qemu_id is not None and p.kind.role == "nic")
            + sum(1 for d in vio.by_name.values() if d.qemu_id is not None and d.kind.role == "nic"))
    guest_cmdline = (f"guestcompat.disks={disks.visible}", f"guestcompat.nics={nics}",
                     *((f"guestcompat.rate={','.join(disks.rates)}",) if disks.rates else ()),
                     *((f"guestcompat.guestinfo={','.join(sorted(profile.guestinfo))}",) if profile.guestinfo else ()))
    return CompiledMachine(profile, target, arch, tuple(argv), FidelityReport(expectations), modaliases,
                           tuple(pci.artefacts) + tuple(platform.artefacts), arch.kernel_form_for(profile), guest_cmdline, blocked,
                           platform.firmware, tuple(platform.display_paths.items()))
