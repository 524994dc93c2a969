"""How real guests decide what they run on, as pure functions of a Fingerprint.

Each model re-implements (in our own code) the decision of one real detector
from the facts a fingerprint holds, and returns a ``Verdict``: what the
detector concludes plus the evidence it used.  They run on any fingerprint,
including partial ones built from captures of real machines
(``fingerprint_from_captures``: lspci/dmidecode text only), where the facts
a model lacks are named in ``Verdict.missing``.

Sources read (informative): Linux arch/x86/kernel/cpu/hypervisor.c and
vmware.c (6.1), systemd src/basic/virt.c (v252), the virt-what script of the
guest image (1.25), open-vm-tools lib/vmCheck/vmcheck.c.

Limit: the probe reads CPUID leaves 0x40000000-0x40000010 only, so
signatures at later bases (0x40000100, Xen under Hyper-V) are not modelled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from . import tools as guest_tools
from .fingerprint import Fingerprint
from .smbios_fields import SYSFS_TO_DMIDECODE

VMWARE_MAGIC = 0x564D5868
VMWARE_OUIS = ("00:50:56", "00:0c:29", "00:05:69", "00:1c:14")


@dataclass(frozen=True)
class Verdict:
    """``result``: the detector's answer in its own words ("vmware", "none", "VMware",
    None = says nothing); ``evidence``: the facts that decided; ``missing``: facts the
    fingerprint did not have (a partial capture)."""

    model: str
    result: str | None
    evidence: tuple[str, ...]
    missing: tuple[str, ...] = ()


# --------------------------------------------------------------------------
# facts, from the typed sections or, for captures, from the tools' text

def hypervisor_bit(fp: Fingerprint) -> bool | None:
    leaf = fp.cpuid.get(1)
    return bool(leaf.ecx >> 31 & 1) if leaf else None


def cpuid_signature(fp: Fingerprint) -> str | None:
    """Signature at 0x40000000; None when the leaf was not read."""
    return fp.hypervisor_signature


def dmi(fp: Fingerprint, key: str) -> str | None:
    """``/sys/class/dmi/id/<key>``, else the same field of the dmidecode output."""
    if key in fp.dmi:
        return fp.dmi[key]
    dd = fp.tools.dmidecode if fp.tools else None
    if dd is not None and key in SYSFS_TO_DMIDECODE:
        t, field_name = SYSFS_TO_DMIDECODE[key]
        s = dd.first(t)
        if s is not None:
            return s.fields.get(field_name)
    return None


def has_dmi(fp: Fingerprint) -> bool:
    return bool(fp.dmi) or bool(fp.tools and fp.tools.dmidecode and fp.tools.dmidecode.structures)


def pci_vendors(fp: Fingerprint) -> dict[str, int]:
    """address → vendor id, from the fingerprint's PCI section, else lspci."""
    if fp.pci:
        return {f.ref: f.vendor for f in fp.pci}
    lspci = fp.tools.lspci if fp.tools else ()
    return {d.address: d.vendor for d in lspci if d.vendor is not None}


def smbios_vm_bit(fp: Fingerprint) -> bool | None:
    """SMBIOS type 0 BIOS characteristics extension byte 2, bit 4 ("virtual machine")."""
    bios = fp.smbios.bios if fp.smbios else None
    if bios is not None and len(bios.characteristics_ext) >= 2:
        return bool(bios.characteristics_ext[1] & 0x10)
    dd = fp.tools.dmidecode if fp.tools else None
    s = dd.first(0) if dd else None
    if s is not None and s.lists.get("Characteristics") is not None:
        return "System is a virtual machine" in s.lists["Characteristics"]
    return None


# --------------------------------------------------------------------------
# Linux kernel: detect_hypervisor_vendor() → "Hypervisor detected: <name>"

_KERNEL_CPUID = (("VMwareVMware", "VMware"), ("KVMKVMKVM", "KVM"), ("Microsoft Hv", "Microsoft Hyper-V"),
                 ("XenVMMXenVMM", "Xen HVM"), ("Jailhouse", "Jailhouse"), ("ACRNACRNACRN", "ACRN"))


