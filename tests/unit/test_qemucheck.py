"""The compiler refuses what the target's QEMU build lacks (capabilities injected: pure logic)."""

from __future__ import annotations

import dataclasses

import pytest

from guestcompat.emulation.capabilities import Capabilities
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.qemuopts import split
from guestcompat.emulation.arches import resolve_target
from guestcompat.errors import CompileError
from guestcompat.profiles.loader import load

PROPS = {
    "vmxnet3": ("addr", "mac", "netdev"),
    "pvscsi": ("addr",),
    "vmware-svga": ("addr",),
    "pcie-root-port": ("addr", "chassis", "slot", "io-reserve", "multifunction"),
    "pci-bridge": ("addr", "chassis_nr", "multifunction"),
    "scsi-hd": ("drive", "product", "scsi-id", "vendor", "ver"),
    "vmport": ("vmware-vmx-type", "vmware-vmx-version"),
    "PIIX4_PM": ("acpi-pci-hotplug-with-bridge-support", "acpi-root-pci-hotplug"),
}


def fake(**changes) -> Capabilities:
    caps = Capabilities(
        binary="/opt/qemu/bin/qemu-system-x86_64", version="9.9.9", package="",
        machines={"pc": "pc-i440fx-9.9", "pc-i440fx-9.9": "pc-i440fx-9.9"},
        machine_properties={"pc": ("vmport", "acpi")},
        device_types=tuple(PROPS), device_properties=dict(PROPS),
        object_properties={"throttle-group": ("x-bps-read",)},
        cpu_models={"qemu64": "qemu64-x86_64-cpu"})
    return dataclasses.replace(caps, **changes)


def esxi65(caps: Capabilities):
    return compile_profile(load("vmware/esxi-6.5"), resolve_target(), caps)


def test_everything_present_compiles():
    assert esxi65(fake()).argv[0] == "qemu-system-x86_64"


def test_missing_device_names_the_profile_key_binary_and_version():
    caps = fake(device_types=tuple(d for d in PROPS if d != "vmxnet3"))
    with pytest.raises(CompileError, match=r"^pci\.devices\[ethernet0\]: unsupported by this QEMU "
                                           r"\(/opt/qemu/bin/qemu-system-x86_64 9\.9\.9\): device 'vmxnet3' does not exist"):
        esxi65(caps)


def test_missing_disk_property_names_the_disk():
    caps = fake(device_properties={**PROPS, "scsi-hd": ("drive", "scsi-id", "vendor", "ver")})
    with pytest.raises(CompileError, match=r"^disks\[disk0\]: unsupported by this QEMU .*device 'scsi-hd' has no "
                                           r"property 'product'"):
        esxi65(caps)


def test_missing_machine_type():
    with pytest.raises(CompileError, match=r"^platform: unsupported by this QEMU .*machine type 'pc' does not exist"):
        esxi65(fake(machines={"q35": "pc-q35-9.9"}))


def test_missing_machine_property():
    with pytest.raises(CompileError, match=r"machine type 'pc' has no property 'vmport'"):
        esxi65(fake(machine_properties={"pc": ("acpi",)}))


def test_missing_global_property():
    with pytest.raises(CompileError, match=r"device 'vmport' has no property 'vmware-vmx-version'"):
        esxi65(fake(device_properties={**PROPS, "vmport": ("vmware-vmx-type",)}))


def test_missing_cpu_model():
    with pytest.raises(CompileError, match=r"^cpu: unsupported by this QEMU .*CPU model 'qemu64'"):
        esxi65(fake(cpu_models={"max": "max-x86_64-cpu"}))


def test_unprobed_driver_is_checked_for_existence_only():
    caps = fake(device_properties={k: v for k, v in PROPS.items() if k != "vmxnet3"})
    # no property list for vmxnet3: its properties are not checked, the device is still emitted with them
    assert "vmxnet3,id=ethernet0,bus=pciBridge5-0,addr=0x0,netdev=net-ethernet0,mac=00:50:56:9a:60:e7" in \
        esxi65(caps).argv


def test_split_inverts_escaping():
    assert split("scsi-hd,id=d,vendor=VMware,, Inc.,flag") == ("scsi-hd", {"id": "d", "vendor": "VMware, Inc.",
                                                                             "flag": "on"})
    assert split("vmport.vmware-vmx-version=6") == ("", {"vmport.vmware-vmx-version": "6"})


def test_a_multifunction_bridge_is_named_by_its_profile_key():
    caps = fake(device_types=tuple(d for d in PROPS if d != "pcie-root-port"))
    with pytest.raises(CompileError, match=r"^pci\.bridges\[pciBridge4\]: .*device 'pcie-root-port' does not exist"):
        esxi65(caps)
