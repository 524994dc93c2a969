"""Windows-side captures as an import form (profiles/importers/windows_text.py, windows_import.py).

Real listings (tests/data/windows/, sources in its README) and authored ones in the tools' formats
(tests/data/windows/authored/): the PCI tree is rebuilt from the location chains, ids from the
instance paths, identity from systeminfo/wmic, and bad or truncated captures get clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guestcompat.detection.windows.ids import PciIdentity, location
from guestcompat.errors import ProfileError
from guestcompat.profiles.importers import forms, windows_import, windows_text

DATA = Path(__file__).resolve().parents[1] / "data" / "windows"
AUTHORED = DATA / "authored"
ROOT = Path(__file__).resolve().parents[2]


def placed(*names: str, base: Path = DATA) -> dict[str, str]:
    imp = windows_import.import_windows_files(tuple(base / n for n in names), "vm")
    return {address: d.path.text for address, d in imp.rebuilt.placed.items()}


def test_forest_wmi_dump_rebuilds_vmwares_tree():
    got = placed("forest-server2016-esxi-efi.wmi.md")
    assert got["03:00.0"].startswith(r"PCI\VEN_1000&DEV_0054")         # LSI SAS behind root port 00:15.0 (bus 3)
    assert got["02:01.0"].startswith(r"PCI\VEN_15AD&DEV_07E0")         # SATA behind the PCI bridge (bus 2)
    assert got["00:07.7"].startswith(r"PCI\VEN_15AD&DEV_0740")
    root_ports = [a for a, p in got.items() if "DEV_07A0" in p]
    assert len(root_ports) == 32 and root_ports[0] == "00:15.0" and max(root_ports) == "00:18.7"


def test_forest_import_keeps_efi_identity_and_says_what_it_could_not_place():
    imp = windows_import.import_windows_files((DATA / "forest-server2016-esxi-efi.wmi.md",), "forest")
    data = imp.result.data
    assert data["platform"]["firmware"] == "efi"
    assert data["smbios"]["system"]["uuid_bios"] == "42 14 dd 01 77 df ed 36-48 41 b0 f9 f7 10 45 bd"
    assert {d["kind"] for d in data["pci"]["devices"]} == {"lsisas1068", "vmware-sata"}
    assert any("005056FFFFB441AF00" in n and "not placed" in n for n in imp.result.notes)
    assert imp.capture.root_path == r"ACPI\PNP0A03\2&DABA3FF&1"


def test_devcon_paste_with_markdown_backticks_places_the_e1000():
    got = placed("devcon-findall-net.md")
    assert got == {"02:01.0": r"PCI\VEN_8086&DEV_100F&SUBSYS_075015AD&REV_01\4&3AD87E0A&0&0888"}


def test_reg_add_lines_place_lsi_sas_and_e1000():
    got = placed("reg-add-lsisas-e1000.cmd")
    assert set(got) == {"03:00.0", "02:00.0"}


def test_pnputil_systeminfo_and_get_netadapter_make_one_profile():
    imp = windows_import.import_windows_files(
        tuple(AUTHORED / n for n in ("pnputil-enum-devices-esxi65.txt", "systeminfo-wmic.txt", "get-netadapter.txt")),
        "web01")
    devices = {d["address"]: d for d in imp.result.data["pci"]["devices"]}
    assert devices["03:00.0"]["kind"] == "pvscsi"
    assert devices["0b:00.0"] == {"name": "vmxnet3-0b-00-0", "kind": "vmxnet3", "address": "0b:00.0",
                                  "mac": "00:50:56:9a:60:e7"}                      # MAC from the serial number
    system = imp.result.data["smbios"]["system"]
    assert system["uuid_bios"] == "42 1e 5b 8f 9c 3a 1d 2e-7f 41 3b 2a 6c 5d 4e 3f"
    assert imp.result.data["smbios"]["bios"]["date"] == "04/05/2016"
    assert imp.capture.windows_version == "2019"


def test_reg_export_hex7_values_and_location_information_place_a_serial_id():
    capture = windows_text.read(windows_import.read_capture_file(AUTHORED / "reg-export-enum-pci.reg"), "enum.reg")
    nic = next(d for d in capture.devices if d.path.form == "serial")
    assert nic.hardware_ids[0] == r"PCI\VEN_15AD&DEV_07B0&SUBSYS_07B015AD&REV_01" and len(nic.hardware_ids) == 4
    assert (nic.service, nic.location_info, nic.class_code) == ("vmxnet3ndis6", (11, 0, 0), 0x020000)
    assert nic.name == "vmxnet3 Ethernet Adapter"
    got = placed("reg-export-enum-pci.reg", base=AUTHORED)
    assert got["0b:00.0"].endswith("FF565000E7609AFE00")


def test_utf16_file_as_powershell_redirects_it_is_read(tmp_path):
    path = tmp_path / "capture.txt"
    path.write_bytes((AUTHORED / "get-netadapter.txt").read_text().encode("utf-16"))
    assert "MacAddress" in windows_import.read_capture_file(path)


def test_truncated_powershell_table_is_refused_by_name():
    with pytest.raises(ProfileError, match="cut short .*Format-List"):
        windows_import.import_windows_files((AUTHORED / "get-pnpdevice-truncated.txt",), "vm")


def test_text_that_is_no_windows_capture_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\nthis is a ticket, not a capture\n")
    with pytest.raises(ProfileError, match="not a Windows capture"):
        windows_import.import_windows_files((path,), "vm")


def test_a_function_behind_a_nic_is_not_one_pci_tree(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("Instance ID: PCI\\VEN_15AD&DEV_07B0&SUBSYS_07B015AD&REV_01\\3&61aaa01&0&A8\n"
                    "Hardware IDs: PCI\\VEN_15AD&DEV_07B0&CC_020000\n\n"
                    "Instance ID: PCI\\VEN_15AD&DEV_07C0&SUBSYS_07C015AD&REV_02\\4&1&0&00A8\n")
    with pytest.raises(ProfileError, match="not a bridge"):
        windows_import.import_windows_files((path,), "vm")


def test_the_capture_form_is_registered_for_import_capture_and_replay():
    facts = forms.read_text((DATA / "reg-add-lsisas-e1000.cmd").read_text(), "reg.cmd")
    assert facts.sources[0][1].startswith(windows_import.FORM)
    assert {d.address for d in facts.pci} == {"03:00.0", "02:00.0"}


# the tree a listing of any VMware machine gives back is that machine's: positions through Windows' location strings
endpoints = st.lists(st.one_of(
    st.tuples(st.just("port"), st.integers(0x15, 0x18), st.integers(0, 7)),      # behind root port dd.f
    st.tuples(st.just("bridge"), st.integers(0, 31), st.just(0))), min_size=1, max_size=12, unique=True)


@settings(max_examples=60, deadline=None)
@given(endpoints)
def test_locations_of_any_vmware_layout_rebuild_to_its_addresses(spec):
    lines, expected = [], {}
    for i, (where, dev, fn) in enumerate(spec):
        ids = PciIdentity(0x15AD, 0x07B0, 0x15AD, 0x07B0, 1)
        if where == "port":
            chain = (0x00, (dev << 3) | fn)
            bus = 3 + (dev - 0x15) * 8 + fn
            address = f"{bus:02x}:00.0"
        else:
            chain = ((dev << 3), 0x88)
            address = f"02:{dev:02x}.0"
        path = f"{ids.device_id}\\4&{i:x}&0&{location(chain)}"
        lines.append(f"Instance ID:    {path}\n")
        expected[address] = path
    capture = windows_text.read("\n".join(lines), "gen")
    rebuilt = windows_import.rebuild(capture, "gen")
    assert {a: d.path.text for a, d in rebuilt.placed.items()} == expected


def test_capture_command_writes_the_powershell_script(tmp_path):
    out = tmp_path / "gc-capture.ps1"
    done = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "capture", "--windows", "-o", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "Get-PnpDevice" in text and "DEVPKEY_Device_LocationPaths" in text and "Get-NetAdapter" in text


def test_what_the_powershell_script_writes_is_read_back_whole():
    """gc-capture.ps1's output format (Format-List records with LocationPaths, Parent, Present): a ghost NIC at
    the e1000e's place is reported, not imported; the serial-number ids are placed by their LocationPaths."""
    imp = windows_import.import_windows_files((AUTHORED / "gc-capture-output.txt",), "vm")
    got = {a: d.path.text for a, d in imp.rebuilt.placed.items()}
    assert got["0b:00.0"].endswith("005056FFFFB441AF00") and got["03:00.0"].endswith("4&2732702B&0&00A8")
    assert any("not present (ghosts" in n and "FF565000E7609AFE00" in n for n in imp.result.notes)
    assert imp.capture.windows_version == "2016" and imp.result.data["platform"]["firmware"] == "efi"
    assert next(d for d in imp.result.data["pci"]["devices"] if d["kind"] == "e1000e")["mac"] == "00:50:56:b4:41:af"