def linux_kernel(fp: Fingerprint) -> Verdict:
    """Name the kernel prints after ``Hypervisor detected:``, None if it prints no such line.

    With the CPUID hypervisor bit set, each hypervisor's detect() looks for its
    signature at 0x40000000; VMware's also accepts, *only when the bit is
    clear*, a DMI serial containing "VMware" plus a backdoor GETVERSION reply
    with the magic in ebx and eax != -1."""
    bit = hypervisor_bit(fp)
    if bit is None:
        return Verdict("linux", None, (), ("cpuid",))
    if bit:
        sig = cpuid_signature(fp) or ""
        for prefix, name in _KERNEL_CPUID:
            if sig.startswith(prefix):
                return Verdict("linux", name, ("CPUID hypervisor bit set", f"signature {sig!r}"))
        return Verdict("linux", None, ("CPUID hypervisor bit set", f"unknown signature {sig!r}",
                                       "DMI path not tried (only without the hypervisor bit)"))
    serial = dmi(fp, "product_serial")
    if serial is None or "VMware" not in serial:
        return Verdict("linux", None, ("CPUID hypervisor bit clear", f"DMI serial {serial!r} lacks 'VMware'"))
    if fp.backdoor is None:
        return Verdict("linux", None, ("CPUID hypervisor bit clear", f"DMI serial {serial!r}",
                                       f"backdoor: {fp.backdoor_error or 'no reply'}"),
                       () if fp.backdoor_error else ("backdoor",))
    ok = fp.backdoor.ebx == VMWARE_MAGIC and fp.backdoor.eax != 0xFFFFFFFF
    ev = ("CPUID hypervisor bit clear", f"DMI serial {serial!r}",
          f"backdoor GETVERSION eax=0x{fp.backdoor.eax:x} ebx=0x{fp.backdoor.ebx:08x}")
    return Verdict("linux", "VMware" if ok else None, ev)


def kernel_says(fp: Fingerprint) -> str | None:
    """What the real kernel said (``Hypervisor detected: X`` → X)."""
    for line in fp.hypervisor_lines:
        return line.split("Hypervisor detected:", 1)[1].strip()
    return None


# --------------------------------------------------------------------------
# systemd-detect-virt (VM part; containers are out of scope in a VM probe)

_SYSTEMD_CPUID = (("XenVMMXenVMM", "xen"), ("KVMKVMKVM", "kvm"), ("Linux KVM Hv", "kvm"), ("TCGTCGTCGTCG", "qemu"),
                  ("VMwareVMware", "vmware"), ("Microsoft Hv", "microsoft"), ("bhyve bhyve ", "bhyve"),
                  ("QNXQVMBSQG", "qnx"), ("ACRNACRNACRN", "acrn"), ("SRESRESRESRE", "sre"))
_SYSTEMD_DMI_FILES = ("product_name", "sys_vendor", "board_vendor", "bios_vendor", "product_version")
_SYSTEMD_DMI_VENDORS = (("KVM", "kvm"), ("OpenStack", "kvm"), ("KubeVirt", "kvm"), ("Amazon EC2", "amazon"),
                        ("QEMU", "qemu"), ("VMware", "vmware"), ("VMW", "vmware"), ("innotek GmbH", "oracle"),
                        ("VirtualBox", "oracle"), ("Xen", "xen"), ("Bochs", "bochs"), ("Parallels", "parallels"),
                        ("BHYVE", "bhyve"), ("Hyper-V", "microsoft"), ("Apple Virtualization", "apple"),
                        ("Google Compute Engine", "google"))


def _systemd_dmi(fp: Fingerprint) -> tuple[str, str]:
    for key in _SYSTEMD_DMI_FILES:
        value = dmi(fp, key)
        if value is None:
            continue
        for prefix, verdict in _SYSTEMD_DMI_VENDORS:
            if value.startswith(prefix):
                return verdict, f"DMI {key} {value!r} starts with {prefix!r}"
    if smbios_vm_bit(fp):
        return "vm-other", "SMBIOS BIOS characteristics say 'virtual machine'"
    return "none", "no DMI vendor matched"


