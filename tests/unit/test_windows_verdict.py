"""The Windows view of a machine and the verdict of a move (detection/windows/view.py, verdict.py, report.py)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.detection.windows import drivers, report, sources, verdict, view
from guestcompat.detection.windows.ids import PciIdentity
from guestcompat.profiles.loader import load

DATA = Path(__file__).resolve().parents[1] / "data"
WIN2019 = drivers.catalogue().version("2019")


@pytest.fixture(scope="module")
def esxi65():
    return view.build_view(sources.from_profile(load("vmware/esxi-6.5")), WIN2019)


@pytest.fixture(scope="module")
def stock_boot():
    """A real boot of vmware/esxi-6.5 on stock QEMU 7.2 (the project's stored fingerprint)."""
    fp = Fingerprint.from_json((DATA / "esxi-6.5.fingerprint.json").read_text())
    return view.build_view(sources.from_fingerprint(fp, "stock boot"), WIN2019)


def row_at(result: verdict.WindowsVerdict, where: str) -> verdict.DeviceRow:
    return next(r for r in result.rows if r.device.where == where)


def test_profile_view_names_vmware_devices_as_windows_does(esxi65):
    svga = next(d for d in esxi65.devices if d.where == "00:0f.0")
    assert svga.instance_path.endswith("&78") and svga.level == 3
    assert svga.driver.entry.service == "vm3dmp" and svga.driver.entry.origin == "vmware-tools"
    nic = next(d for d in esxi65.devices if d.where == "0b:00.0")
    assert (nic.form, nic.instance) == ("serial", "FF565000E7609AFE00")       # MAC 00:50:56:9a:60:e7
    assert esxi65.boot_chain == ("scsi0", "pciBridge4-0")


def test_same_machine_is_same_everywhere(esxi65):
    result = verdict.compare(esxi65, esxi65)
    assert {r.status for r in result.rows} == {"same"}
    assert result.boot.boots is True and not result.nics and result.exit_code("any") == 0


def test_stock_qemu_boot_keeps_svga_loses_the_nic_settings_and_still_boots(esxi65, stock_boot):
    result = verdict.compare(esxi65, stock_boot)
    assert row_at(result, "00:0f.0").status == "same"                      # same ids at 00:0f.0, same root
    pvscsi = row_at(result, "03:00.0")
    assert (pvscsi.status, pvscsi.driver) == ("new", "present")
    assert any("serial to location" in r for r in pvscsi.reasons)
    assert [n.source.where for n in result.nics] == ["0b:00.0"]
    assert row_at(result, "00:07.7").status == "gone"                       # VMCI: stock QEMU has none
    root_ports = [r for r in result.rows if r.device.device_id.startswith(r"PCI\VEN_1B36&DEV_000C")]
    assert len(root_ports) == 32 and all(r.status == "new" and r.driver == "present" for r in root_ports)
    assert result.boot.boots is True
    assert [s.where for s in result.boot.steps] == ["03:00.0", "00:15.0"]
    assert "pvscsi" in result.boot.steps[0].rule and "DriverDatabase" in result.boot.steps[0].rule
    assert result.exit_code("boot") == 0 and result.exit_code("nic") == 1


def _with_boot_controller(machine: view.Machine, identity: PciIdentity) -> view.Machine:
    functions = tuple(replace(f, ids=identity, serial=None) if f.key == machine.boot_controller else f
                      for f in machine.functions)
    return replace(machine, functions=functions)


def test_boot_controller_without_a_driver_is_0x7b_and_fails_the_gate(esxi65):
    virtio = PciIdentity(0x1AF4, 0x1048, 0x1AF4, 0x1100, 0x01, 0x010000)
    target = view.build_view(_with_boot_controller(esxi65.machine, virtio), WIN2019)
    result = verdict.compare(esxi65, target)
    assert result.boot.boots is False and "0x7B" in result.boot.summary
    assert row_at(result, "03:00.0").driver == "missing"
    assert result.exit_code() == 1
    junit = ET.fromstring(report.to_junit(result))
    boot = junit.find("testcase[@name='boot']")
    assert boot is not None and boot.find("failure") is not None
    doc = json.loads(report.to_json(result))
    assert doc["boot"]["boots"] is False and doc["exit_code"] == 1


def test_inbox_driver_not_in_use_is_not_boot_start(esxi65):
    """pvscsi → AHCI: storahci is inbox but was not the boot driver (KB 922976): 0x7B."""
    ahci = PciIdentity(0x8086, 0x2922, 0x1AF4, 0x1100, 0x02, 0x010601)
    result = verdict.compare(esxi65, view.build_view(_with_boot_controller(esxi65.machine, ahci), WIN2019))
    assert row_at(result, "03:00.0").driver == "present"
    assert result.boot.boots is False and "storahci" in result.boot.steps[0].rule


def test_lsi_sas_on_qemus_mptsas_boots_on_the_inbox_driver():
    source = view.build_view(sources.from_profile(load("vmware/esxi-6.0")), WIN2019)
    boot = source.device(source.boot_chain[0])
    assert boot.driver.entry.service == "LSI_SAS"
    mptsas = PciIdentity(0x1000, 0x0054, 0x1000, 0x8000, 0x00, 0x010000)   # what stock QEMU's mptsas1068 shows
    result = verdict.compare(source, view.build_view(_with_boot_controller(source.machine, mptsas), WIN2019))
    assert result.boot.boots is True and "LSI_SAS" in result.boot.steps[0].rule


def test_xp_activation_counts_the_nic_as_three_votes(esxi65, stock_boot):
    xp = drivers.catalogue().version("xp")
    result = verdict.compare(view.build_view(esxi65.machine, xp), view.build_view(stock_boot.machine, xp))
    low, high = result.activation.points
    assert result.activation.scheme == "xp-hash" and low <= high <= 12
    assert not any(c.component.startswith("NIC MAC") for c in result.activation.changes)   # same MAC kept
    same = verdict.compare(view.build_view(esxi65.machine, xp), view.build_view(esxi65.machine, xp))
    assert same.activation.points[0] >= 7


def test_vista_activation_lists_changed_smbios_strings(esxi65):
    changed = replace(esxi65.machine, identity=replace(esxi65.machine.identity, system_product="Standard PC (i440FX)"))
    result = verdict.compare(esxi65, view.build_view(changed, WIN2019))
    assert [c.component for c in result.activation.changes] == ["system product"]


def test_text_report_groups_the_32_root_ports(esxi65, stock_boot):
    text = "\n".join(report.render_text(verdict.compare(esxi65, stock_boot)))
    assert "00:15.0 … 00:18.7 (32 functions)" in text
    assert text.splitlines()[-1].startswith("BOOTS: ")


def test_xp_source_booting_from_a_chip_the_catalogue_lacks_boots_on_the_same_chip():
    """Server 2003 has no inbox LSI SAS driver: the VM booted from one VMware supplied; QEMU's mptsas1068 is the
    same chip (1000:0054), so that driver's id still matches (inferred), while another chip would be 0x7B."""
    w2003 = drivers.catalogue().version("2003")
    source = view.build_view(sources.from_profile(load("vmware/esxi-6.0")), w2003)
    mptsas = PciIdentity(0x1000, 0x0054, 0x1000, 0x8000, 0x00, 0x010000)
    same_chip = verdict.compare(source, view.build_view(_with_boot_controller(source.machine, mptsas), w2003))
    assert same_chip.boot.boots is True and "[inferred]" in same_chip.boot.steps[0].rule
    other = PciIdentity(0x1000, 0x0012, 0x0000, 0x1000, 0x00, 0x010000)       # QEMU's lsi53c895a
    assert verdict.compare(source, view.build_view(_with_boot_controller(source.machine, other), w2003)).boot.boots is False
    assert same_chip.activation.scheme == "xp-hash" and same_chip.activation.points[1] <= 12