_noise = st.text(alphabet=st.sampled_from(list("PCI\\VEN_DEV&SUBSYS_REV0123456789ABCDEFabcdef:{}|\"=[]HKEY \n\t.-…")),
                 max_size=400)


_REAL_LINES = [ln for f in sorted(AUTHORED.iterdir()) for ln in f.read_text(errors="replace").splitlines() if ln.strip()]
_pastes = st.lists(st.one_of(_noise, st.sampled_from(_REAL_LINES),
                             st.tuples(st.sampled_from(_REAL_LINES), st.integers(0, 120)).map(lambda t: t[0][:t[1]])),
                   max_size=30).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(_pastes)
def test_any_text_is_read_or_refused_by_name_never_a_crash(text):
    try:
        windows_import.read_facts(text, "paste")
    except ProfileError as exc:
        assert str(exc).startswith("paste")


def test_an_impossible_location_information_is_reported_not_placed(tmp_path):
    path = tmp_path / "enum.reg"
    path.write_text("[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Enum\\PCI\\VEN_15AD&DEV_07B0&SUBSYS_07B015AD&REV_01"
                    "\\FF565000E7609AFE00]\n\"LocationInformation\"=\"PCI bus 300, device 40, function 9\"\n")
    with pytest.raises(ProfileError, match="nothing in the capture can be placed.*is no PCI address"):
        windows_import.import_windows_files((path,), "vm")