def systemd_detect_virt(fp: Fingerprint) -> Verdict:
    """DMI first for vendors that hide behind KVM (oracle, xen, amazon, parallels),
    then CPUID (only with the hypervisor bit), then the rest of the DMI table."""
    missing = () if has_dmi(fp) else ("dmi",)
    dmi_verdict, dmi_ev = _systemd_dmi(fp)
    if dmi_verdict in ("oracle", "xen", "amazon", "parallels"):
        return Verdict("systemd-detect-virt", dmi_verdict, (dmi_ev,), missing)
    evidence = []
    other = False
    bit = hypervisor_bit(fp)
    if bit is None:
        missing += ("cpuid",)
    elif bit:
        sig = cpuid_signature(fp) or ""
        for prefix, verdict in _SYSTEMD_CPUID:
            if sig.startswith(prefix):
                if verdict != "microsoft":
                    return Verdict("systemd-detect-virt", verdict, (f"CPUID signature {sig!r}",), missing)
                break
        else:
            other = True
        evidence.append(f"CPUID hypervisor bit set, signature {sig!r}")
    else:
        evidence.append("CPUID hypervisor bit clear")
    if dmi_verdict not in ("none", "vm-other"):
        return Verdict("systemd-detect-virt", dmi_verdict, (*evidence, dmi_ev), missing)
    evidence.append(dmi_ev)
    sig = cpuid_signature(fp) or ""
    if bit and sig.startswith("Microsoft Hv"):
        return Verdict("systemd-detect-virt", "microsoft", tuple(evidence), missing)
    if other or dmi_verdict == "vm-other":
        return Verdict("systemd-detect-virt", "vm-other", tuple(evidence), missing)
    return Verdict("systemd-detect-virt", "none", tuple(evidence), missing)


# --------------------------------------------------------------------------
# virt-what: the script's checks in its order (x86 facts only)

def _dmidecode_text(fp: Fingerprint) -> str | None:
    if fp.tools and "dmidecode" in fp.tools.runs:
        return fp.tools.runs["dmidecode"].stdout
    if fp.tools and fp.tools.dmidecode is not None:
        return "\n".join(f"\t{k}: {v}" for s in fp.tools.dmidecode.structures for k, v in s.fields.items())
    return None


