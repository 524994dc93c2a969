"""PAPR VIO addressing (pseries): reg conflicts, IRQ collisions, the machine's own nodes."""

from __future__ import annotations

import pytest

from guestcompat.bridges.spapr_vio import VioSlot, check, irq_index
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.arches import resolve_target
from guestcompat.emulation.target import Target
from guestcompat.errors import CompileError, GuestcompatError, ProfileError, TopologyError
from guestcompat.profiles.loader import load

PSERIES = Target("ppc64", "pseries", "tcg")
MACHINE = [VioSlot("machine:spapr-vty", 0x71000000, "vty", fixed=True),
           VioSlot("machine:spapr-nvram", 0x71000001, "nvram", fixed=True)]


def test_irq_index_follows_qemu_formula():
    assert irq_index(0x71000000) == 0x00
    assert irq_index(0x71000010) == 0x10
    assert irq_index(0x71000110) == 0x10          # only the low 8 bits count above 0x71000000
    assert irq_index(0x30001000) == 0xF1          # libvirt's vty numbering
    assert irq_index(0x2000) == 0x02              # libvirt's device numbering: reg >> 12


def test_slots_come_back_in_unit_address_order():
    slots = check([VioSlot("b", 0x71000020, "l-lan"), VioSlot("a", 0x71000010, "v-scsi"), *MACHINE])
    assert [s.path for s in slots] == ["vty@71000000", "nvram@71000001", "v-scsi@71000010", "l-lan@71000020"]


def test_duplicate_reg_names_both_devices():
    with pytest.raises(TopologyError, match=r"b: reg 0x71000010 is already taken by a \(v-scsi@71000010\)"):
        check([VioSlot("a", 0x71000010, "v-scsi"), VioSlot("b", 0x71000010, "l-lan")])


def test_reg_of_the_machines_console_is_refused():
    with pytest.raises(TopologyError, match=r"is already taken by the machine's own vty@71000000"):
        check([*MACHINE, VioSlot("scsi", 0x71000000, "v-scsi")])


def test_irq_collision_is_found_at_compile_time():
    # 0x2000 -> interrupt 0x02, which 0x71000002 also gets (the collision measured in QEMU).
    with pytest.raises(TopologyError, match=r"lan: reg 0x2000 gets VIO interrupt 0x2, which scsi \(v-scsi@71000002\) already has"):
        check([VioSlot("scsi", 0x71000002, "v-scsi"), VioSlot("lan", 0x2000, "l-lan")])
    with pytest.raises(TopologyError, match=r"the machine's own nvram@71000001"):
        check([*MACHINE, VioSlot("scsi", 0x71000101, "v-scsi")])


@pytest.mark.parametrize("reg", [0, 0xFFFFFFFF])
def test_unusable_regs_are_refused(reg):
    with pytest.raises(TopologyError, match="not a usable VIO unit address"):
        check([VioSlot("x", reg, "v-scsi")])


VSCSI = """
[platform]
arch = "ppc64"
[devicetree]
host_model = "IBM,9009-22A"
[[vio.devices]]
name = "vscsi0"
kind = "spapr-vscsi"
reg = {reg}
"""


def compile_text(profile_dir, text, target=PSERIES):
    profile_dir("t/v", text)
    return compile_profile(load("t/v"), target)


def test_vio_device_becomes_device_with_reg_and_expectations(profile_dir):
    c = compile_text(profile_dir, VSCSI.format(reg="0x71000010"))
    assert "spapr-vscsi,id=vscsi0,reg=0x71000010" in c.argv
    sel = {e.selector: e for e in c.expectations}
    assert sel["vdevice[v-scsi@71000010].reg"].wanted == "0x71000010"
    assert sel["vdevice[v-scsi@71000010].compatible"].wanted == "IBM,v-scsi"
    # The machine's own nodes, not stated by this profile, are expected as known deviations.
    assert sel["vdevice[vty@71000000].present"].wanted is None
    assert sel["vdevice[vty@71000000].present"].presented is True
    assert "vio:TvscsiSIBM,v-scsi" in c.modaliases
    assert sel["devicetree.root.host-model"].wanted == ("IBM,9009-22A",)
    assert "host-model=IBM,,9009-22A" in c.argv[c.argv.index("-machine") + 1]


