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

from guestcompat.bridges.topology import Topology
from guestcompat.emulation.acpi_slots import slot_table
from guestcompat.emulation.arches.base import ArchStrategy, PlatformPart, SlotPart
from guestcompat.emulation.artefact import Artefact
from guestcompat.emulation.fidelity import Expectation
from guestcompat.emulation.qemuopts import global_property, opts, pairs
from guestcompat.emulation.target import Target
from guestcompat.errors import CompileError
from guestcompat.profiles.blocked import accel_facts
from guestcompat.profiles.catalog import load_catalog
from guestcompat.profiles.identity import effective_smbios
from guestcompat.profiles.model import Profile

BACKDOOR_MAGIC = 0x564D5868
VMX_TYPES = {"express": 1, "esx": 2, "server": 3, "workstation": 4, "ace": 5}

# What each accelerator answers (CPUID signature, backdoor GETHZ, user-mode backdoor) is data:
# profiles/catalog/blocked.toml [accelerators.x86_64.<accel>].
# Firmware -> (QEMU options, probe kernel form). SeaBIOS boots the PVH ELF
# vmlinux fastest; OVMF only loads EFI executables, i.e. the bzImage's EFI stub.
FIRMWARE = {
    "bios": ((), "pvh-vmlinux"),
    "efi": (("-bios", "/usr/share/ovmf/OVMF.fd"), "bzimage"),
}
# /proc/cpuinfo 'model name' of QEMU's CPU models when no model-id is given.
CPU_DEFAULT_BRAND = {"qemu64": "QEMU Virtual CPU version 2.5+"}

# profile SMBIOS field -> (QEMU -smbios key, /sys/class/dmi/id file)
SMBIOS_FIELDS = {
    "bios": (0, {"vendor": ("vendor", "bios_vendor"), "version": ("version", "bios_version"),
                 "date": ("date", "bios_date"), "release": ("release", None)}),
    "system": (1, {"manufacturer": ("manufacturer", "sys_vendor"), "product": ("product", "product_name"),
                   "version": ("version", "product_version"), "serial": ("serial", "product_serial"),
                   "uuid": (None, "product_uuid"), "sku": ("sku", "product_sku"),
                   "family": ("family", "product_family")}),
    "baseboard": (2, {"manufacturer": ("manufacturer", "board_vendor"), "product": ("product", "board_name"),
                      "version": ("version", "board_version"), "serial": ("serial", "board_serial"),
                      "asset": ("asset", "board_asset_tag")}),
    "chassis": (3, {"manufacturer": ("manufacturer", "chassis_vendor"), "version": ("version", "chassis_version"),
                    "serial": ("serial", "chassis_serial"), "asset": ("asset", "chassis_asset_tag")}),
    # Linux exports no type 4 in /sys/class/dmi/id: read back through the guest's dmidecode.
    "processor": (4, {"manufacturer": ("manufacturer", None), "version": ("version", None),
                      "max_speed_mhz": ("max-speed", None)}),
    "memory": (17, {"manufacturer": ("manufacturer", None)}),
}
# Numbered designations: profile field -> (section, SMBIOS type, QEMU prefix key, machine format key).
# QEMU appends the instance number itself, in its own format (machines.toml).
DESIGNATIONS = {"socket": ("processor", 4, "sock_pfx", "socket"), "locator": ("memory", 17, "loc_pfx", "memory")}


# How QEMU 7.2's pc machine describes PCI in ACPI (measured: shared/reference/measured-here.md).
# With ACPI PCI hotplug on (the default) its DSDT gives every hotpluggable slot _SUN = device
# number, root ports' and bridges' children _SUN = 0, and native PCIe hotplug (which would report a
# root port's slot number) is not granted on i440FX. Both hotplug properties off leave a DSDT that
# declares \_SB.PCI0.S<devfn> only for function 0 of each occupied bus-0 slot, without _SUN, so an
# extra SSDT can own every _SUN. VMware's guests show no slot for bus-0 devices either.
PC_PCI_ROOT = "\\_SB.PCI0"
PC_NO_ACPI_HOTPLUG = {"PIIX4_PM.acpi-pci-hotplug-with-bridge-support": False, "PIIX4_PM.acpi-root-pci-hotplug": False}
SLOT_TABLE = "ssdt-slots.aml"


