"""Boot the bundled vmware/esxi-6.5 profile for real and assert what the guest sees."""

from __future__ import annotations

import pytest

from detection_support import compare_with_dmidecode, dmidecode_of
from shared_boots import direct_boot

from guestcompat.detection import models
from guestcompat.emulation.target import Target
from guestcompat.harness.compare import Status
from guestcompat.harness.run import RunOutcome
from guestcompat.profiles.identity import effective_smbios

pytestmark = pytest.mark.boot


@pytest.fixture(scope="module")
def outcome() -> RunOutcome:
    return direct_boot("vmware/esxi-6.5", Target("x86_64", "pc", "tcg"))


def test_verdict_passes_with_no_mismatch(outcome):
    failures = [c.line() for c in outcome.checks if c.status is Status.FAIL]
    assert outcome.passed, failures


def test_kernel_detects_vmware(outcome):
    assert "Hypervisor detected: VMware" in outcome.fingerprint.hypervisor_lines


def test_backdoor_answers_as_esx(outcome):
    reply = outcome.fingerprint.backdoor
    assert reply is not None and (reply.eax, reply.ebx, reply.ecx) == (6, 0x564D5868, 2)


def test_dmi_strings_are_vmware(outcome):
    dmi = outcome.fingerprint.dmi
    assert dmi["sys_vendor"] == "VMware, Inc."
    assert dmi["product_name"] == "VMware Virtual Platform"
    assert dmi["product_serial"] == "VMware-42 1e 5b 8f 9c 3a 1d 2e-7f 41 3b 2a 6c 5d 4e 3f"
    assert dmi["product_uuid"].lower() == "421e5b8f-9c3a-1d2e-7f41-3b2a6c5d4e3f"
    assert dmi["bios_vendor"] == "Phoenix Technologies LTD" and dmi["bios_date"] == "04/05/2016"
    assert dmi["board_name"] == "440BX Desktop Reference Platform"
    assert outcome.fingerprint.smbios.oem_strings[0].startswith("[MS_VM_CERT/SHA1/")


def test_guest_smbios_decodes_as_dmidecode_reads_it(outcome, tmp_path):
    """Our construct decoder and dmidecode agree on the table the guest really read."""
    raw = outcome.fingerprint.smbios_raw
    assert raw is not None and raw.entry_point is not None
    parsed = dmidecode_of(raw.table, raw.entry_point, tmp_path)
    assert compare_with_dmidecode(outcome.fingerprint.smbios, parsed) > 20


def test_vmxnet3_at_0b_00_0_and_pvscsi_at_03_00_0(outcome):
    fp = outcome.fingerprint
    nic, scsi = fp.pci_function("0b:00.0"), fp.pci_function("03:00.0")
    assert (nic.vendor, nic.device, nic.driver) == (0x15AD, 0x07B0, "vmxnet3")
    assert (scsi.vendor, scsi.device, scsi.driver) == (0x15AD, 0x07C0, "vmw_pvscsi")
    assert [n.mac for n in fp.net if n.pci == "0b:00.0"] == ["00:50:56:9a:60:e7"]
    assert [(b.vendor, b.model) for b in fp.block if b.pci == "03:00.0"] == [("VMware", "Virtual disk")]


def test_bus_numbers_are_vmwares(outcome):
    fp = outcome.fingerprint
    assert fp.pci_function("00:11.0").secondary_bus == 0x02
    expected = {f"00:{0x15 + i // 8:02x}.{i % 8}": 3 + i for i in range(32)}
    assert {a: fp.pci_function(a).secondary_bus for a in expected} == expected


def test_guest_sees_vmware_slot_numbers(outcome):
    """The SSDT's _SUN reaches /sys/bus/pci/slots: pvscsi in slot 160, vmxnet3 in 192 (systemd: ens192)."""
    fp = outcome.fingerprint
    assert fp.pci_function("03:00.0").physical_slot == "160"
    assert fp.pci_function("0b:00.0").physical_slot == "192"
    nic = [n for n in fp.net if n.pci == "0b:00.0"]
    assert len(nic) == 1 and fp.pci_function(nic[0].pci).physical_slot == "192"  # udev's ens<slot> → ens192
    checks = {c.selector: c for c in outcome.checks}
    for address, slot in (("03:00.0", 160), ("0b:00.0", 192)):
        check = checks[f"pci[{address}].physical_slot"]
        assert (check.wanted, check.presented, check.observed, check.status) == (slot, slot, slot, Status.PASS)


