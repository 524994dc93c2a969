"""Compiler rules: escaping into argv, refusals with the profile key, the detection recipe."""

from __future__ import annotations

import pytest

from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.fidelity import Fidelity
from guestcompat.emulation.arches import resolve_target
from guestcompat.emulation.target import Target
from guestcompat.errors import CompileError, GuestcompatError, TopologyError
from guestcompat.profiles.loader import load

MINIMAL = """
[platform]
kernel_hypervisor = "VMware"
[backdoor]
enabled = true
[smbios.system]
manufacturer = "VMware, Inc."
serial = "VMware-56 4d"
[[pci.devices]]
name = "nic"
kind = "vmxnet3"
address = "00:10.0"
mac = "00:50:56:00:00:01"
"""


def compiled(profile_dir, text, name="t/p"):
    profile_dir(name, text)
    return compile_profile(load(name), resolve_target())


def expectation(c, selector):
    return next(e for e in c.expectations if e.selector == selector)


def test_comma_in_smbios_value_is_doubled(profile_dir):
    c = compiled(profile_dir, MINIMAL)
    assert "type=1,manufacturer=VMware,, Inc.,serial=VMware-56 4d" in c.argv


def test_tcg_recipe_clears_hypervisor_bit_and_reports_it(profile_dir):
    c = compiled(profile_dir, MINIMAL)
    assert "qemu64,hypervisor=off,tcg-cpuid=off" in c.argv and "pc,accel=tcg,vmport=on" in c.argv
    bit = expectation(c, "cpuid.hypervisor_bit")
    assert bit.fidelity is Fidelity.APPROXIMATE and "TCG cannot present" in bit.reason
    assert expectation(c, "kernel.hypervisor").presented == "VMware"


def test_without_vmware_serial_kernel_detection_is_predicted_lost(profile_dir):
    c = compiled(profile_dir, MINIMAL.replace('serial = "VMware-56 4d"', 'serial = "1234"'))
    assert "qemu64" in c.argv and "qemu64,-hypervisor" not in c.argv
    assert expectation(c, "kernel.hypervisor").fidelity is Fidelity.UNSUPPORTED


def test_unknown_kind_names_the_key(profile_dir):
    with pytest.raises(GuestcompatError, match=r"pci.devices\[nic\].kind: unknown device kind 'vmxnet9'"):
        compiled(profile_dir, MINIMAL.replace('kind = "vmxnet3"', 'kind = "vmxnet9"'))


def test_unpresentable_kind_needs_a_substitute(profile_dir):
    text = MINIMAL + '\n[[pci.devices]]\nname = "sound"\nkind = "es1371"\naddress = "00:12.0"\n'
    with pytest.raises(TopologyError, match=r"pci.devices\[sound\]: QEMU has no model of .* give it a substitute"):
        compiled(profile_dir, text)


def test_kind_only_a_patched_build_has_is_refused_on_stock_without_a_substitute(profile_dir):
    """VMCI has a model only in guestcompat's build (vmware-vmci): stock QEMU names the missing device."""
    text = MINIMAL + '\n[[pci.devices]]\nname = "vmci"\nkind = "vmci"\naddress = "00:12.0"\n'
    with pytest.raises(CompileError, match=r"pci.devices\[vmci\]: unsupported by this QEMU .*'vmware-vmci' does not exist"):
        compiled(profile_dir, text)


def test_device_on_a_machine_function_address(profile_dir):
    with pytest.raises(TopologyError, match=r"00:01.0 is taken by the machine's .*PIIX3"):
        compiled(profile_dir, MINIMAL.replace('address = "00:10.0"', 'address = "00:01.0"'))


def test_abstract_profile_is_refused():
    with pytest.raises(CompileError, match="is abstract"):
        compile_profile(load("vmware/base"), resolve_target())


def test_unknown_machine_and_arch(profile_dir):
    profile_dir("t/p", MINIMAL)
    with pytest.raises(CompileError, match="machine type 'q99'"):
        compile_profile(load("t/p"), resolve_target(machine="q99"))
    with pytest.raises(CompileError, match="unknown architecture 'mips'"):
        compile_profile(load("t/p"), Target(arch="mips", machine="pc"))


