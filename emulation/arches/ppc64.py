"""ppc64 (little-endian): the ``pseries`` machine under TCG.

pseries has no SMBIOS, no CPUID and no VMware backdoor: the platform's
identity is in the device tree QEMU builds.  ``-M pseries,host-model=X,
host-serial=Y`` become the root properties ``host-model``/``host-serial``
(measured in shared/reference/measured-here.md), and ``-uuid`` becomes
``system-id`` and ``vm,uuid``; the probe reads all of them from
``/proc/device-tree``.

Firmware: QEMU's minimal Virtual Open Firmware (``x-vof=on``) hands the
kernel a device tree in ~3.5 s where SLOF takes ~12.4 s, and the probe reads
nothing SLOF would add; SLOF stays selectable with ``[platform] firmware =
"slof"`` for a profile that needs the full Open Firmware.

The cap-* settings below are the ones TCG can actually honour: the pseries
defaults ask for Spectre workarounds TCG lacks, and QEMU warns about each of
them on every boot.  Setting what TCG provides changes nothing the guest
probe records.
"""

from __future__ import annotations

from guestcompat.detection.selectors import DeviceTreeRoot, Kernel
from guestcompat.emulation.capabilities import Capabilities
from guestcompat.emulation.arches.base import ArchStrategy, PlatformPart
from guestcompat.emulation.fidelity import Expectation
from guestcompat.emulation.qemuopts import opts
from guestcompat.emulation.target import Target
from guestcompat.errors import CompileError
from guestcompat.profiles.model import Profile

# What TCG implements of the speculation-related spapr capabilities.
TCG_CAPS = {"cap-cfpc": "broken", "cap-sbbc": "broken", "cap-ibs": "broken", "cap-ccf-assist": False}

# profile firmware -> x-vof value
FIRMWARES = {"vof": True, "slof": False}

NIL_UUID = "00000000-0000-0000-0000-000000000000"

# The platform description Linux picks on pseries (arch/powerpc/platforms/pseries: define_machine(pseries)).
KERNEL_PLATFORM = "pSeries"


class Ppc64(ArchStrategy):
    name = "ppc64"
    """``uname -m`` on a little-endian guest says ppc64le; QEMU's binary and the strategy say ppc64."""
    debian_arch = "ppc64el"
    kernel_package = "linux-image-powerpc64le"
    kernel_form = "vmlinux"
    console = "hvc0"
    qemu_binary = "qemu-system-ppc64"
    probe_helpers = ()
    machines = ("pseries",)
    default_firmware = "vof"
    accels = ("tcg",)
    firmwares = tuple(FIRMWARES)
    cpu_model = "power9"
    libvirt_serial = None
    uuid_selectors = (str(DeviceTreeRoot("system-id")), str(DeviceTreeRoot("vm,uuid")))
    # Measured (QEMU 7.2 'info qtree'): with '-device spapr-vty' and no -serial, nvram gets
    # reg 0x71000000 and the vty 0x71000001.
    libvirt_serial_reason = ("libvirt's <serial> becomes '-device spapr-vty', created after the machine's NVRAM, "
                             "which then takes reg 0x71000000 (measured: vty@71000001); '-serial' lets the machine "
                             "create the console first, as the direct backend does (vty@71000000, nvram@71000001)")

    # As on x86_64 (see X86_64.speed_cmdline): speed only, measured alone, fingerprints unchanged
    # (pseries-vscsi: mitigations=off -0.24 s, cryptomgr.notests -0.28 s of kernel init).
    speed_cmdline = ("mitigations=off", "cryptomgr.notests")

    def kernel_cmdline(self) -> list[str]:
        return [f"console={self.console}", "quiet", *self.speed_cmdline]

    def console_args(self, chardev: str) -> list[str]:
        # pseries creates its spapr-vty (vty@71000000) itself once a serial backend exists.
        return ["-serial", f"chardev:{chardev}"]

    def platform(self, profile: Profile, target: Target, caps: Capabilities | None = None,
                 machine_options: dict[str, object] | None = None, firmware_build: object | None = None
                 ) -> PlatformPart:
        firmware = profile.platform.firmware or self.default_firmware
        if firmware not in FIRMWARES:
            raise CompileError(f"platform.firmware: {firmware!r} is not a {self.name} firmware "
                               f"(supported: {', '.join(FIRMWARES)})")
        self.check_no_x86_interfaces(profile)
        identity = profile.devicetree
        machine = opts(target.machine, accel=target.accel, **{"x-vof": FIRMWARES[firmware]}, **TCG_CAPS,
                       **{"host-model": identity.host_model, "host-serial": identity.host_serial},
                       **(machine_options or {}))
        part = PlatformPart(["-machine", machine, "-cpu", self.cpu_model, "-smp", str(profile.cpu.count),
                             "-m", str(profile.platform.memory_mb)])
        if identity.uuid:
            part.argv += ["-uuid", identity.uuid]
        for prop, value in (("host-model", identity.host_model), ("host-serial", identity.host_serial),
                            ("system-id", identity.uuid), ("vm,uuid", identity.uuid)):
            wanted = None if value is None else (value,)
            shown, reason = wanted, None
            if prop == "vm,uuid" and value is None:
                shown, reason = (NIL_UUID,), "QEMU's pseries always writes vm,uuid: the nil UUID when no -uuid is given"
            part.expectations.append(Expectation("identity", str(DeviceTreeRoot(prop)), wanted, shown, reason,
                                                 "devicetree"))
        wanted_platform = profile.platform.kernel_platform
        if wanted_platform is not None:
            part.expectations.append(Expectation(
                "detection", str(Kernel("platform")), wanted_platform, KERNEL_PLATFORM,
                None if wanted_platform == KERNEL_PLATFORM else
                f"Linux on QEMU's {target.machine} always picks its {KERNEL_PLATFORM} platform code", "kernel"))
        return part

    def check_no_x86_interfaces(self, profile: Profile) -> None:
        """A profile asking for x86-only interfaces on pseries is refused, not silently dropped."""
        # The VMware backdoor: a blocked feature with effect "refuse" (profiles/catalog/blocked.toml).
        smbios = profile.smbios
        if smbios.oem_strings or any(v is not None for section in (smbios.bios, smbios.system, smbios.baseboard,
                                                                   smbios.chassis)
                                     for v in section.model_dump().values()):
            raise CompileError(f"smbios: {self.name} pseries has no SMBIOS; state the identity under "
                               f"[devicetree] (host_model, host_serial, uuid) instead")
        if profile.platform.kernel_hypervisor is not None:
            raise CompileError(f"platform.kernel_hypervisor: Linux on {self.name} logs no 'Hypervisor detected' line")
        if profile.cpu.hypervisor_signature is not None:
            raise CompileError(f"cpu.hypervisor_signature: {self.name} has no CPUID")

