"""x86_64: i440FX ``pc`` under TCG, SMBIOS identity, CPUID and the VMware backdoor.

The hypervisor-detection recipe follows what a real Linux 6.1 guest does
(``arch/x86/kernel/cpu/vmware.c``, measured in shared/reference/measured-here.md):
with the CPUID hypervisor bit set, only a ``VMwareVMware`` signature counts,
and TCG can only answer ``TCGTCGTCGTCG``. With the bit clear, Linux trusts a
DMI serial containing "VMware" plus a backdoor GETVERSION answer, which
QEMU's vmport gives. So under TCG the faithful choice is to clear the bit:
the kernel, systemd-detect-virt and virt-what then all conclude VMware, and
the cleared bit is reported as an approximation.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from guestcompat.bridges.topology import Topology
from guestcompat.detection.selectors import Backdoor, Cpuid, Dmi, Guestinfo, Input, Kernel, Smbios, Tool, smbios_selector
from guestcompat.detection.smbios_fields import SECTIONS as SMBIOS_SECTIONS
from guestcompat.emulation.acpi_slots import slot_table
from guestcompat.emulation.arches.base import ArchStrategy, PlatformPart, SlotPart
from guestcompat.emulation.artefact import Artefact
from guestcompat.emulation.capabilities import Capabilities
from guestcompat.emulation.fidelity import UNKNOWN, Expectation
from guestcompat.emulation.qemuopts import global_property, opts, pairs
from guestcompat.emulation.target import Target
from guestcompat.errors import CompileError
from guestcompat.profiles.blocked import AccelFacts, accel_facts
from guestcompat.profiles.catalog import load_catalog
from guestcompat.profiles.identity import effective_smbios
from guestcompat.profiles.model import Profile

if TYPE_CHECKING:
    from guestcompat.images.ovmf_build import OvmfBuild

BACKDOOR_MAGIC = 0x564D5868
VMX_TYPES = {"express": 1, "esx": 2, "server": 3, "workstation": 4, "ace": 5}
#: What Linux names the VMware mouse (drivers/input/mouse/vmmouse.c: psmouse vendor "VirtualPS/2 VMware",
#: name "VMMouse"), as on VMware.
VMMOUSE_NAME = "VirtualPS/2 VMware VMMouse"
#: VMware's pciHole.start when the .vmx does not set it: RAM below 4 GiB ends at 0xc0000000.
VMWARE_PCI_HOLE_START_MB = 3072
#: The most RAM QEMU's pc machine puts below 4 GiB once the guest has more than max-ram-below-4g.
PC_MAX_LOW_RAM_MB = 3072
#: How far the RAM below 4 GiB an EFI guest sees may fall short of the hole (the firmware's own pages).
EFI_LOW_RAM_TOLERANCE = 0.01
#: The i8042 AUX port (serio type 1, SERIO_8042): psmouse claims it (the probe images load it).
PSMOUSE_MODALIAS = "serio:ty01pr00id00ex00"

# What each accelerator answers (CPUID signature, backdoor GETHZ, user-mode backdoor) is data:
# profiles/catalog/blocked.toml [accelerators.x86_64.<accel>].
# Firmware -> (QEMU options, probe kernel form). SeaBIOS boots the PVH ELF
# vmlinux fastest; OVMF only loads EFI executables, i.e. the bzImage's EFI stub.
FIRMWARE = {
    "bios": ((), "pvh-vmlinux"),
    "efi": (("-bios", "/usr/share/ovmf/OVMF.fd"), "bzimage"),
}
#: How reports name Debian's OVMF (today's recipe: on stock QEMU, or without guestcompat's OVMF).
DEBIAN_OVMF = ("Debian's OVMF (/usr/share/ovmf/OVMF.fd as -bios: QEMU's own chipset layout only, "
               "no PVSCSI or MPT SCSI boot driver)")
#: What compile output shows for guestcompat's OVMF build directory (its cache path differs per machine).
OVMF_PLACEHOLDER = "@ovmf-guestcompat"
# /proc/cpuinfo 'model name' of QEMU's CPU models when no model-id is given.
CPU_DEFAULT_BRAND = {"qemu64": "QEMU Virtual CPU version 2.5+"}

# The SMBIOS fields, their QEMU -smbios keys and their selectors: detection/smbios_fields.py.


# How QEMU 7.2's pc machine describes PCI in ACPI (measured: shared/reference/measured-here.md).
# With ACPI PCI hotplug on (the default) its DSDT gives every hotpluggable slot _SUN = device
# number, root ports' and bridges' children _SUN = 0, and native PCIe hotplug (which would report a
# root port's slot number) is not granted on i440FX. Both hotplug properties off leave a DSDT that
# declares \_SB.PCI0.S<devfn> only for function 0 of each occupied bus-0 slot (10.0: every present
# function, behind bridges too), without _SUN, so an extra SSDT can own every _SUN
# (emulation/acpi_slots.py creates only the objects the DSDT lacks). VMware's guests show no slot
# for bus-0 devices either.
PC_PCI_ROOT = "\\_SB.PCI0"
PC_NO_ACPI_HOTPLUG = {"PIIX4_PM.acpi-pci-hotplug-with-bridge-support": False, "PIIX4_PM.acpi-root-pci-hotplug": False}
SLOT_TABLE = "ssdt-slots.aml"
#: The guestinfo store vmport loads (x-guestinfo-file): a JSON object of strings.
GUESTINFO_STORE = "guestinfo.json"


class X86_64(ArchStrategy):
    name = "x86_64"
    debian_arch = "amd64"
    kernel_package = "linux-image-amd64"
    runs_windows = True
    kernel_form = "pvh-vmlinux"
    console = "ttyS0"
    qemu_binary = "qemu-system-x86_64"
    probe_helpers = ("x86",)
    guest_tools = ("lspci", "dmidecode", "systemd-detect-virt", "virt-what", "udevadm",
                   "vmware-checkvm", "vmware-rpctool", "vmware-toolbox-cmd", "vmtoolsd")
    machines = ("pc",)
    default_firmware = "bios"
    accels = ("tcg",)
    cpu_model = "qemu64"
    libvirt_features = ("acpi",)
    libvirt_serial = "isa-serial"
    uuid_selectors = (str(Dmi("product_uuid")),)

    def kernel_form_for(self, profile: Profile) -> str:
        return FIRMWARE[profile.platform.firmware or self.default_firmware][1]

    built_firmware = ("efi",)

    def firmware_builds(self) -> dict[str, OvmfBuild | None]:
        """guestcompat's OVMF (images/ovmf_build.py), when it is built."""
        from guestcompat.images.ovmf_build import find_build

        return {"efi": find_build()}

    def _firmware(self, profile: Profile, build: OvmfBuild | None, part: PlatformPart) -> list[str]:
        """The firmware options: the default's, or *build*'s code read-only and its variable store
        copy-on-write for this run only (``snapshot=on``: the cached VARS file is never written)."""
        firmware = profile.platform.firmware or self.default_firmware
        if build is None:
            if firmware == "efi":
                part.firmware = DEBIAN_OVMF
            return list(FIRMWARE[firmware][0])
        part.firmware = build.summary()
        part.display_paths[str(build.directory)] = OVMF_PLACEHOLDER
        return ["-drive", opts(None, **{"if": "pflash", "format": "raw", "unit": 0, "readonly": True,
                                        "file": str(build.code)}),
                "-drive", opts(None, **{"if": "pflash", "format": "raw", "unit": 1, "snapshot": True,
                                        "file": str(build.vars)})]

    # Kernel words that only make the probe boot faster, each measured alone (bench/boot.py
    # --ablation, README "Speed"), and checked not to change any bundled profile's fingerprint:
    # ``mitigations=off`` (no page-table isolation: under TCG every CR3 switch on kernel entry and
    # exit flushes QEMU's soft TLB, which the fork-heavy probe pays thousands of times; -1.4 s on
    # esxi-6.5), ``cryptomgr.notests`` (no self-test of every crypto algorithm as it registers,
    # ~0.3 s of kernel init) and ``initcall_blacklist=crypto_kdf108_init`` (the KDF self-test the
    # kernel runs whatever cryptomgr says: 0.15 s in initcall_debug). Measured and left out, no gain
    # above the noise: rodata=off, init_on_alloc=0.
    speed_cmdline = ("mitigations=off", "cryptomgr.notests", "initcall_blacklist=crypto_kdf108_init")

    def kernel_cmdline(self) -> list[str]:
        """``acpi=noirq``: the probe kernel routes legacy INTx through the
        $PIR table instead of evaluating _PRT/_CRS/_SRS in AML for every
        enabled function.  Under TCG that AML cost ~0.25 s per PCIe root port
        (8 s of a 32-port VMware layout); nothing the probe records (ids,
        addresses, bus numbers, slots, drivers, DMI, CPUID, backdoor) depends
        on which IRQ line a function got. Then ``speed_cmdline``."""
        return [f"console={self.console}", "quiet", "acpi=noirq", *self.speed_cmdline]

    def console_args(self, chardev: str) -> list[str]:
        return ["-serial", f"chardev:{chardev}"]

    def slots(self, profile: Profile, target: Target, topology: Topology) -> SlotPart:
        """Slot numbers through an SSDT declaring ``_SUN`` (``-acpitable``), with QEMU's own ACPI PCI
        hotplug objects switched off so they neither clash with it nor add slots VMware does not show."""
        argv: list[str] = []
        for key, value in PC_NO_ACPI_HOTPLUG.items():
            argv += ["-global", global_property(*key.split(".", 1), value)]
        table = slot_table(topology, root=PC_PCI_ROOT, title=profile.name)
        if not table.asl:
            return SlotPart(tuple(argv), (), {})
        artefact = Artefact(SLOT_TABLE, "acpi-asl", table.asl, "ACPI SSDT with the profile's slot numbers (_SUN)")
        argv += ["-acpitable", opts(None, file=artefact.placeholder)]
        return SlotPart(tuple(argv), (artefact,), table.slots)

    def platform(self, profile: Profile, target: Target, caps: Capabilities | None = None,
                 machine_options: dict[str, object] | None = None,
                 firmware_build: OvmfBuild | None = None) -> PlatformPart:
        self._check_interfaces(profile)
        part = PlatformPart()
        facts = accel_facts(self.name, target.accel, caps.cpu_properties.get(self.cpu_model, ()) if caps else ())
        hypervisor_bit, vmware_cpuid = self._detection(profile, target, facts, part)
        backdoor = profile.backdoor
        below_4g = self._pci_hole(profile, target, part)
        part.argv += ["-machine", opts(target.machine, accel=target.accel, vmport=backdoor.enabled,
                                       **(machine_options or {}),
                                       **({"max-ram-below-4g": f"{below_4g}M"} if below_4g else {})),
                      *self._firmware(profile, firmware_build, part)]
        if backdoor.enabled:
            part.argv += ["-global", global_property("vmport", "vmware-vmx-version", backdoor.version),
                          "-global", global_property("vmport", "vmware-vmx-type", VMX_TYPES[backdoor.type])]
        cpu = profile.cpu
        # Without the hypervisor bit, TCG still answers 'TCGTCGTCGTCG' at CPUID 0x40000000 and detectors
        # that read the leaf anyway (virt-what's cpuid helper) report qemu: tcg-cpuid=off silences it.
        # On a build that lifts TCG's limits (blocked.toml lifted_by): the VMware leaves, the true TSC and
        # APIC rates behind GETHZ (then tsc-frequency would only misstate them) and the user-mode backdoor.
        host_freq = backdoor.enabled and cpu.tsc_khz is not None and facts.backdoor_gethz \
            and "x-tcg-host-freq" in facts.lifting
        user_backdoor = bool(profile.detection.vmware_checkvm) and facts.user_backdoor \
            and "x-vmware-backdoor-user" in facts.lifting
        cpu_flags = {"hypervisor": None if hypervisor_bit else False,
                     "tcg-cpuid": None if hypervisor_bit or target.accel != "tcg" else False,
                     "x-tcg-vmware-cpuid": True if vmware_cpuid else None,
                     "x-tcg-host-freq": True if host_freq and not vmware_cpuid else None,
                     "x-vmware-backdoor-user": True if user_backdoor else None,
                     "vendor": cpu.vendor,
                     "tsc-frequency": cpu.tsc_khz * 1000 if cpu.tsc_khz and not host_freq else None}
        part.argv += ["-cpu", opts(self.cpu_model, **{k: v for k, v in cpu_flags.items() if v is not None})]
        if cpu.model_id is not None:
            # The brand string is free text: -cpu's feature parser would split it on any comma (``,,``
            # included), the short -global form carries it literally (qom-get checked, tests/integration).
            part.argv += ["-global", global_property(self.cpu_qom_type(self.cpu_model), "model-id", cpu.model_id)]
        part.argv += ["-smp", str(profile.cpu.count), "-m", str(profile.platform.memory_mb)]
        self._identity(profile, target, part)
        self._guest_tools(profile, target, facts, part)
        self._guestinfo(profile, caps, part)
        return part

    def _guestinfo(self, profile: Profile, caps: Capabilities | None, part: PlatformPart) -> None:
        """The guestinfo store behind the backdoor's RPC channel: only a vmport whose capability probe
        lists ``x-rpc`` (guestcompat's patch 0010) has one; elsewhere every key is unsupported."""
        if not profile.guestinfo:
            return
        vmport = caps.device_properties.get("vmport", ()) if caps else ()
        if not profile.backdoor.enabled:
            reason = "the profile has no VMware backdoor ([backdoor] enabled = false): no RPC channel to read it"
        elif "x-rpc" not in vmport:
            reason = ("this QEMU's vmport has no backdoor RPC channel (no x-rpc property: stock QEMU answers "
                      "GETVERSION and a few commands only), so VMware Tools and vmware-rpctool read no guestinfo")
        else:
            reason = None
            store = json.dumps(profile.guestinfo, sort_keys=True, ensure_ascii=False)
            artefact = Artefact(GUESTINFO_STORE, "json", store, "vmport's guestinfo store (backdoor RPC)")
            part.artefacts.append(artefact)
            part.argv += ["-global", global_property("vmport", "x-rpc", True),
                          "-global", global_property("vmport", "x-guestinfo-file", artefact.placeholder)]
            if "x-time-cmds" in vmport:
                part.argv += ["-global", global_property("vmport", "x-time-cmds", True)]
        for key, value in sorted(profile.guestinfo.items()):
            part.expectations.append(Expectation("detection", str(Guestinfo(key)), value,
                                                 None if reason else value, reason, "guestinfo"))

    def _guest_tools(self, profile: Profile, target: Target, facts: AccelFacts, part: PlatformPart) -> None:
        """What the guest's own detectors (in the image: ``guest_tools``) will conclude."""
        wanted = profile.detection
        brand = profile.cpu.model_id or CPU_DEFAULT_BRAND[self.cpu_model]
        if wanted.systemd_detect_virt is not None:
            part.expectations.append(Expectation("detection", str(Tool("systemd_detect_virt")),
                                                 wanted.systemd_detect_virt, wanted.systemd_detect_virt, None,
                                                 "systemd-detect-virt"))
        if wanted.virt_what is not None:
            shown = tuple(wanted.virt_what)
            reason = None
            if "QEMU" in brand and "qemu" not in shown:
                shown += ("qemu",)
                reason = (f"virt-what also answers 'qemu': it finds QEMU in /proc/cpuinfo's model name "
                          f"({brand!r}); a profile sets cpu.model_id to the source host's brand string")
            part.expectations.append(Expectation("detection", str(Tool("virt_what")), tuple(wanted.virt_what), shown,
                                                 reason, "virt-what"))
        if wanted.vmware_checkvm is not None:
            unprivileged = wanted.vmware_checkvm and facts.user_backdoor
            part.expectations += [
                Expectation("detection", str(Tool("vmware_checkvm")), wanted.vmware_checkvm, unprivileged,
                            None if unprivileged == wanted.vmware_checkvm else
                            f"{target.accel.upper()} raises #GP when user code executes `inl` on the backdoor port "
                            "0x5658 (VMware allows it): vmware-checkvm fails unless the process is granted "
                            "ioperm(0x5658, 4)", "vmware-checkvm"),
                Expectation("detection", str(Tool("vmware_checkvm_ioperm")), wanted.vmware_checkvm,
                            wanted.vmware_checkvm, None, "vmware-checkvm"),
            ]

    def _check_interfaces(self, profile: Profile) -> None:
        """Refuse what exists only on other architectures rather than drop it silently."""
        if profile.platform.firmware not in (None, "bios", "efi"):
            raise CompileError(f"platform.firmware: {profile.platform.firmware!r} is not an {self.name} firmware "
                               f"(x86: bios, efi)")
        if profile.devicetree.stated:
            raise CompileError(f"devicetree: {self.name} {', '.join(self.machines)} has no device tree; "
                               f"state the identity under [smbios] instead")
        if profile.vio.devices:
            raise CompileError(f"vio.devices: {self.name} has no PAPR VIO bus")
        if profile.platform.kernel_platform is not None:
            raise CompileError(f"platform.kernel_platform: Linux on {self.name} logs no machine description")

    def _detection(self, profile: Profile, target: Target, facts: AccelFacts, part: PlatformPart
                   ) -> tuple[bool, bool]:
        """Choose the CPUID hypervisor bit and state what the guest will conclude.

        Returns (keep the hypervisor bit, answer CPUID with the VMware leaves)."""
        cpu, backdoor = profile.cpu, profile.backdoor
        accel_signature = facts.cpuid_signature
        wanted_signature = cpu.hypervisor_signature if cpu.hypervisor_bit else None
        serial = effective_smbios(profile).system.serial or ""
        dmi_path = backdoor.enabled and "VMware" in serial
        vmware_leaves = wanted_signature == "VMwareVMware" and facts.vmware_signature
        signature_settable = facts.can_set_signature or vmware_leaves
        # Keep the bit when the accelerator can show the wanted signature; clear it when the
        # DMI + backdoor path is the only way the guest can conclude VMware.
        keep_bit = cpu.hypervisor_bit and (signature_settable or not dmi_path)
        presented_signature = (wanted_signature if signature_settable else accel_signature) if keep_bit else None
        reason_bit = (f"{target.accel.upper()} cannot present the CPUID signature {wanted_signature!r} (it answers "
                      f"{accel_signature!r}); the hypervisor bit is cleared so Linux detects VMware the way it "
                      f"does without one: DMI serial 'VMware-…' plus the backdoor's GETVERSION")
        part.expectations += [
            Expectation("detection", str(Cpuid("hypervisor_bit")), cpu.hypervisor_bit, keep_bit,
                        None if keep_bit == cpu.hypervisor_bit else reason_bit, "cpu"),
            Expectation("detection", str(Cpuid("hypervisor_signature")), wanted_signature, presented_signature,
                        None if presented_signature == wanted_signature else
                        (reason_bit if not keep_bit else
                         f"{target.accel.upper()} answers {accel_signature!r} at CPUID 0x40000000"), "cpu"),
        ]
        wanted_kernel = profile.platform.kernel_hypervisor
        if keep_bit:
            presented_kernel = {"VMwareVMware": "VMware", "KVMKVMKVM": "KVM"}.get(presented_signature or "")
        else:
            presented_kernel = "VMware" if dmi_path else None
        if wanted_kernel is not None or presented_kernel is not None:
            part.expectations.append(Expectation(
                "detection", str(Kernel("hypervisor")), wanted_kernel, presented_kernel,
                None if wanted_kernel == presented_kernel else
                "the guest kernel sees no VMware CPUID signature and no DMI serial 'VMware-…' with a backdoor",
                "kernel"))
        if cpu.tsc_khz is not None and presented_kernel == "VMware" and backdoor.enabled:
            gethz = facts.backdoor_gethz
            true_rate = gethz and "x-tcg-host-freq" in facts.lifting
            no_gethz = (f"under {target.accel.upper()} QEMU's vmport does not answer the backdoor's GETHZ, even with "
                        f"tsc-frequency= (the guest logs 'vmware: Failed to get TSC freq from the hypervisor' and "
                        f"calibrates the TSC itself)")
            part.expectations += [
                Expectation("detection", str(Kernel("vmware_tsc_from_hypervisor")), True, gethz,
                            None if gethz else no_gethz, "cpu"),
                Expectation("detection", str(Kernel("vmware_tsc_khz")), cpu.tsc_khz,
                            UNKNOWN if true_rate else (cpu.tsc_khz if gethz else None),
                            f"under {target.accel.upper()} the guest's TSC counts at the host's rate: GETHZ states "
                            f"that rate, measured when QEMU starts, not the {cpu.tsc_khz} kHz of the profile's "
                            f"source host (a rate the TSC does not run at would make the guest's clock drift)"
                            if true_rate else (None if gethz else no_gethz), "cpu")]
        source_kernel = wanted_kernel if wanted_kernel is not None else (
            "VMware" if wanted_signature == "VMwareVMware" or dmi_path else None)
        self._vmmouse(profile, source_kernel, presented_kernel, part)
        getversion = backdoor.enabled
        part.expectations += [
            Expectation("detection", str(Backdoor("version")), backdoor.version if getversion else None,
                        backdoor.version if getversion else None, None, "backdoor"),
            Expectation("detection", str(Backdoor("magic")), BACKDOOR_MAGIC if getversion else None,
                        BACKDOOR_MAGIC if getversion else None, None, "backdoor"),
            Expectation("detection", str(Backdoor("type")), VMX_TYPES[backdoor.type] if getversion else None,
                        VMX_TYPES[backdoor.type] if getversion else None, None, "backdoor"),
        ]
        return keep_bit, keep_bit and vmware_leaves

    def _pci_hole(self, profile: Profile, target: Target, part: PlatformPart) -> int | None:
        """The PCI (MMIO) hole below 4 GiB (issue 26): on VMware, RAM below 4 GiB ends at ``pciHole.start``
        (default 3072 MiB) and the rest of the RAM is above 4 GiB. QEMU's pc machine puts
        ``max-ram-below-4g`` there when the guest has at least that much RAM, but (gigabyte alignment,
        hw/i386/pc_piix.c) never more than 3 GiB. Returns the max-ram-below-4g to pass in MiB (None: the
        guest's RAM fits below the hole, nothing to move)."""
        memory = profile.platform.memory_mb
        start = profile.platform.pci_hole_start_mb or VMWARE_PCI_HOLE_START_MB
        wanted = min(memory, start)
        # EFI firmware keeps pages at the top of low RAM for itself (measured: OVMF leaves the guest
        # 511 of 512 MiB in its e820), as VMware's EFI does: a percent is the firmware's, not the hole's.
        tolerance = EFI_LOW_RAM_TOLERANCE if (profile.platform.firmware or "bios") == "efi" else None
        if memory <= start:
            part.expectations.append(Expectation("placement", str(Kernel("ram_below_4g_mb")), wanted, wanted,
                                                 None, "platform", tolerance=tolerance))
            return None
        presented = min(start, PC_MAX_LOW_RAM_MB)
        part.expectations.append(Expectation(
            "placement", str(Kernel("ram_below_4g_mb")), wanted, presented,
            None if presented == wanted else
            f"QEMU's pc machine keeps at most {PC_MAX_LOW_RAM_MB} MiB of RAM below 4 GiB when the guest has "
            f"more (max-ram-below-4g is capped at 3 GiB, hw/i386/pc_piix.c): the PCI hole starts at "
            f"{presented} MiB, not at VMware's pciHole.start {start} MiB", "platform", tolerance=tolerance))
        return start

    def _vmmouse(self, profile: Profile, source_kernel: str | None, presented_kernel: str | None,
                 part: PlatformPart) -> None:
        """The VMware mouse (issue 26): VMware's absolute pointer behind the backdoor, which Linux's psmouse
        finds on the i8042 AUX port (protocol VMMouse). QEMU's ``vmport=on`` brings ``vmmouse``; psmouse
        probes it only where the kernel detected VMware (vmmouse_detect checks x86_hyper_type): on the
        source (``source_kernel``, what the profile says the kernel detects) as here (``presented_kernel``)."""
        if not profile.backdoor.enabled:
            return
        part.modaliases.append(PSMOUSE_MODALIAS)
        wanted = VMMOUSE_NAME if source_kernel == "VMware" else None
        found = VMMOUSE_NAME if presented_kernel == "VMware" else None
        if wanted is None and found is None:
            return
        part.expectations.append(Expectation(
            "detection", str(Input("vmmouse")), wanted, found,
            None if found == wanted else
            "Linux's psmouse probes the VMMouse only when the kernel detected VMware (vmmouse_detect checks the "
            "hypervisor type), and this guest kernel does not: QEMU's vmmouse is there, the guest keeps a plain "
            "PS/2 mouse" if found is None else
            "this guest kernel detects VMware where the source's does not, so psmouse finds the VMMouse "
            "QEMU's vmport brings", "backdoor"))

    def _identity(self, profile: Profile, target: Target, part: PlatformPart) -> None:
        smbios = effective_smbios(profile)
        if smbios.version is not None:
            machine = load_catalog().machine(target.machine)
            presented = machine.smbios_version
            part.expectations.append(Expectation(
                "identity", str(Smbios(None, "version")), smbios.version, presented,
                None if presented == smbios.version else
                f"QEMU's {target.machine} machine writes an SMBIOS {presented} entry point; strings read the "
                f"same, but 2.6+ encodes the UUID's first three fields little-endian, so the raw bytes "
                f"differ from a {smbios.version} table even where the displayed UUID matches", "smbios"))
        for section in SMBIOS_SECTIONS:
            values = getattr(smbios, section.section)
            items: list[tuple[str, object]] = []
            for field in section.fields:
                wanted = getattr(values, field.field)
                if wanted is None:
                    continue
                selector = str(smbios_selector(section.section, field.field))
                if field.designation is None:
                    if field.qemu_key:
                        items.append((field.qemu_key, wanted))
                    part.expectations.append(Expectation("identity", selector, wanted, wanted, None,
                                                         f"smbios.{section.section}"))
                    continue
                # QEMU appends the instance number itself, in its own format (machines.toml).
                prefix = wanted.rstrip("0123456789")
                assert field.qemu_key is not None
                items.append((field.qemu_key, prefix))
                shown = load_catalog().machine(target.machine).smbios_designations[field.designation].format(
                    prefix=prefix, n=0)
                part.expectations.append(Expectation(
                    "identity", selector, wanted, shown,
                    None if shown == wanted else f"QEMU numbers SMBIOS type {section.type} designations its own way "
                                                 f"({shown!r} for {wanted!r}); only the prefix is settable",
                    f"smbios.{section.section}"))
            if items:
                part.argv += ["-smbios", pairs(f"type={section.type}", items)]
        if smbios.system.uuid:
            part.argv += ["-uuid", smbios.system.uuid]
        if smbios.oem_strings:
            part.argv += ["-smbios", pairs("type=11", [("value", s) for s in smbios.oem_strings])]
            oem = tuple(smbios.oem_strings)
            part.expectations.append(Expectation("identity", str(Smbios(None, "oem_strings")), oem, oem, None,
                                                 "smbios.oem_strings"))