def test_esxi65_places_vmware_devices_behind_vmware_ports():
    c = compile_profile(load("vmware/esxi-6.5"), resolve_target())
    argv = list(c.argv)
    assert "pvscsi,id=scsi0,bus=pciBridge4-0,addr=0x0" in argv
    assert "vmxnet3,id=ethernet0,bus=pciBridge5-0,addr=0x0,netdev=net-ethernet0,mac=00:50:56:9a:60:e7" in argv
    assert expectation(c, "pci[00:16.0].secondary_bus").presented == 0x0b
    assert expectation(c, "pci[0b:00.0].vendor").fidelity is Fidelity.EXACT
    assert expectation(c, "pci[03:00.0].class_code").fidelity is Fidelity.APPROXIMATE
    assert "pci:v000015ADd000007B0sv000015ADsd000007B0bc02sc00i00" in c.modaliases


def test_disk_limits_become_a_throttle_group_and_rate_probes(profile_dir):
    from guestcompat.emulation.compiler import compile_profile
    from guestcompat.profiles.loader import load

    profile_dir("t/qos", """
        extends = "vmware/esxi-6.5"
        [[disks]]
        name = "disk0"
        controller = "scsi0"
        limits = { bps_total = 1048576, iops_read = 50 }
    """)
    compiled = compile_profile(load("t/qos"))
    assert "throttle-group,id=throttle-disk0,x-bps-total=1048576,x-iops-read=50" in compiled.argv
    assert "driver=throttle,node-name=drive-disk0,throttle-group=throttle-disk0,file=drive-disk0-base" in compiled.argv
    assert ("guestcompat.rate=0000:03:00.0/0/bps_total/65536/32,0000:03:00.0/0/iops_read/4096/100"
            in compiled.guest_cmdline)
    rates = [e for e in compiled.expectations if ".rate." in e.selector]
    assert [(e.selector, e.wanted, e.tolerance) for e in rates] == [
        ("disk[03:00.0:0].rate.bps_total", 1048576, 0.15), ("disk[03:00.0:0].rate.iops_read", 50, 0.15)]


def test_total_and_split_limits_are_refused(profile_dir):
    import pytest

    from guestcompat.errors import ProfileError
    from guestcompat.profiles.loader import load

    profile_dir("t/bad", """
        extends = "vmware/esxi-6.5"
        [[disks]]
        name = "disk0"
        controller = "scsi0"
        limits = { bps_total = 1048576, bps_read = 65536 }
    """)
    with pytest.raises(ProfileError, match=r"disks\[disk0\]\.limits.*bps_total cannot be combined with bps_read"):
        load("t/bad")


def test_gethz_under_tcg_is_an_unsupported_expectation_and_linux_line_parses():
    from types import SimpleNamespace

    from guestcompat.emulation.compiler import compile_profile
    from guestcompat.harness.observe import observe
    from guestcompat.profiles.loader import load

    compiled = compile_profile(load("vmware/esxi-6.5"))
    tsc = expectation(compiled, "kernel.vmware_tsc_khz")
    assert (tsc.wanted, tsc.presented, tsc.fidelity) == (2399999, None, Fidelity.UNSUPPORTED)
    assert "tsc-frequency=2399999000" in next(a for a in compiled.argv if a.startswith("qemu64"))
    vmware_log = SimpleNamespace(kernel_log=("vmware: TSC freq read from hypervisor : 2399.999 MHz",))
    assert observe(vmware_log, "kernel.vmware_tsc_khz") == 2399999
    tcg_log = SimpleNamespace(kernel_log=("vmware: Failed to get TSC freq from the hypervisor",))
    assert observe(tcg_log, "kernel.vmware_tsc_khz") is None


def test_vmware_mouse_is_expected_with_the_backdoor(profile_dir):
    """Issue 26: psmouse's VMMouse where the profile has the backdoor and the kernel detects VMware."""
    c = compiled(profile_dir, MINIMAL)
    mouse = expectation(c, "input.vmmouse")
    assert mouse.wanted == mouse.presented == "VirtualPS/2 VMware VMMouse"
    assert "serio:ty01pr00id00ex00" in c.modaliases  # the image loads psmouse


def test_vmware_mouse_lost_where_the_kernel_does_not_detect_vmware(profile_dir):
    c = compiled(profile_dir, MINIMAL.replace('serial = "VMware-56 4d"', 'serial = "1234"'), name="t/q")
    mouse = expectation(c, "input.vmmouse")
    assert mouse.presented is None and mouse.fidelity is Fidelity.UNSUPPORTED
    assert "vmmouse_detect" in mouse.reason


def test_no_vmware_mouse_without_the_backdoor(profile_dir):
    c = compiled(profile_dir, MINIMAL.replace("enabled = true", "enabled = false"), name="t/r")
    assert not [e for e in c.expectations if e.selector == "input.vmmouse"]
    assert "serio:ty01pr00id00ex00" not in c.modaliases
