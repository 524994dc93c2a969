"""The libvirt rendering: elements mapped back from the compiled argv, passthrough listed with reasons."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from guestcompat.emulation.arches import resolve_target
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.libvirt_xml import QEMU_NS, RunFiles, render
from guestcompat.emulation.qemuopts import split
from guestcompat.emulation.target import Target
from guestcompat.profiles.identity import effective_smbios
from guestcompat.profiles.loader import list_profiles, load

PC = Target("x86_64", "pc", "tcg")
PSERIES = Target("ppc64", "pseries", "tcg")
Q = f"{{{QEMU_NS}}}"


def _xml(name: str, target: Target = PC, files: RunFiles | None = None):
    domain = render(compile_profile(load(name), target), files)
    return domain, ET.fromstring(domain.xml)


def _passed_args(root: ET.Element) -> list[str]:
    return [a.get("value") for a in root.iter(f"{Q}arg")]


def test_esxi65_sysinfo_carries_the_derived_identity():
    _, root = _xml("vmware/esxi-6.5")
    smbios = effective_smbios(load("vmware/esxi-6.5"))
    system = {e.get("name"): e.text for e in root.findall("sysinfo/system/entry")}
    assert system["serial"] == smbios.system.serial == "VMware-42 1e 5b 8f 9c 3a 1d 2e-7f 41 3b 2a 6c 5d 4e 3f"
    assert system["manufacturer"] == "VMware, Inc."  # unescaped: XML, not QemuOpts
    assert root.findtext("uuid") == smbios.system.uuid
    assert root.find("os/smbios").get("mode") == "sysinfo"
    assert [e.text for e in root.findall("sysinfo/oemStrings/entry")] == list(smbios.oem_strings)
    assert root.find("features/vmport").get("state") == "on"
    assert root.get("type") == "qemu"


def test_esxi65_cpu_and_what_libvirt_cannot_express():
    domain, root = _xml("vmware/esxi-6.5")
    cpu = root.find("cpu")
    assert cpu.findtext("model") == "qemu64" and cpu.find("model").get("vendor_id") == "GenuineIntel"
    assert cpu.find("feature[@name='hypervisor']").get("policy") == "disable"
    args = _passed_args(root)
    assert "qemu64-x86_64-cpu.tcg-cpuid=off" in args
    assert "vmport.vmware-vmx-version=6" in args and "PIIX4_PM.acpi-root-pci-hotplug=off" in args
    assert "file=@artefact/ssdt-slots.aml" in args
    assert any(a.startswith("type=4,") for a in args) and any(a.startswith("type=17,") for a in args)
    # every passed-through option is listed with its reason
    assert all(p.reason for p in domain.passthrough)
    assert sum(len(p.args) for p in domain.passthrough if not p.args[0].startswith("ua-")) == len(args)


def test_pc_root_ports_pass_through_with_what_plugs_into_them():
    domain, root = _xml("vmware/esxi-6.5")
    assert not root.findall("devices/controller[@model='pcie-root-port']")
    refused = [p for p in domain.passthrough if "pcie-root-port" in p.args[-1]]
    assert len(refused) == 32 and "i440FX" in refused[0].reason
    behind = [p for p in domain.passthrough if p.args[-1].startswith(("pvscsi", "vmxnet3"))]
    assert behind and all("passed through" in p.reason for p in behind)
    bridges = root.findall("devices/controller[@model='pci-bridge']")
    assert [(b.find("alias").get("name"), b.find("address").get("slot"), b.find("target").get("chassisNr"))
            for b in bridges] == [("ua-agp", "0x0e", "1"), ("ua-pciBridge0", "0x11", "2")]


def test_native_controller_disk_nic_and_override(profile_dir):
    profile_dir("t/lvqos", """
        extends = "vmware/esxi-5.1"
        [[disks]]
        name = "disk0"
        controller = "scsi0"
        limits = { bps_read = 4194304, iops_write = 100 }
    """)
    domain, root = _xml("t/lvqos")
    controller = root.find("devices/controller[@type='scsi']")
    assert controller.get("model") == "lsisas1068"
    assert controller.find("address").get("slot") == "0x10"
    disk = root.find("devices/disk")
    assert disk.find("address").get("controller") == controller.get("index")
    assert disk.findtext("iotune/read_bytes_sec") == "4194304" and disk.findtext("iotune/write_iops_sec") == "100"
    assert disk.findtext("vendor") == "VMware" and disk.find("source").get("file") == "@disk/disk0.raw"
    ver = root.find(f"{Q}override/{Q}device[@alias='ua-disk0']/{Q}frontend/{Q}property[@name='ver']")
    assert ver.get("type") == "string" and ver.get("value") == "1.0"
    # the e1000e sits behind a (passed-through) root port: its catalogue properties go with it
    assert any(a.startswith("e1000e,") and "subsys_ven=5549" in a and "mac=00:50:56:a1:70:c5" in a
               for a in _passed_args(root))
    assert domain.disks[0].size == 1 << 30


def test_nic_on_a_native_bridge_keeps_model_mac_and_bus():
    domain, root = _xml("vmware/esxi-4.0")
    nic = root.find("devices/interface")
    assert nic.find("model").get("type") == "e1000-82545em"
    bridge = root.find("devices/controller[alias='ua-pciBridge0']") or next(
        c for c in root.findall("devices/controller") if c.find("alias") is not None
        and c.find("alias").get("name") == "ua-pciBridge0")
    assert nic.find("address").get("bus") == f"{int(bridge.get('index')):#04x}"
    # network isolation as on the direct backend: the NIC is plugged into the compiled restrict=on netdev
    override = root.find(f"{Q}override/{Q}device[@alias='ua-ethernet0']/{Q}frontend/{Q}property[@name='netdev']")
    assert override is not None and override.get("value") == "net-ethernet0"
    args = _passed_args(root)
    assert args[args.index("-netdev") + 1] == "user,id=net-ethernet0,restrict=on"


@pytest.mark.parametrize("name", [s.name for s in list_profiles() if not load(s.name).abstract])
def test_every_nic_is_restricted_on_the_libvirt_backend(name):
    """No NIC of any bundled profile reaches an unrestricted user network (issue 13: 13 of 19 did)."""
    target = resolve_target(load(name).platform.arch)
    root = ET.fromstring(render(compile_profile(load(name), target)).xml)
    args = _passed_args(root)
    restricted = {split(args[i + 1])[1]["id"] for i, a in enumerate(args[:-1])
                  if a == "-netdev" and split(args[i + 1])[1].get("restrict") == "on"}
    for nic in root.findall("devices/interface"):
        alias = nic.find("alias").get("name")
        prop = root.find(f"{Q}override/{Q}device[@alias='{alias}']/{Q}frontend/{Q}property[@name='netdev']")
        assert prop is not None and prop.get("value") in restricted, (name, alias)
    for i, a in enumerate(args[:-1]):  # passed-through NICs carry their own netdev
        if a == "-netdev":
            assert split(args[i + 1])[1].get("restrict") == "on", (name, args[i + 1])


def test_pseries_vio_addresses_and_console_passthrough():
    domain, root = _xml("power/pseries-vscsi", PSERIES)
    assert root.find("devices/controller[@model='ibmvscsi']/address").attrib == {"type": "spapr-vio",
                                                                                  "reg": "0x71000010"}
    assert root.find("devices/interface/address").get("reg") == "0x71000020"
    assert root.find("features") is None and root.find("sysinfo") is None
    args = _passed_args(root)
    assert args[args.index("-serial") + 1] == "chardev:console"
    assert any("x-vof=on" in a and "host-model=IBM,,9009-22A" in a for a in args)


def test_run_files_replace_every_placeholder(tmp_path):
    files = RunFiles("/k/vmlinux", "/k/initrd", "console=ttyS0 x", str(tmp_path / "c.log"), str(tmp_path),
                     {"@artefact/ssdt-slots.aml": "/a/ssdt.aml"}, name="run-1")
    domain, root = _xml("vmware/esxi-6.5", files=files)
    assert "@" not in domain.xml.replace("@ 2.40GHz", "")
    assert root.findtext("name") == "run-1" and root.findtext("os/cmdline") == "console=ttyS0 x"
    assert root.find("devices/serial/source").get("path") == str(tmp_path / "c.log")


def test_a_remote_hosts_run_files_give_a_pty_console_and_pool_named_disks():
    files = RunFiles("/pool/k", "/pool/i", "x", "", "/pool", name="guestcompat-1-ab", disk_prefix="guestcompat-1-ab-",
                     console_pty=True)
    domain, root = _xml("vmware/esxi-6.0", files=files)
    serial = root.find("devices/serial")
    assert serial.get("type") == "pty" and serial.find("source") is None
    assert serial.find("target").get("type") == "isa-serial"
    assert domain.disks and all(d.path.startswith("/pool/guestcompat-1-ab-") and d.path.endswith(".raw")
                                for d in domain.disks)
    assert [s.get("file") for s in root.iter("source") if s.get("file")] == [d.path for d in domain.disks]


def test_libvirt_messages_are_traced_to_profile_keys():
    from guestcompat.harness.libvirt_validate import explain

    compiled = compile_profile(load("vmware/esxi-6.5"), PC)
    assert explain(compiled, "device 'ua-pciBridge4-3' is broken").endswith("(profile key pci.bridges[pciBridge4])")
    assert "(profile key pci.devices[ethernet0])" in explain(compiled, "The device at PCI address 0000:0b:00.0 x") \
        or "(profile key pci.devices[ethernet0])" in explain(compiled, "alias ua-ethernet0 x")
    esxi51 = compile_profile(load("vmware/esxi-5.1"), PC)  # its disk is on a native controller: target sda
    assert "(profile key disks[disk0])" in explain(esxi51, "duplicate drive address for disk with target name 'sda'")
    assert "(profile key smbios.bios.date)" in explain(compiled, "Invalid BIOS 'date' format: 2016")
    assert "no single profile key" in explain(compiled, "something else entirely")


def test_a_profile_without_uuid_gets_libvirts_generated_one_as_a_known_deviation():
    from guestcompat.emulation.fidelity import UNKNOWN
    from guestcompat.emulation.libvirt_xml import libvirt_report

    compiled = compile_profile(load("power/pseries-pci"), PSERIES)
    changed = {e.selector: e for e in libvirt_report(compiled).expectations
               if e not in compiled.report.expectations}
    assert set(changed) == {"devicetree.root.system-id", "devicetree.root.vm,uuid"}
    assert all(e.presented == UNKNOWN and "generates one" in e.reason for e in changed.values())
    assert render(compiled).guest_visible
    stated = compile_profile(load("power/pseries-vscsi"), PSERIES)
    assert libvirt_report(stated) == stated.report and not render(stated).guest_visible


def test_a_sound_device_gets_libvirts_sound_element_and_a_silent_audio_backend():
    compiled = compile_profile(load("vmware/ws-hw4"), PC)
    argv = list(compiled.argv)
    assert ["-audiodev", "none,id=snd-sound"] == argv[argv.index("-audiodev"):argv.index("-audiodev") + 2]
    assert "ES1370,id=sound,bus=pci.0,addr=0x12,audiodev=snd-sound" in argv  # the compiled device uses it
    domain, root = _xml("vmware/ws-hw4")
    (audio,) = root.findall("devices/audio")
    assert (audio.get("id"), audio.get("type")) == ("1", "none")  # no host sound system is touched
    sound = root.find("devices/sound")
    assert sound.get("model") == "es1370" and sound.find("audio").get("id") == "1"
    assert sound.find("address").get("slot") == "0x12"
    assert not any("audiodev" in a or "ES1370" in a for a in _passed_args(root))