def virt_what(fp: Fingerprint) -> Verdict:
    """Facts virt-what prints, in the script's order (virt-what 1.25, x86 checks that
    read CPUID or dmidecode).  Its cpuid helper prints the 0x40000000 signature; the
    DMI checks grep dmidecode's text ("Manufacturer: VMware").  Not modelled: the
    container, UML, s390, sparc and ppc64 checks (not x86 VMs), /proc/xen and
    /sys/hypervisor (a Xen guest's kernel; the x86 fingerprint has the CPUID
    signature instead), and the last resort of the QEMU/KVM block, "QEMU" in
    /proc/cpuinfo's model name, which the probe does not record: when the model
    gets that far it names ``cpuinfo`` among the missing facts."""
    text = _dmidecode_text(fp)
    missing: tuple[str, ...] = () if text is not None else ("dmidecode",)
    text = text or ""
    sig = cpuid_signature(fp)
    if sig is None:
        missing += ("cpuid",)
    sig = sig or ""
    facts: list[str] = []
    ev: list[str] = []

    def grep(pattern: str) -> bool:
        return re.search(pattern, text) is not None

    def fact(name: str, why: str) -> None:
        facts.append(name)
        ev.append(f"{name}: {why}")

    if grep("Manufacturer: Alibaba"):
        fact("alibaba_cloud", "dmidecode 'Manufacturer: Alibaba'")
    if sig == "VMwareVMware":
        fact("vmware", "CPUID 'VMwareVMware'")
    elif grep("Manufacturer: VMware"):
        fact("vmware", "dmidecode 'Manufacturer: VMware'")
    if sig == "Microsoft Hv":
        fact("hyperv", "CPUID 'Microsoft Hv'")
    if sig != "Microsoft Hv" and grep("Manufacturer: Microsoft Corporation") and grep("Product Name: Virtual Machine"):
        fact("virtualpc", "dmidecode 'Microsoft Corporation' / 'Virtual Machine' without the Hyper-V signature")
    if grep("Manufacturer: innotek GmbH"):
        fact("virtualbox", "dmidecode 'Manufacturer: innotek GmbH'")
    if sig == "bhyve bhyve " or grep("Vendor: BHYVE"):
        fact("bhyve", "CPUID or dmidecode bhyve")
    if grep("Manufacturer.*HITACHI") and grep("Product.* LPAR"):
        fact("virtage", "dmidecode HITACHI LPAR")
    skip_qemu_kvm = False
    if grep("Vendor: Parallels"):
        fact("parallels", "dmidecode 'Vendor: Parallels'")
        skip_qemu_kvm = True
    for pattern, name in (("Manufacturer: Nutanix", "nutanix_ahv"), ("Manufacturer: oVirt", "ovirt"),
                          ("Product Name: RHEV Hypervisor", "rhev"),
                          ("Product Name: Google Compute Engine", "google_cloud"), ("Manufacturer: Red Hat", "redhat")):
        if grep(pattern):
            fact(name, f"dmidecode {pattern!r}")
    if sig == "XenVMMXenVMM" and not grep("No SMBIOS nor DMI entry point found, sorry"):
        fact("xen", "CPUID 'XenVMMXenVMM'")
        facts.append("xen-hvm")
        skip_qemu_kvm = True
    skip_lkvm = False
    if not skip_qemu_kvm:
        if sig == "KVMKVMKVM":
            fact("kvm", "CPUID 'KVMKVMKVM'")
        elif sig == "TCGTCGTCGTCG":
            fact("qemu", "CPUID 'TCGTCGTCGTCG'")
        elif grep("Product Name: KVM") or grep("Manufacturer: KVM"):
            fact("kvm", "dmidecode KVM")
            skip_lkvm = True
        elif grep("Manufacturer: Amazon EC2") and grep("System is a virtual machine"):
            fact("kvm", "dmidecode 'Manufacturer: Amazon EC2' on a virtual machine")
            skip_lkvm = True
        elif grep("Manufacturer: QEMU"):
            fact("qemu", "dmidecode 'Manufacturer: QEMU' (any structure: QEMU's type 4/17 default)")
            skip_lkvm = True
        else:
            missing += ("cpuinfo",)
    if not skip_lkvm and sig == "LKVMLKVMLKVM":
        fact("lkvm", "CPUID 'LKVMLKVMLKVM'")
    if sig == "OpenBSDVMM58":
        fact("vmm", "CPUID 'OpenBSDVMM58'")
    if grep(r"Version: [0-9]+\.[0-9]+\.amazon"):
        fact("aws", "dmidecode 'Version: N.N.amazon' (AWS on Xen)")
    elif grep("Vendor: Amazon EC2"):
        fact("aws", "dmidecode 'Vendor: Amazon EC2'")
    if not ev:
        ev.append(f"CPUID signature {sig!r}, no DMI string matched")
    return Verdict("virt-what", ",".join(facts), tuple(ev), missing)


# --------------------------------------------------------------------------
# open-vm-tools VmCheck (vmware-checkvm)

VMCHECK_VERSION_MAGIC = 6


def vmware_vmcheck(fp: Fingerprint) -> Verdict:
    """VmCheck_IsVirtualWorld: the backdoor GETVERSION must echo the magic in ebx
    and report version 6 in eax.  The model takes the backdoor reply the probe
    got with I/O permission; an unprivileged process under TCG gets #GP instead
    (measured-here.md), which is what plain ``vmware-checkvm`` shows."""
    if fp.backdoor is None:
        if fp.backdoor_error:
            return Verdict("vmware-checkvm", "no", (f"backdoor: {fp.backdoor_error}",))
        return Verdict("vmware-checkvm", None, (), ("backdoor",))
    b = fp.backdoor
    ev = (f"GETVERSION eax={b.eax} ebx=0x{b.ebx:08x} ecx={b.ecx}",)
    if b.ebx != VMWARE_MAGIC or b.eax == 0xFFFFFFFF:
        return Verdict("vmware-checkvm", "no", ev)
    if b.eax != VMCHECK_VERSION_MAGIC:
        return Verdict("vmware-checkvm", "version-mismatch", ev)
    return Verdict("vmware-checkvm", "vmware", ev)


def checkvm_says(check: guest_tools.VmwareCheck | None) -> str | None:
    if check is None:
        return None
    return "vmware" if check.ok else "no"


# --------------------------------------------------------------------------
# Windows-side checks (malware/licensing heuristics, SCCM, setupapi logs)

