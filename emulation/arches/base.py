"""The architecture strategy: everything that differs between architectures, in one object.

The compiler, the image builder and the harness ask the strategy; none of
them tests the architecture's name. Adding an architecture means adding one
subclass here and its data (catalogue entries, machine types).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from guestcompat.bridges.topology import Topology
from guestcompat.emulation.artefact import Artefact
from guestcompat.emulation.fidelity import Expectation
from guestcompat.emulation.target import Target
from guestcompat.profiles.model import Profile

if TYPE_CHECKING:
    from guestcompat.emulation.capabilities import Capabilities
    from guestcompat.images.ovmf_build import OvmfBuild


@dataclass
class PlatformPart:
    """The argv and expectations an architecture contributes for machine, CPU and identity."""

    argv: list[str] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)
    artefacts: list[Artefact] = field(default_factory=list)
    """Files the argv refers to by placeholder (vmport's guestinfo store)."""
    firmware: str = ""
    """Which firmware build the argv boots, for reports (empty: the machine's default, not named)."""
    display_paths: dict[str, str] = field(default_factory=dict)
    modaliases: list[str] = field(default_factory=list)
    """Devices of the platform itself the guest must drive (the image builder loads their modules)."""
    """Machine-dependent path prefix in the argv → the placeholder compile output shows instead
    (a cached firmware build's directory → ``@ovmf-guestcompat``)."""


@dataclass(frozen=True)
class SlotPart:
    """How an architecture presents physical slot numbers for a placed topology."""

    argv: tuple[str, ...] = ()
    artefacts: tuple[Artefact, ...] = ()
    shown: dict[tuple[int, int], int] | None = None
    """(bus, device) → slot number the guest will read; devices not listed show none.
    None: this target cannot predict slot numbers at all (``reason`` says why)."""
    reason: str | None = None


class ArchStrategy(ABC):
    name: str
    """QEMU / ``uname -m`` name of the architecture."""
    debian_arch: str
    """dpkg architecture of the guest image's packages."""
    kernel_package: str
    """Debian metapackage that depends on the current kernel package."""
    kernel_form: str
    """How images/ turns the packaged kernel into what QEMU boots (a kernel-form name)."""
    console: str
    """Guest console device the probe prints on."""
    qemu_binary: str
    probe_helpers: tuple[str, ...] = ()
    """Native helpers detection/ compiles into the probe payload."""
    guest_tools: tuple[str, ...] = ()
    """The guest's own tools (lspci, dmidecode, …) images/ puts into the probe
    image from Debian packages; names defined in images/data/guest-tools-<debian_arch>.toml."""
    machines: tuple[str, ...] = ()
    default_firmware: str = ""
    """Firmware a profile gets when it names none (``platform.firmware``)."""
    accels: tuple[str, ...] = ("tcg",)
    runs_windows: bool = False
    """Whether Windows guests run on this architecture (the Windows view needs one)."""
    libvirt_features: tuple[str, ...] = ()
    """``<features>`` children libvirt needs to build the machine as QEMU does by default
    (without ``<acpi/>`` libvirt turns x86 ACPI off)."""
    libvirt_serial: str | None = None
    """libvirt ``<serial><target type=…>`` that gives the console ``console_args`` gives; None: the
    console goes through ``<qemu:commandline>`` (``libvirt_serial_reason`` says why)."""
    libvirt_serial_reason: str = ""
    speed_cmdline: tuple[str, ...] = ()
    """Kernel words ``kernel_cmdline`` adds only to make the probe boot faster, each measured alone
    (``bench/boot.py --ablation``) and checked not to change any bundled profile's fingerprint."""
    uuid_selectors: tuple[str, ...] = ()
    """Expectations the machine UUID (``-uuid``) decides: libvirt always passes one, a generated
    one when the profile states none, so through libvirt they cannot be predicted."""

    @property
    def default_machine(self) -> str:
        """The machine a target gets when none is asked for (the first of ``machines``)."""
        return self.machines[0]

    def cpu_qom_type(self, model: str) -> str:
        """QOM type of CPU ``model`` (``-global TYPE.prop=value`` sets what libvirt's ``<cpu>`` cannot)."""
        return f"{model}-{self.name}-cpu"

    def check_target(self, target: Target) -> None:
        from guestcompat.errors import CompileError
        if target.machine not in self.machines:
            raise CompileError(f"machine type {target.machine!r} is not supported on {self.name} "
                               f"(supported: {', '.join(self.machines)})")
        if target.accel not in self.accels:
            raise CompileError(f"accelerator {target.accel!r} is not supported on {self.name} "
                               f"(supported: {', '.join(self.accels)})")

    def binary(self, target: Target) -> str:
        """The target's QEMU binary: a path or name, or a build alias (``stock``, ``patched``, ``10.0``:
        images/qemu_builds.py). What the binary can do is then asked of it (capability probe)."""
        from guestcompat.images.qemu_builds import binary_for_alias, is_alias

        if is_alias(target.qemu_binary):
            return binary_for_alias(target.qemu_binary, self.name, self.qemu_binary)
        return target.qemu_binary or self.qemu_binary

    @abstractmethod
    def platform(self, profile: Profile, target: Target, caps: "Capabilities | None" = None,
                 machine_options: dict[str, object] | None = None,
                 firmware_build: "OvmfBuild | None" = None) -> PlatformPart:
        """Machine, accelerator, CPU, memory, firmware identity and hypervisor interfaces.
        ``firmware_build``: the firmware build the chosen machine layout needs (see
        ``firmware_build()``), booted instead of the architecture's default."""

    def firmware_builds(self) -> "dict[str, OvmfBuild | None]":
        """Firmware (a ``platform.firmware`` value) → guestcompat's cached build of it (None: not
        built), for the firmware guestcompat builds on this architecture."""
        return {}

    def firmware_build(self, profile: Profile) -> "OvmfBuild | None":
        """A firmware build of guestcompat's (cached) that this profile's firmware could boot from;
        its capabilities decide whether a machine layout that needs them is chosen. None: none."""
        firmware = profile.platform.firmware or self.default_firmware
        return self.firmware_builds().get(firmware) if firmware in self.built_firmware else None

    built_firmware: tuple[str, ...] = ()
    """The firmware guestcompat builds itself on this architecture (``firmware_builds`` keys)."""

    def kernel_form_for(self, profile: Profile) -> str:
        """How the probe kernel is packaged for this profile's firmware (default: ``kernel_form``)."""
        return self.kernel_form

    @abstractmethod
    def kernel_cmdline(self) -> list[str]:
        """Kernel command-line words the probe image needs on this architecture."""

    @abstractmethod
    def console_args(self, chardev: str) -> list[str]:
        """QEMU options that connect the guest console to character device ``chardev``."""

    def slots(self, profile: Profile, target: Target, topology: Topology) -> SlotPart:
        """Options and artefacts that give the presented ``topology`` its physical slot numbers."""
        from guestcompat.profiles.catalog import load_catalog  # catalog imports nothing from here; avoid a cycle at import

        return SlotPart(reason=load_catalog().machine(target.machine).physical_slot_reason)
