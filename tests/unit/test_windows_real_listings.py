"""The instance ids predicted for the bundled VMware profiles equal what real Windows VMs show (issue 23, step 4).

Each real listing is a public text (tests/data/windows/README.md names it); for every device the
listing shows, the bundled profile that has that device *at the slot VMware gives it* must predict
the same location string (and prefix depth), or the same serial-number id for the same MAC. The
parent-prefix hash cannot be computed: two bus-0 devices of one VM share it, and the import of a
real listing keeps the listing's own value."""

from __future__ import annotations

from pathlib import Path

import pytest

from guestcompat.detection.windows import drivers, sources, view
from guestcompat.detection.windows.ids import InstancePath
from guestcompat.profiles.importers import windows_import, windows_text
from guestcompat.profiles.loader import load, load_mapping

DATA = Path(__file__).resolve().parents[1] / "data" / "windows"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "windows"
WIN = drivers.catalogue().version("2016")
BIOS_PROFILES = ("vmware/esxi-4.0", "vmware/esxi-5.0", "vmware/esxi-5.1", "vmware/esxi-5.5", "vmware/esxi-6.0",
                 "vmware/esxi-6.5", "vmware/workstation-17")


def real(name: str) -> list[InstancePath]:
    return [d.path for d in windows_text.read((DATA / name).read_text(), name).devices]


def predicted(profile) -> view.WindowsView:
    if isinstance(profile, str):
        profile = load(profile)
    return view.build_view(sources.from_profile(profile), WIN)


def devices_with(v: view.WindowsView, vendor: int, device: int) -> list[view.WinDevice]:
    return [d for d in v.devices if (d.source.ids.vendor, d.source.ids.device) == (vendor, device)]


def location_of(path: InstancePath) -> str:
    return "".join(f"{x:02X}" for x in path.chain)


# (listing, vendor, device, the bundled profiles that have this device at the slot the real VM has)
CASES = [
    ("set-itemproperty-svga-vmci.ps1", 0x15AD, 0x0405, BIOS_PROFILES),                 # SVGA 00:0f.0: 78
    ("set-itemproperty-svga-vmci.ps1", 0x15AD, 0x0740, BIOS_PROFILES[1:]),             # VMCI 00:07.7: 3F
    ("forest-server2016-esxi-efi.wmi.md", 0x15AD, 0x0405, ("vmware/esxi-7.0-efi",)),
    ("forest-server2016-esxi-efi.wmi.md", 0x15AD, 0x0740, ("vmware/esxi-6.5",)),
    ("forest-server2016-esxi-efi.wmi.md", 0x8086, 0x7110, BIOS_PROFILES),              # PIIX4 ISA 00:07.0: 38
    ("forest-server2016-esxi-efi.wmi.md", 0x8086, 0x7111, BIOS_PROFILES),              # PIIX4 IDE 00:07.1: 39
    ("forest-server2016-esxi-efi.wmi.md", 0x8086, 0x7191, BIOS_PROFILES),              # 440BX AGP 00:01.0: 08
    ("forest-server2016-esxi-efi.wmi.md", 0x15AD, 0x0790, BIOS_PROFILES),              # PCI bridge 00:11.0: 88
    ("inmage-lsilogic-cdd.c.txt", 0x1000, 0x0030, ("vmware/esxi-5.0", "vmware/workstation-17", "vmware/ws-hw4")),
    ("devcon-findall-net.md", 0x8086, 0x100F, ("vmware/esxi-4.0", "vmware/esxi-5.0", "vmware/workstation-17")),
]


@pytest.mark.parametrize("listing, vendor, device, profiles", CASES,
                         ids=[f"{c[0].split('.')[0]}-{c[1]:04x}:{c[2]:04x}" for c in CASES])
def test_predicted_location_equals_the_real_vms(listing, vendor, device, profiles):
    shown = [p for p in real(listing) if (p.ids.vendor, p.ids.device) == (vendor, device) and p.form == "location"]
    assert shown, f"{listing} shows no {vendor:04x}:{device:04x}"
    compared = 0
    for name in profiles:
        mine = {(d.location, d.level) for d in devices_with(predicted(name), vendor, device)}
        for path in shown:
            # the profile has the device at this slot: the same location and the same prefix depth
            if any(loc == location_of(path) for loc, _ in mine):
                assert (location_of(path), path.depth) in mine, (name, path.text, mine)
                compared += 1
        assert mine & {(location_of(p), p.depth) for p in shown}, f"{name}: {mine} vs {[p.text for p in shown]}"
    assert compared >= len(profiles)


def test_the_32_root_ports_are_where_windows_shows_them():
    shown = {location_of(p) for p in real("forest-server2016-esxi-efi.wmi.md") if p.ids.device == 0x07A0}
    assert len(shown) == 32
    for name in ("vmware/esxi-6.5", "vmware/esxi-8.0-efi"):
        assert {d.location for d in devices_with(predicted(name), 0x15AD, 0x07A0)} == shown


