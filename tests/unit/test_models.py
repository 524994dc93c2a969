"""Detection models on stored data: a real vmware/esxi-6.5 fingerprint (whose real tools'
verdicts are in it), edits of it that present other hypervisors, and the real VMware
captures in /work/shared/vmware-captures (lspci/dmidecode text only)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from guestcompat.detection import models
from guestcompat.detection.fingerprint import CpuidLeaf, Fingerprint

DATA = Path(__file__).resolve().parents[1] / "data" / "esxi-6.5.fingerprint.json"
CAPTURES = Path("/work/shared/vmware-captures")


@pytest.fixture(scope="module")
def fp() -> Fingerprint:
    return Fingerprint.from_json(DATA.read_text())


def with_cpuid(fp: Fingerprint, signature: bytes, bit: bool = True) -> Fingerprint:
    sig = signature.ljust(12, b"\0")
    leaf = CpuidLeaf(0x40000001, *(int.from_bytes(sig[i:i + 4], "little") for i in (0, 4, 8)))
    one = fp.cpuid[1]
    one = dataclasses.replace(one, ecx=(one.ecx | 1 << 31) if bit else (one.ecx & ~(1 << 31)))
    return dataclasses.replace(fp, cpuid={**fp.cpuid, 1: one, 0x40000000: leaf})


def test_models_agree_with_the_real_tools_of_the_stored_boot(fp):
    assert models.kernel_says(fp) == "VMware"
    assert models.linux_kernel(fp).result == "VMware"
    assert models.systemd_detect_virt(fp).result == fp.tools.detect_virt == "vmware"
    assert models.virt_what(fp).result == ",".join(fp.tools.virt_what) == "vmware"
    assert models.vmware_vmcheck(fp).result == models.checkvm_says(fp.tools.vmware_checkvm_ioperm) == "vmware"
    assert models.windows_checks(fp).result == "vmware"
    missing = {name: v.missing for name, v in models.evaluate(fp).items() if v.missing}
    # virt-what's last resort ("QEMU" in /proc/cpuinfo) reads what the probe does not record
    assert missing == {"virt-what": ("cpuinfo",)}


def test_kernel_uses_dmi_and_backdoor_only_without_the_hypervisor_bit(fp):
    tcg = with_cpuid(fp, b"TCGTCGTCGTCG")
    assert models.linux_kernel(tcg).result is None          # bit set, unknown signature: DMI not tried
    assert models.linux_kernel(with_cpuid(fp, b"VMwareVMware")).result == "VMware"
    assert models.linux_kernel(with_cpuid(fp, b"KVMKVMKVM")).result == "KVM"
    no_magic = dataclasses.replace(fp, backdoor=dataclasses.replace(fp.backdoor, ebx=0))
    assert models.linux_kernel(no_magic).result is None
    other_serial = dataclasses.replace(fp, dmi={**fp.dmi, "product_serial": "1234"})
    assert models.linux_kernel(other_serial).result is None


def test_systemd_prefers_cpuid_over_dmi_except_for_cloaking_vendors(fp):
    assert models.systemd_detect_virt(with_cpuid(fp, b"TCGTCGTCGTCG")).result == "qemu"
    assert models.systemd_detect_virt(with_cpuid(fp, b"KVMKVMKVM")).result == "kvm"
    vbox = dataclasses.replace(with_cpuid(fp, b"KVMKVMKVM"), dmi={**fp.dmi, "product_name": "VirtualBox"})
    assert models.systemd_detect_virt(vbox).result == "oracle"
    plain_dmi = {k: "" for k in fp.dmi}
    assert models.systemd_detect_virt(dataclasses.replace(fp, dmi=plain_dmi)).result in ("none", "vm-other")
    assert models.systemd_detect_virt(with_cpuid(fp, b"SomethingNew")).result == "vmware"  # unknown sig, DMI decides


def test_virt_what_lists_facts_in_script_order(fp):
    assert models.virt_what(with_cpuid(fp, b"TCGTCGTCGTCG")).result == "vmware,qemu"
    assert models.virt_what(with_cpuid(fp, b"XenVMMXenVMM")).result == "vmware,xen,xen-hvm"


def test_vmcheck_needs_magic_and_version_6(fp):
    assert models.vmware_vmcheck(dataclasses.replace(fp, backdoor=dataclasses.replace(fp.backdoor, eax=4))).result \
        == "version-mismatch"
    assert models.vmware_vmcheck(dataclasses.replace(fp, backdoor=None, backdoor_error="#GP")).result == "no"


def test_windows_checks_each_signal_alone(fp):
    bare = dataclasses.replace(fp, pci=tuple(f for f in fp.pci if f.vendor != 0x15AD), net=(),
                               dmi={k: "" for k in fp.dmi}, tools=None)
    assert models.windows_checks(bare).result == "none"
    nic = dataclasses.replace(bare, net=fp.net)
    assert models.windows_checks(nic).result == "vmware"
    assert any("00:50:56" in e for e in models.windows_checks(nic).evidence)


@pytest.fixture(scope="module")
def capture() -> Fingerprint:
    return models.fingerprint_from_captures((CAPTURES / "fusion-ubuntu2010-jc.lspci.txt").read_text(),
                                            (CAPTURES / "fusion-centos77-jc.dmidecode.txt").read_text())


def test_models_on_real_vmware_captures(capture):
    assert models.systemd_detect_virt(capture).result == "vmware"
    assert models.virt_what(capture).result == "vmware"       # 'Manufacturer: VMware, Inc.' in the dmidecode text
    win = models.windows_checks(capture)
    assert win.result == "vmware" and any("vendor 15ad" in e for e in win.evidence)
    assert "net" in win.missing
    # what a capture cannot tell is said, not guessed
    assert models.linux_kernel(capture).result is None and "cpuid" in models.linux_kernel(capture).missing
    assert models.vmware_vmcheck(capture).missing == ("backdoor",)
    # VMware's BIOS (04/13/2018) does not set SMBIOS's 'virtual machine' bit: systemd needs its vendor table
    assert models.smbios_vm_bit(capture) is False


def test_real_verdicts_and_disagreements_on_the_stored_boot(fp):
    assert models.real_verdicts(fp) == {"linux": "VMware", "systemd-detect-virt": "vmware", "virt-what": "vmware",
                                        "vmware-checkvm": "vmware"}
    assert models.disagreements(fp) == []


def test_a_model_that_concludes_otherwise_is_a_disagreement(fp):
    """The guest's tools said vmware; a fingerprint whose CPUID now says KVM makes the models say kvm."""
    kvm = with_cpuid(fp, b"KVMKVMKVM")
    found = {d.detector: (d.model.result, d.real) for d in models.disagreements(kvm)}
    assert found["systemd-detect-virt"] == ("kvm", "vmware")
    assert found["linux"] == ("KVM", "VMware")
    assert "signature 'KVMKVMKVM'" in models.disagreements(kvm)[0].line()


