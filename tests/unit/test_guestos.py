"""The guest-OS catalogue: inheritance, and every rule the compiler refuses a profile × OS × arch by."""

from __future__ import annotations

import pytest

from guestcompat.emulation import guestos
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.arches import resolve_target
from guestcompat.emulation.target import Target
from guestcompat.errors import CompileError, ProfileError
from guestcompat.profiles.loader import load
from guestcompat.profiles.oscatalog import OsEntry, load_os_catalog, resolve

PROFILE = """
[guest]
os = "{os}"
[platform]
firmware = "{firmware}"
[[pci.devices]]
name = "ethernet0"
kind = "{nic}"
address = "00:10.0"
mac = "00:50:56:00:00:01"
[[pci.devices]]
name = "scsi0"
kind = "{storage}"
address = "00:11.0"
{substitute}
"""


def compile_with(profile_dir, os="debian-12", nic="vmxnet3", storage="pvscsi", firmware="bios", substitute="",
                 target=None):
    profile_dir("t/os", PROFILE.format(os=os, nic=nic, storage=storage, firmware=firmware, substitute=substitute))
    return compile_profile(load("t/os"), target or resolve_target())


def test_inheritance_per_arch_and_per_key():
    catalog = load_os_catalog()
    rhel8 = catalog["rhel-8"]
    assert rhel8.lineage == ("linux", "rhel-7", "rhel-8")
    assert rhel8.arches["x86_64"].storage == ("pvscsi", "vmware-sata", "vmware-nvme", "megasas", "qemu-nvme")          # stated: replaces
    assert rhel8.arches["x86_64"].nics == catalog["linux"].arches["x86_64"].nics  # not stated: inherited
    assert catalog["windows-2019"].arches["x86_64"].storage == catalog["windows"].arches["x86_64"].storage
    assert set(catalog["debian-12"].arches) == {"x86_64", "ppc64"}
    assert set(catalog["windows-2003"].arches) == {"x86_64"}


def test_catalogue_errors_are_named():
    with pytest.raises(ProfileError, match="derived_from loops: a → b → a"):
        resolve({"a": OsEntry(derived_from="b"), "b": OsEntry(derived_from="a")})
    with pytest.raises(ProfileError, match="no entry 'nowhere' \\(derived_from of a\\)"):
        resolve({"a": OsEntry(derived_from="nowhere")})
    with pytest.raises(ProfileError, match="a on x86_64 states no displays, firmware"):
        resolve({"a": OsEntry.model_validate({"arch": {"x86_64": {"storage": [], "nics": []}}})})


def test_the_bundled_profiles_name_a_guest_os_and_compile():
    assert load("vmware/esxi-6.5").guest.os == "debian-12"
    assert load("power/pseries-vscsi").guest.os == "debian-12"
    compile_profile(load("vmware/ws-hw4"), resolve_target())


def test_nic_without_driver_is_refused_with_what_the_os_supports(profile_dir):
    with pytest.raises(CompileError, match=r"^pci\.devices\[ethernet0\]: windows-2003 on x86_64 has no driver for "
                                           r"vmxnet3; supported NICs: e1000, vlance$"):
        compile_with(profile_dir, os="windows-2003", storage="qemu-lsi53c895a")


def test_storage_controller_without_driver_is_refused(profile_dir):
    with pytest.raises(CompileError, match=r"^pci\.devices\[scsi0\]: rhel-8 on x86_64 has no driver for "
                                           r"lsisas1068; supported storage controllers: pvscsi, vmware-sata, vmware-nvme, megasas, qemu-nvme$"):
        compile_with(profile_dir, os="rhel-8", storage="lsisas1068")


def test_the_presented_substitute_is_what_the_os_must_drive(profile_dir):
    """lsilogic has no QEMU model; its substitute is what the guest sees, so that is what is checked."""
    substitute = 'substitute = { kind = "qemu-lsi53c895a", reason = "QEMU has no LSI 53c1030" }'
    with pytest.raises(CompileError, match=r"scsi0\]: windows-2003 on x86_64 has no driver for qemu-lsi53c895a; "
                                           r"supported storage controllers: lsilogic"):
        compile_with(profile_dir, os="windows-2003", nic="e1000", storage="lsilogic", substitute=substitute)
    argv = compile_with(profile_dir, os="debian-12", storage="lsilogic", substitute=substitute).argv
    # debian-12 drives the substitute, so the machine is compiled with it in the controller's place
    assert any(a.startswith("lsi53c895a,id=scsi0,") and "addr=0x11" in a for a in argv), argv


def test_firmware_the_os_cannot_boot_from(profile_dir):
    with pytest.raises(CompileError, match=r"^platform\.firmware: windows-2003 on x86_64 does not boot from efi; "
                                           r"supported firmware: bios$"):
        compile_with(profile_dir, os="windows-2003", nic="e1000", storage="lsilogic", firmware="efi",
                     substitute='substitute = { kind = "qemu-lsi53c895a", reason = "x" }')


def test_os_without_the_target_architecture(profile_dir):
    profile_dir("t/win-power", '[guest]\nos = "windows-2019"\n[platform]\narch = "ppc64"\n')
    with pytest.raises(CompileError, match=r"^guest\.os: windows-2019 does not run on ppc64 \(it runs on: x86_64\)$"):
        compile_profile(load("t/win-power"), Target("ppc64", "pseries"))


def test_vio_devices_are_checked_too(profile_dir, monkeypatch):
    catalog = load_os_catalog()
    no_vscsi = catalog["debian-12"].arches["ppc64"].model_copy(update={"storage": ("megasas",)})
    fake = catalog["debian-12"].model_copy(update={"arches": {"ppc64": no_vscsi}})
    monkeypatch.setattr(guestos, "guest_os", lambda name: fake)
    with pytest.raises(CompileError, match=r"^vio\.devices\[vscsi0\]: debian-12 on ppc64 has no driver for "
                                           r"spapr-vscsi; supported storage controllers: megasas$"):
        compile_profile(load("power/pseries-vscsi"), Target("ppc64", "pseries"))


def test_display_rule(profile_dir, monkeypatch):
    catalog = load_os_catalog()
    headless = catalog["debian-12"].arches["x86_64"].model_copy(update={"displays": ()})
    monkeypatch.setattr(guestos, "guest_os",
                        lambda name: catalog["debian-12"].model_copy(update={"arches": {"x86_64": headless}}))
    with pytest.raises(CompileError, match=r"^pci\.devices\[svga\]: debian-12 on x86_64 has no driver for "
                                           r"vmware-svga; supported displays: none$"):
        compile_profile(load("vmware/esxi-6.5"), resolve_target())


@pytest.mark.parametrize("name, message", [("plan9", "'plan9' is not in the guest-OS catalogue"),
                                           ("linux", "'linux' is an abstract base")])
def test_unknown_or_abstract_os(profile_dir, name, message):
    with pytest.raises(ProfileError, match=f"^guest.os: {message} \\(known: debian-12, rhel-7, rhel-8, "
                                           f"windows-2003, windows-2019\\)$"):
        compile_with(profile_dir, os=name)


def test_no_guest_os_means_no_os_rule(profile_dir):
    profile_dir("t/any", '[[pci.devices]]\nname = "n"\nkind = "vmxnet3"\naddress = "00:10.0"\n')
    compiled = compile_profile(load("t/any"), resolve_target())
    assert any(a.startswith("vmxnet3,id=n,") and "addr=0x10" in a for a in compiled.argv), compiled.argv
    assert compiled.profile.guest.os is None