def test_lsi_sas_behind_the_first_root_port_is_00a8_as_on_three_real_vms(monkeypatch):
    monkeypatch.setenv("GUESTCOMPAT_PROFILE_PATH", str(EXAMPLES))
    profile = load("esxi65-win2019")          # the worked example: ESXi 6.5, LSI Logic SAS at 03:00.0
    lsi = devices_with(predicted(profile), 0x1000, 0x0054)
    assert [(d.location, d.level, d.form) for d in lsi] == [("00A8", 4, "location")]
    for listing in ("forest-server2016-esxi-efi.wmi.md", "reg-add-lsisas-e1000.cmd", "inmage-lsilogic-cdd.c.txt"):
        shown = [p for p in real(listing) if p.ids.device == 0x0054]
        assert [(location_of(p), p.depth) for p in shown] == [("00A8", 4)], listing


@pytest.mark.parametrize("profile, kind, mac, listing", [
    ("vmware/esxi-6.5", "vmxnet3", "00:50:56:95:08:bb", "asr-vmxnet3-mac.json.txt"),
    ("vmware/esxi-5.1", "e1000e", "00:50:56:b4:41:af", "forest-server2016-esxi-efi.wmi.md"),
])
def test_serial_number_ids_equal_the_real_vms_for_the_same_mac(profile, kind, mac, listing):
    base = load(profile)
    data = {"extends": profile, "pci": {"devices": [
        {"name": d.name, "kind": d.kind, "address": d.address, "mac": mac} for d in base.pci.devices if d.kind == kind]}}
    assert data["pci"]["devices"], f"{profile} has no {kind}"
    mine = [d for d in predicted(load_mapping(data, "t")).devices if d.source.mac == mac]
    shown = [p for p in real(listing) if p.form == "serial"]
    assert [d.instance_path for d in mine] == [p.text for p in shown]


def test_vmxnet3_on_esxi_is_in_serial_form_as_every_real_listing_shows():
    v = predicted("vmware/esxi-6.5")
    assert [d.form for d in devices_with(v, 0x15AD, 0x07B0)] == ["serial"]
    for listing in ("devcon-findall-net.md", "kb3025586-setupapi.txt", "asr-vmxnet3-mac.json.txt"):
        assert {p.form for p in real(listing) if p.ids.device == 0x07B0} == {"serial"}, listing


def test_bus0_prefix_is_one_per_root_and_differs_between_bios_and_efi():
    """The hash is not computed: on one VM every bus-0 device shares it (real: 3&61aaa01&0 on BIOS VMs,
    3&18D45AA6&0 on FOREST's EFI VM); the model keys it by the root's identity, BIOS _UID 0 vs EFI none."""
    bios_real = {p.prefix for p in real("set-itemproperty-svga-vmci.ps1")}
    efi_real = {p.prefix for p in real("forest-server2016-esxi-efi.wmi.md") if p.depth == 3}
    assert bios_real == {"3&61aaa01&0"} and efi_real == {"3&18D45AA6&0"}
    bios = {d.parent_path for d in predicted("vmware/esxi-6.5").devices if d.level == 3}
    efi = {d.parent_path for d in predicted("vmware/esxi-7.0-efi").devices if d.level == 3}
    assert len(bios) == 1 and len(efi) == 1 and bios != efi


def test_a_real_listings_prefixes_are_kept_not_computed():
    imp = windows_import.import_windows_files((DATA / "forest-server2016-esxi-efi.wmi.md",), "forest")
    machine = windows_import.overlay(sources.from_profile(imp.profile), imp, "forest")
    v = view.build_view(machine, WIN)
    lsi = devices_with(v, 0x1000, 0x0054)[0]
    assert lsi.instance_path == r"PCI\VEN_1000&DEV_0054&SUBSYS_197615AD&REV_01\4&2732702B&0&00A8"
    assert lsi.parent_path == r"PCI\VEN_15AD&DEV_07A0&SUBSYS_07A015AD&REV_01\3&18D45AA6&0&A8"
    assert devices_with(v, 0x15AD, 0x0405)[0].parent_path == r"ACPI\PNP0A03\2&DABA3FF&1"
    assert not any("the capture shows location" in n for d in v.devices for n in d.notes)


def test_drivers_windows_bound_on_forest_are_the_catalogues():
    """FOREST's CIM_DataFile association: the driver file Windows Server 2016 runs for each PCI function."""
    bound = {}
    for line in (DATA / "forest-server2016-esxi-efi.wmi.md").read_text().splitlines():
        if "DeviceID=" in line and "DRIVERS\\\\" in line:
            path = windows_text.read(line, "forest").devices
            if path:
                bound[path[0].path.ids.device] = line.split("DRIVERS\\\\")[1].split('"')[0].split(".")[0].lower()
    imp = windows_import.import_windows_files((DATA / "forest-server2016-esxi-efi.wmi.md",), "forest")
    v = view.build_view(sources.from_profile(imp.profile), WIN)
    services = {d.source.ids.device: (d.driver.entry.service.lower() if d.driver.entry else None) for d in v.devices}
    expect = {0x0054: "lsi_sas", 0x07E0: "storahci", 0x7111: "intelide", 0x7110: "msisadrv", 0x07A0: "pci",
              0x0790: "pci", 0x0740: "vmci"}
    assert {k: bound[k] for k in expect} == expect
    assert {k: services[k] for k in expect} == expect
    assert bound[0x0405] == "vm3dmp_loader" and services[0x0405] == "vm3dmp"