def test_replay_scores_a_windows_capture_against_a_real_patched_boot():
    """replay's comparison (no boot here: the stored patched boot of vmware/esxi-6.5 stands for the replay) of
    a pnputil + systeminfo capture of an ESXi 6.5 VM: every placed function and id is reproduced."""
    from guestcompat.harness.baseline import load_fingerprint
    from guestcompat.harness.replay import compare, load_sources

    source = load_sources((AUTHORED / "pnputil-enum-devices-esxi65.txt", AUTHORED / "systeminfo-wmic.txt"))
    fp = load_fingerprint(DATA / "boots" / "esxi-6.5-patched.fingerprint.json")
    scores = {s.category: s for s in compare(source.fingerprint, fp).scores}
    assert (scores["placement"].matched, scores["placement"].compared) == (5, 5)
    assert scores["ids"].matched == scores["ids"].compared > 20
    assert scores["identity"].matched == scores["identity"].compared


def test_devcon_hwids_records_carry_their_ids():
    capture = windows_text.read((AUTHORED / "devcon-hwids.txt").read_text(), "hwids")
    by_dev = {d.path.ids.device: d for d in capture.devices}
    assert by_dev[0x100F].name == "Intel(R) PRO/1000 MT Network Connection"
    assert len(by_dev[0x100F].hardware_ids) == 6 and len(by_dev[0x100F].compatible_ids) == 7
    assert by_dev[0x07B0].class_code == 0x020000 and by_dev[0x07B0].compatible_ids[-1] == r"PCI\CC_0200"


def test_pnputil_connected_status_marks_ghosts():
    text = ("Instance ID:                PCI\\VEN_15AD&DEV_07B0&SUBSYS_07B015AD&REV_01\\FF565000E7609AFE00\n"
            "Status:                     Disconnected\n\n"
            "Instance ID:                PCI\\VEN_15AD&DEV_0405&SUBSYS_040515AD&REV_00\\3&61aaa01&0&78\n"
            "Status:                     Started\n")
    capture = windows_text.read(text, "pnputil")
    assert [d.present for d in capture.devices] == [False, True]
    assert set(windows_import.rebuild(capture, "pnputil").placed) == {"00:0f.0"}


def test_get_ciminstance_format_list_with_a_cut_id_list():
    text = ("PS C:\\> Get-CimInstance Win32_PnPEntity | Format-List DeviceID,HardwareID,Service\n\n"
            "DeviceID   : PCI\\VEN_15AD&DEV_07B0&SUBSYS_07B015AD&REV_01\\FF565000E7609AFE00\n"
            "HardwareID : {PCI\\VEN_15AD&DEV_07B0&SUBSYS_07B015AD&REV_01, PCI\\VEN_15AD&DEV_07B0&SUBSYS_07B015AD, "
            "PCI\\VEN_15AD&DEV_07B0&CC_020000, PCI\\VEN_15AD&DEV_07B0&CC_0200...}\n"
            "Service    : vmxnet3ndis6\n")
    capture = windows_text.read(text, "cim")
    (nic,) = capture.devices
    assert nic.service == "vmxnet3ndis6" and nic.class_code == 0x020000 and len(nic.hardware_ids) == 3
    assert not capture.problems


def test_location_information_as_the_registry_stores_it_since_windows_8():
    text = ("[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Enum\\PCI\\VEN_15AD&DEV_07B0&SUBSYS_07B015AD&REV_01"
            "\\FF565000E7609AFE00]\n"
            "\"LocationInformation\"=\"@System32\\\\drivers\\\\pci.sys,#65536;PCI bus %1, device %2, function %3;(11,0,0)\"\n")
    (nic,) = windows_text.read(text, "enum.reg").devices
    assert nic.location_info == (11, 0, 0)