def test_bus_0_devices_show_no_slot_as_on_vmware(outcome):
    """VMware lists no PhySlot for bus-0 functions; QEMU's ACPI hotplug (switched off) would add some."""
    fp = outcome.fingerprint
    on_bus_0 = [f for f in fp.pci if f.address.startswith("00:")]
    assert len(on_bus_0) > 30 and all(f.physical_slot is None for f in on_bus_0)


def test_query_pci_agrees_with_the_guest(outcome):
    """QEMU's own view places the NIC on the bus the guest numbers 0b."""
    def walk(devices):
        for dev in devices:
            yield dev
            yield from walk(dev.get("pci_bridge", {}).get("devices", []))
    found = {(d["bus"], d["slot"], d["function"]): d["id"]["vendor"]
             for bus in outcome.boot.query_pci for d in walk(bus["devices"])}
    assert found[(0x0B, 0, 0)] == 0x15AD and found[(0x03, 0, 0)] == 0x15AD


# --- the guest's own tools (lspci, dmidecode, systemd-detect-virt, virt-what, net_id, vmware-checkvm)

def test_systemd_detect_virt_and_virt_what_say_vmware(outcome):
    tools = outcome.fingerprint.tools
    assert tools.detect_virt == "vmware"
    # Only "vmware": QEMU's own traces that virt-what also finds (TCG's CPUID
    # 0x40000000 signature, "QEMU" as SMBIOS type 4/17 manufacturer, the CPU
    # brand string) are replaced by tcg-cpuid=off and the profile's VMware values.
    assert tools.virt_what == ("vmware",)


def test_detection_models_agree_with_the_real_tools(outcome):
    fp = outcome.fingerprint
    assert set(models.real_verdicts(fp)) == {"linux", "systemd-detect-virt", "virt-what", "vmware-checkvm"}
    assert [d.line() for d in models.disagreements(fp)] == []


def test_vmware_checkvm_needs_io_permission_under_tcg(outcome):
    """VMware lets any user-mode process use the backdoor; QEMU TCG raises #GP
    unless the process holds ioperm on 0x5658-0x565b.  Finding, not hidden."""
    tools = outcome.fingerprint.tools
    assert tools.vmware_checkvm_ioperm.ok and tools.vmware_checkvm_ioperm.version == 6
    assert not tools.vmware_checkvm.ok
    assert tools.runs["vmware-checkvm"].status != 0


def test_lspci_in_the_guest_lists_vmxnet3_and_pvscsi(outcome):
    tools = outcome.fingerprint.tools
    nic, scsi = tools.lspci_device("0b:00.0"), tools.lspci_device("03:00.0")
    assert (nic.vendor, nic.device, nic.device_name) == (0x15AD, 0x07B0, "VMXNET3 Ethernet Controller")
    assert (scsi.vendor, scsi.device, scsi.device_name) == (0x15AD, 0x07C0, "PVSCSI SCSI Controller")
    assert {d.address for d in tools.lspci} == {f.ref for f in outcome.fingerprint.pci}


def test_dmidecode_system_information_matches_the_profile(outcome):
    wanted = effective_smbios(outcome.compiled.profile).system
    system = outcome.fingerprint.tools.dmidecode.first(1)
    assert system.title == "System Information"
    assert (system.fields["Manufacturer"], system.fields["Product Name"], system.fields["Serial Number"],
            system.fields["UUID"]) == (wanted.manufacturer, wanted.product, wanted.serial, wanted.uuid.lower())
    assert system.fields["Manufacturer"] == "VMware, Inc."
    bios = outcome.fingerprint.tools.dmidecode.first(0)
    assert bios.fields["Release Date"] == outcome.compiled.profile.smbios.bios.date


def test_net_id_names_the_vmxnet3_nic_ens192_as_on_vmware(outcome):
    """systemd's own net_id, run in the guest, gives VMware's name: slot 192 -> ens192."""
    fp = outcome.fingerprint
    [iface] = [n.name for n in fp.net if n.pci == "0b:00.0"]
    names = fp.tools.net_names[iface]
    assert names.path == "enp11s0" and names.slot == "ens192" and names.predictable == "ens192"
    [check] = [c for c in outcome.checks if c.selector == "net[0b:00.0].name"]
    assert check.status is Status.PASS and check.observed == "ens192"


def test_guest_tools_ran_without_errors(outcome):
    fp = outcome.fingerprint
    assert not [e for e in fp.probe_errors if e.startswith(("tool ", "lspci", "dmidecode", "net_id"))]
    assert {"lspci", "dmidecode", "systemd-detect-virt", "virt-what", "vmware-checkvm",
            "vmware-checkvm-ioperm"} <= set(fp.tools.runs)