def test_a_detector_that_did_not_run_is_not_compared(fp):
    runs = {k: v for k, v in fp.tools.runs.items() if k not in ("systemd-detect-virt", "virt-what")}
    partial = dataclasses.replace(fp, tools=dataclasses.replace(fp.tools, runs=runs, detect_virt=None, virt_what=None))
    assert set(models.real_verdicts(partial)) == {"linux", "vmware-checkvm"}


def test_virt_what_follows_the_script_for_clouds_and_qemu_defaults(fp):
    """Found on the booted Xen combination: virt-what prints 'qemu,aws' for Xen DMI strings
    with an Amazon version under TCG (QEMU's own 'Manufacturer: QEMU' in type 4/17, then AWS on Xen)."""
    text = ("Handle 0x0100, DMI type 1, 27 bytes\nSystem Information\n\tManufacturer: Xen\n"
            "\tProduct Name: HVM domU\n\tVersion: 4.11.amazon\n"
            "Handle 0x0400, DMI type 4, 42 bytes\nProcessor Information\n\tManufacturer: QEMU\n")
    xen = models.fingerprint_from_captures(dmidecode_text=text)
    assert models.virt_what(xen).result == "qemu,aws"
    assert models.virt_what(with_cpuid(fp, b"XenVMMXenVMM")).result == "vmware,xen,xen-hvm"   # skips qemu/kvm
    gce = models.fingerprint_from_captures(dmidecode_text="\tProduct Name: Google Compute Engine\n")
    assert models.virt_what(gce).result == "google_cloud"
    assert "cpuinfo" in models.virt_what(gce).missing