def windows_checks(fp: Fingerprint) -> Verdict:
    """What Windows software commonly tests: a PCI function of vendor 15ad, a NIC
    MAC in a VMware OUI, SMBIOS manufacturer/product/serial naming VMware."""
    ev = []
    for ref, vendor in sorted(pci_vendors(fp).items()):
        if vendor == 0x15AD:
            ev.append(f"PCI {ref} vendor 15ad")
            break
    for nic in fp.net:
        if nic.mac and nic.mac.lower()[:8] in VMWARE_OUIS:
            ev.append(f"MAC {nic.mac} ({nic.name}) in a VMware OUI")
    for key, word in (("sys_vendor", "VMware"), ("product_name", "VMware"), ("product_serial", "VMware-"),
                      ("bios_vendor", "VMware")):
        value = dmi(fp, key)
        if value and word in value:
            ev.append(f"SMBIOS {key} {value!r}")
    missing = tuple(n for n, have in (("pci", bool(pci_vendors(fp))), ("dmi", has_dmi(fp)), ("net", bool(fp.net)))
                    if not have)
    return Verdict("windows", "vmware" if ev else "none", tuple(ev) or ("no VMware PCI vendor, OUI or SMBIOS string",),
                   missing)


MODELS: dict[str, Callable[[Fingerprint], Verdict]] = {
    "linux": linux_kernel, "systemd-detect-virt": systemd_detect_virt, "virt-what": virt_what,
    "vmware-checkvm": vmware_vmcheck, "windows": windows_checks,
}


def evaluate(fp: Fingerprint) -> dict[str, Verdict]:
    """Every model's verdict on *fp*."""
    return {name: model(fp) for name, model in MODELS.items()}


def real_verdicts(fp: Fingerprint) -> dict[str, str | None]:
    """What the real detectors in the guest concluded, keyed like ``MODELS``, in the
    models' vocabulary; a detector that did not run (a ppc64 image has no
    systemd-detect-virt, virt-what or vmware-checkvm) is absent.  ``linux`` is the
    kernel's ``Hypervisor detected:`` line (None: no such line), present whenever
    the kernel log was read.  The Windows checks have no tool in a Linux guest."""
    out: dict[str, str | None] = {}
    if fp.kernel_log or fp.hypervisor_lines:
        out["linux"] = kernel_says(fp)
    tools = fp.tools
    if tools is None:
        return out
    if "systemd-detect-virt" in tools.runs:
        out["systemd-detect-virt"] = tools.detect_virt
    if "virt-what" in tools.runs:
        out["virt-what"] = ",".join(tools.virt_what or ())
    if "vmware-checkvm-ioperm" in tools.runs:
        out["vmware-checkvm"] = checkvm_says(tools.vmware_checkvm_ioperm)
    return out


@dataclass(frozen=True)
class Disagreement:
    """A model that concluded otherwise than the real detector on the same guest."""

    detector: str
    model: Verdict
    real: str | None

    def line(self) -> str:
        return (f"{self.detector}: model says {self.model.result!r}, the real tool {self.real!r} "
                f"(model evidence: {'; '.join(self.model.evidence) or '-'})")


def disagreements(fp: Fingerprint) -> list[Disagreement]:
    """Every detector that ran in the guest whose model concludes something else."""
    verdicts = evaluate(fp)
    return [Disagreement(name, verdicts[name], real) for name, real in real_verdicts(fp).items()
            if verdicts[name].result != real]


def fingerprint_from_captures(lspci_text: str | None = None, dmidecode_text: str | None = None) -> Fingerprint:
    """A partial fingerprint of a real machine from its ``lspci -nnmmv`` and ``dmidecode`` text."""
    runs = {}
    if lspci_text is not None:
        runs["lspci"] = guest_tools.ToolRun(0, lspci_text, "")
    if dmidecode_text is not None:
        runs["dmidecode"] = guest_tools.ToolRun(0, dmidecode_text, "")
    parsed, errors = guest_tools.parse_runs(runs)
    return Fingerprint(arch=None, kernel=None, dmi={}, smbios=None, smbios_raw=None, pci=(), net=(), block=(),
                       disk_rates=(), kernel_log=(), hypervisor_lines=(), cpuid={}, backdoor=None,
                       backdoor_error=None, devicetree={}, probe_errors=errors, tools=parsed)
