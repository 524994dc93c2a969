"""Modalias → module load order, on a small fake depmod output."""

from __future__ import annotations

from pathlib import Path

import pytest

from guestcompat.images.modules import ModuleIndex, module_name

ALIAS = """\
# Aliases extracted from modules themselves.
alias pci:v000015ADd000007B0sv*sd*bc*sc*i* vmxnet3
alias pci:v000015ADd000007C0sv*sd*bc*sc*i* vmw_pvscsi
alias scsi:t-0x00* sd_mod
alias scsi:t-0x0[45]* sr_mod
alias pci:v00001000d00000054sv*sd*bc*sc*i* mptsas
alias pci:v*d*sv*sd*bc01sc00i* generic_scsi_class
alias usb:v1234p56??d* two_wild
alias pci:v00008086d00007010sv*sd*bc*sc*i* ata_piix
"""

# Deliberately listed in an order that is not a load order, with a shared
# dependency (scsi_mod) and a dependency of a dependency (scsi_common).
DEP = """\
kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_mod.ko kernel/lib/crc-t10dif.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/vmw_pvscsi.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_common.ko:
kernel/lib/crc-t10dif.ko:
kernel/drivers/net/vmxnet3/vmxnet3.ko:
kernel/drivers/scsi/sr_mod.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/message/fusion/mptsas.ko: kernel/drivers/message/fusion/mptbase.ko kernel/drivers/scsi/scsi_transport-sas.ko
kernel/drivers/message/fusion/mptbase.ko:
kernel/drivers/scsi/scsi_transport-sas.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/generic_scsi_class.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/usb/two-wild.ko:
"""

BUILTIN = "kernel/drivers/ata/ata_piix.ko\nkernel/drivers/block/virtio_blk.ko\n"
BUILTIN_MODINFO = (b"virtio_blk.alias=virtio:d00000002v*\0virtio_blk.license=GPL\0"
                   b"ata_piix.license=GPL\0")

VMXNET3 = "pci:v000015ADd000007B0sv000015ADsd000007B0bc02sc00i00"
PVSCSI = "pci:v000015ADd000007C0sv000015ADsd000007C0bc01sc00i00"
DISK = "scsi:t-0x00"


@pytest.fixture
def index(tmp_path: Path) -> ModuleIndex:
    (tmp_path / "modules.alias").write_text(ALIAS)
    (tmp_path / "modules.dep").write_text(DEP)
    (tmp_path / "modules.builtin").write_text(BUILTIN)
    (tmp_path / "modules.builtin.modinfo").write_bytes(BUILTIN_MODINFO)
    return ModuleIndex.load(tmp_path)


def names(order: tuple[str, ...]) -> list[str]:
    return [module_name(p) for p in order]


def test_dependencies_first_without_duplicates(index: ModuleIndex) -> None:
    order, unmatched = index.resolve([VMXNET3, PVSCSI, DISK])
    assert unmatched == ()
    got = names(order)
    assert len(got) == len(set(got))
    assert set(got) == {"vmxnet3", "vmw_pvscsi", "generic_scsi_class", "sd_mod",
                        "scsi_mod", "scsi_common", "crc_t10dif"}
    for before, after in [("scsi_common", "scsi_mod"), ("scsi_mod", "vmw_pvscsi"),
                          ("scsi_mod", "sd_mod"), ("crc_t10dif", "sd_mod"),
                          ("scsi_mod", "generic_scsi_class")]:
        assert got.index(before) < got.index(after), (before, after, got)
    assert all(p.startswith("kernel/") and p.endswith(".ko") for p in order)


def test_every_matching_module_is_loaded_like_modprobe(index: ModuleIndex) -> None:
    # The pvscsi class code (01/00) also matches a class-wide alias.
    order, _ = index.resolve([PVSCSI])
    assert {"vmw_pvscsi", "generic_scsi_class"} <= set(names(order))


def test_glob_features(index: ModuleIndex) -> None:
    assert "sr_mod" in names(index.resolve(["scsi:t-0x05"]).load_order)
    assert index.resolve(["scsi:t-0x06"]).unmatched == ("scsi:t-0x06",)
    assert names(index.resolve(["usb:v1234p5678d0100"]).load_order) == ["two_wild"]
    assert index.resolve(["usb:v1234p567d0100"]).unmatched == ("usb:v1234p567d0100",)