def test_compile_refuses_reg_clash_with_machine_nvram(profile_dir):
    with pytest.raises(TopologyError, match=r"vio.devices\[vscsi0\]: reg 0x71000001 is the machine's own nvram@71000001"):
        compile_text(profile_dir, VSCSI.format(reg="0x71000001"))


def test_stating_machine_node_with_another_kind_is_refused(profile_dir):
    text = VSCSI.format(reg="0x71000010") + '[[vio.devices]]\nname = "lan"\nkind = "spapr-vlan"\nreg = 0x71000000\n'
    with pytest.raises(TopologyError, match=r"vio.devices\[lan\]: reg 0x71000000 is the machine's own vty@71000000"):
        compile_text(profile_dir, text)


def test_pci_kind_under_vio_is_refused(profile_dir):
    text = VSCSI.format(reg="0x71000010").replace('"spapr-vscsi"', '"e1000"')
    with pytest.raises(TopologyError, match="kind 'e1000' is a PCI device; declare it under pci.devices"):
        compile_text(profile_dir, text)


def test_vio_kind_under_pci_is_refused(profile_dir):
    text = '[platform]\narch = "ppc64"\n[[pci.devices]]\nname = "s"\nkind = "spapr-vscsi"\naddress = "00:01.0"\n'
    with pytest.raises(TopologyError, match="is a VIO device; declare it under vio.devices"):
        compile_text(profile_dir, text)


def test_vio_on_x86_pc_is_refused(profile_dir):
    text = '[[vio.devices]]\nname = "s"\nkind = "spapr-vscsi"\nreg = 0x71000010\n'
    with pytest.raises(CompileError, match="x86_64 has no PAPR VIO bus"):
        compile_text(profile_dir, text, resolve_target())


def test_profile_arch_must_match_target(profile_dir):
    with pytest.raises(CompileError, match="describes ppc64 hardware; it cannot be compiled for x86_64"):
        compile_text(profile_dir, VSCSI.format(reg="0x71000010"), resolve_target())


def test_smbios_and_backdoor_are_refused_on_pseries():
    with pytest.raises(GuestcompatError, match="ppc64"):
        compile_profile(load("vmware/esxi-6.5"), PSERIES)


def test_slof_is_selectable_and_vof_is_default(profile_dir):
    vof = compile_text(profile_dir, VSCSI.format(reg="0x71000010"))
    assert "x-vof=on" in vof.argv[vof.argv.index("-machine") + 1]
    slof = compile_text(profile_dir, VSCSI.format(reg="0x71000010").replace('arch = "ppc64"',
                                                                           'arch = "ppc64"\nfirmware = "slof"'))
    assert "x-vof=off" in slof.argv[slof.argv.index("-machine") + 1]


def test_bios_firmware_is_refused_on_pseries(profile_dir):
    with pytest.raises(CompileError, match="'bios' is not a ppc64 firmware"):
        compile_text(profile_dir, VSCSI.format(reg="0x71000010").replace('arch = "ppc64"',
                                                                        'arch = "ppc64"\nfirmware = "bios"'))


def test_bad_reg_type_names_the_key(profile_dir):
    with pytest.raises(ProfileError, match=r"vio.devices\[vscsi0\].reg"):
        compile_text(profile_dir, VSCSI.format(reg='"high"'))


def test_nil_uuid_is_a_known_deviation_without_uuid(profile_dir):
    c = compile_text(profile_dir, VSCSI.format(reg="0x71000010"))
    e = next(e for e in c.expectations if e.selector == "devicetree.root.vm,uuid")
    assert e.wanted is None and e.presented == ("00000000-0000-0000-0000-000000000000",) and e.reason