class X86_64(ArchStrategy):
    name = "x86_64"
    debian_arch = "amd64"
    kernel_package = "linux-image-amd64"
    kernel_form = "pvh-vmlinux"
    console = "ttyS0"
    qemu_binary = "qemu-system-x86_64"
    probe_helpers = ("x86",)
    guest_tools = ("lspci", "dmidecode", "systemd-detect-virt", "virt-what", "udevadm",
                   "vmware-checkvm")
    machines = ("pc",)
    default_firmware = "bios"
    accels = ("tcg",)
    cpu_model = "qemu64"
    libvirt_features = ("acpi",)
    libvirt_serial = "isa-serial"
    uuid_selectors = ("dmi.product_uuid",)

    def kernel_form_for(self, profile: Profile) -> str:
        return FIRMWARE[profile.platform.firmware or self.default_firmware][1]

    def kernel_cmdline(self) -> list[str]:
        """``acpi=noirq``: the probe kernel routes legacy INTx through the
        $PIR table instead of evaluating _PRT/_CRS/_SRS in AML for every
        enabled function.  Under TCG that AML cost ~0.25 s per PCIe root port
        (8 s of a 32-port VMware layout); nothing the probe records (ids,
        addresses, bus numbers, slots, drivers, DMI, CPUID, backdoor) depends
        on which IRQ line a function got."""
        return [f"console={self.console}", "quiet", "acpi=noirq"]

    def console_args(self, chardev: str) -> list[str]:
        return ["-serial", f"chardev:{chardev}"]

    def slots(self, profile: Profile, target: Target, topology: Topology) -> SlotPart:
        """Slot numbers through an SSDT declaring ``_SUN`` (``-acpitable``), with QEMU's own ACPI PCI
        hotplug objects switched off so they neither clash with it nor add slots VMware does not show."""
        argv: list[str] = []
        for key, value in PC_NO_ACPI_HOTPLUG.items():
            argv += ["-global", global_property(*key.split(".", 1), value)]
        described = {(None, p.address.device << 3) for p in topology.functions
                     if p.parent is None and p.address.function == 0}
        table = slot_table(topology, root=PC_PCI_ROOT, described=described, title=profile.name)
        if not table.asl:
            return SlotPart(tuple(argv), (), {})
        artefact = Artefact(SLOT_TABLE, "acpi-asl", table.asl, "ACPI SSDT with the profile's slot numbers (_SUN)")
        argv += ["-acpitable", opts(None, file=artefact.placeholder)]
        return SlotPart(tuple(argv), (artefact,), table.slots)

    def platform(self, profile: Profile, target: Target) -> PlatformPart:
        self._check_interfaces(profile)
        part = PlatformPart()
        hypervisor_bit = self._detection(profile, target, part)
        backdoor = profile.backdoor
        part.argv += ["-machine", opts(target.machine, accel=target.accel, vmport=backdoor.enabled),
                      *FIRMWARE[profile.platform.firmware or self.default_firmware][0]]
        if backdoor.enabled:
            part.argv += ["-global", global_property("vmport", "vmware-vmx-version", backdoor.version),
                          "-global", global_property("vmport", "vmware-vmx-type", VMX_TYPES[backdoor.type])]
        cpu = profile.cpu
        # Without the hypervisor bit, TCG still answers 'TCGTCGTCGTCG' at CPUID 0x40000000 and detectors
        # that read the leaf anyway (virt-what's cpuid helper) report qemu: tcg-cpuid=off silences it.
        cpu_flags = {"hypervisor": None if hypervisor_bit else False,
                     "tcg-cpuid": None if hypervisor_bit or target.accel != "tcg" else False,
                     "vendor": cpu.vendor,
                     "tsc-frequency": cpu.tsc_khz * 1000 if cpu.tsc_khz else None}
        part.argv += ["-cpu", opts(self.cpu_model, **{k: v for k, v in cpu_flags.items() if v is not None})]
        if cpu.model_id is not None:
            # The brand string is free text: -cpu's feature parser would split it on any comma (``,,``
            # included), the short -global form carries it literally (qom-get checked, tests/integration).
            part.argv += ["-global", global_property(self.cpu_qom_type(self.cpu_model), "model-id", cpu.model_id)]
        part.argv += ["-smp", str(profile.cpu.count), "-m", str(profile.platform.memory_mb)]
        self._identity(profile, target, part)
        self._guest_tools(profile, target, part)
        return part

    def _guest_tools(self, profile: Profile, target: Target, part: PlatformPart) -> None:
        """What the guest's own detectors (in the image: ``guest_tools``) will conclude."""
        wanted = profile.detection
        brand = profile.cpu.model_id or CPU_DEFAULT_BRAND[self.cpu_model]
        if wanted.systemd_detect_virt is not None:
            part.expectations.append(Expectation("detection", "tools.systemd_detect_virt", wanted.systemd_detect_virt,
                                                 wanted.systemd_detect_virt, None, "systemd-detect-virt"))
        if wanted.virt_what is not None:
            shown = tuple(wanted.virt_what)
            reason = None
            if "QEMU" in brand and "qemu" not in shown:
                shown += ("qemu",)
                reason = (f"virt-what also answers 'qemu': it finds QEMU in /proc/cpuinfo's model name "
                          f"({brand!r}); a profile sets cpu.model_id to the source host's brand string")
            part.expectations.append(Expectation("detection", "tools.virt_what", tuple(wanted.virt_what), shown,
                                                 reason, "virt-what"))
        if wanted.vmware_checkvm is not None:
            unprivileged = wanted.vmware_checkvm and accel_facts(self.name, target.accel).user_backdoor
            part.expectations += [
                Expectation("detection", "tools.vmware_checkvm", wanted.vmware_checkvm, unprivileged,
                            None if unprivileged == wanted.vmware_checkvm else
                            f"{target.accel.upper()} raises #GP when user code executes `inl` on the backdoor port "
                            "0x5658 (VMware allows it): vmware-checkvm fails unless the process is granted "
                            "ioperm(0x5658, 4)", "vmware-checkvm"),
                Expectation("detection", "tools.vmware_checkvm_ioperm", wanted.vmware_checkvm,
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

    def _detection(self, profile: Profile, target: Target, part: PlatformPart) -> bool:
        """Choose the CPUID hypervisor bit and state what the guest will conclude."""
        cpu, backdoor = profile.cpu, profile.backdoor
        facts = accel_facts(self.name, target.accel)
        accel_signature = facts.cpuid_signature
        wanted_signature = cpu.hypervisor_signature if cpu.hypervisor_bit else None
        serial = effective_smbios(profile).system.serial or ""
        dmi_path = backdoor.enabled and "VMware" in serial
        signature_settable = facts.can_set_signature
        # Keep the bit when the accelerator can show the wanted signature; clear it when the
        # DMI + backdoor path is the only way the guest can conclude VMware.
        keep_bit = cpu.hypervisor_bit and (signature_settable or not dmi_path)
        presented_signature = (wanted_signature if signature_settable else accel_signature) if keep_bit else None
        reason_bit = (f"{target.accel.upper()} cannot present the CPUID signature {wanted_signature!r} (it answers "
                      f"{accel_signature!r}); the hypervisor bit is cleared so Linux detects VMware the way it "
                      f"does without one: DMI serial 'VMware-…' plus the backdoor's GETVERSION")
        part.expectations += [
            Expectation("detection", "cpuid.hypervisor_bit", cpu.hypervisor_bit, keep_bit,
                        None if keep_bit == cpu.hypervisor_bit else reason_bit, "cpu"),
            Expectation("detection", "cpuid.hypervisor_signature", wanted_signature, presented_signature,
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
                "detection", "kernel.hypervisor", wanted_kernel, presented_kernel,
                None if wanted_kernel == presented_kernel else
                "the guest kernel sees no VMware CPUID signature and no DMI serial 'VMware-…' with a backdoor",
                "kernel"))
        if cpu.tsc_khz is not None and dmi_path:
            gethz = facts.backdoor_gethz
            part.expectations.append(Expectation(
                "detection", "kernel.vmware_tsc_khz", cpu.tsc_khz, cpu.tsc_khz if gethz else None,
                None if gethz else
                f"under {target.accel.upper()} QEMU's vmport does not answer the backdoor's GETHZ, even with "
                f"tsc-frequency= (the guest logs 'vmware: Failed to get TSC freq from the hypervisor' and "
                f"calibrates the TSC itself)", "cpu"))
        getversion = backdoor.enabled
        part.expectations += [
            Expectation("detection", "backdoor.version", backdoor.version if getversion else None,
                        backdoor.version if getversion else None, None, "backdoor"),
            Expectation("detection", "backdoor.magic", BACKDOOR_MAGIC if getversion else None,
                        BACKDOOR_MAGIC if getversion else None, None, "backdoor"),
            Expectation("detection", "backdoor.type", VMX_TYPES[backdoor.type] if getversion else None,
                        VMX_TYPES[backdoor.type] if getversion else None, None, "backdoor"),
        ]
        return keep_bit

    def _identity(self, profile: Profile, target: Target, part: PlatformPart) -> None:
        smbios = effective_smbios(profile)
        if smbios.version is not None:
            machine = load_catalog().machine(target.machine)
            presented = machine.smbios_version
            part.expectations.append(Expectation(
                "identity", "smbios.version", smbios.version, presented,
                None if presented == smbios.version else
                f"QEMU's {target.machine} machine writes an SMBIOS {presented} entry point; strings read the "
                f"same, but 2.6+ encodes the UUID's first three fields little-endian, so the raw bytes "
                f"differ from a {smbios.version} table even where the displayed UUID matches", "smbios"))
        for section, (smbios_type, fields) in SMBIOS_FIELDS.items():
            values = getattr(smbios, section)
            items: list[tuple[str, object]] = []
            for field, (qemu_key, dmi_file) in fields.items():
                value = getattr(values, field)
                if value is None:
                    continue
                if qemu_key:
                    items.append((qemu_key, value))
                selector = f"dmi.{dmi_file}" if dmi_file else f"smbios.{section}.{field}"
                part.expectations.append(Expectation("identity", selector, value, value, None, f"smbios.{section}"))
            for field, (des_section, des_type, prefix_key, fmt_key) in DESIGNATIONS.items():
                wanted = getattr(values, field, None) if des_section == section else None
                if wanted is None:
                    continue
                prefix = wanted.rstrip("0123456789")
                items.append((prefix_key, prefix))
                shown = load_catalog().machine(target.machine).smbios_designations[fmt_key].format(prefix=prefix, n=0)
                part.expectations.append(Expectation(
                    "identity", f"smbios.{section}.{field}", wanted, shown,
                    None if shown == wanted else f"QEMU numbers SMBIOS type {des_type} designations its own way "
                                                 f"({shown!r} for {wanted!r}); only the prefix is settable",
                    f"smbios.{section}"))
            if items:
                part.argv += ["-smbios", pairs(f"type={smbios_type}", items)]
        if smbios.system.uuid:
            part.argv += ["-uuid", smbios.system.uuid]
        if smbios.oem_strings:
            part.argv += ["-smbios", pairs("type=11", [("value", s) for s in smbios.oem_strings])]
            part.expectations.append(Expectation("identity", "smbios.oem_strings", tuple(smbios.oem_strings),
                                                 tuple(smbios.oem_strings), None, "smbios.oem_strings"))