def test_transitive_dependencies_with_dashes(index: ModuleIndex) -> None:
    order, _ = index.resolve(["pci:v00001000d00000054sv00001000sd00003050bc01sc00i00"])
    got = names(order)
    assert got.index("scsi_transport_sas") < got.index("mptsas")
    assert got.index("mptbase") < got.index("mptsas")
    assert got.index("scsi_common") < got.index("scsi_transport_sas")


def test_builtin_drivers_are_satisfied_not_unmatched(index: ModuleIndex) -> None:
    # ata_piix has a modules.alias entry but is built in: nothing to load.
    order, unmatched = index.resolve(["pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80"])
    assert order == () and unmatched == ()
    # virtio_blk's alias is only known from modules.builtin.modinfo.
    order, unmatched = index.resolve(["virtio:d00000002v00001AF4"])
    assert order == () and unmatched == ()


def test_unmatched_aliases_are_reported_once(index: ModuleIndex) -> None:
    order, unmatched = index.resolve(["pci:v0000DEADd0000BEEFsv0sd0bc99sc00i00", VMXNET3,
                                      "pci:v0000DEADd0000BEEFsv0sd0bc99sc00i00"])
    assert names(order) == ["vmxnet3"]
    assert unmatched == ("pci:v0000DEADd0000BEEFsv0sd0bc99sc00i00",)


def test_order_does_not_depend_on_depmod_list_order(index: ModuleIndex) -> None:
    shuffled = "\n".join(
        f"{mod}: {' '.join(reversed(rest.split()))}"
        for mod, rest in (line.split(":", 1) for line in DEP.splitlines()))
    other = ModuleIndex.parse(ALIAS, shuffled, BUILTIN, BUILTIN_MODINFO)
    assert other.resolve([DISK, PVSCSI]) == index.resolve([DISK, PVSCSI])


def test_dependency_cycle_terminates() -> None:
    idx = ModuleIndex.parse("alias x:* a\n", "a.ko: b.ko\nb.ko: a.ko\n")
    assert sorted(idx.resolve(["x:1"]).load_order) == ["a.ko", "b.ko"]


@pytest.mark.parametrize("path,name", [
    ("kernel/drivers/scsi/sd_mod.ko", "sd_mod"),
    ("kernel/lib/crc-t10dif.ko", "crc_t10dif"),
    ("kernel/lib/crc64-rocksoft.ko.xz", "crc64_rocksoft"),
    ("crc64-rocksoft", "crc64_rocksoft"),
])
def test_module_name(path: str, name: str) -> None:
    assert module_name(path) == name


def test_resolve_cached_answers_like_the_index_and_notices_a_new_index(tmp_path: Path) -> None:
    from guestcompat.images.modules import resolve_cached

    (tmp_path / "modules.alias").write_text(ALIAS)
    (tmp_path / "modules.dep").write_text(DEP)
    (tmp_path / "modules.builtin").write_text(BUILTIN)
    wanted = ("pci:v000015ADd000007C0sv000015ADsd000007C0bc01sc07i00", "pci:v0000FFFFd0000FFFFsv*")
    fresh = ModuleIndex.load(tmp_path).resolve(wanted)
    assert resolve_cached(tmp_path, wanted) == fresh          # computed, then stored
    assert len(list((tmp_path / "resolved").iterdir())) == 1
    assert resolve_cached(tmp_path, wanted) == fresh          # read back
    # another index (a different modules.alias) is a different entry, not the stored answer
    (tmp_path / "modules.alias").write_text(ALIAS.replace("vmw_pvscsi", "generic_scsi_class"))
    assert resolve_cached(tmp_path, wanted) == ModuleIndex.load(tmp_path).resolve(wanted) != fresh
    # a corrupt entry is a miss, not an error
    for entry in (tmp_path / "resolved").iterdir():
        entry.write_text("{not json")
    assert resolve_cached(tmp_path, wanted) == ModuleIndex.load(tmp_path).resolve(wanted)
