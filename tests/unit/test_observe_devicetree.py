"""Selectors over device-tree, VIO and kernel-platform parts of a fingerprint (pure logic)."""

from __future__ import annotations

from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.emulation.fidelity import Expectation, FidelityReport
from guestcompat.harness.compare import Status, compare
from guestcompat.harness.observe import observe


def _hex(text: str) -> str:
    return (text.encode() + b"\0").hex()


DOC = {
    "arch": "ppc64le",
    "devicetree": {
        "root": {"host-model": _hex("IBM,9009-22A"), "compatible": _hex("qemu,pseries")},
        "vdevice": {
            "v-scsi@71000010": {"name": _hex("v-scsi"), "compatible": _hex("IBM,v-scsi"),
                                "device_type": _hex("vscsi"), "reg": "71000010"},
            "vty@71000000": {"name": _hex("vty"), "reg": "71000000"},
        },
    },
    "block": {"sda": {"vendor": "AIX     ", "model": "VDASD", "rev": "0001", "pci": "", "vio": "71000010"}},
    "kernel_log": ["[    0.000000] Hardware name: IBM pSeries (emulated by qemu) POWER9 (architected) "
                   "0x4e1200 0xf000005 pSeries"],
}


def test_selectors_read_the_device_tree():
    fp = Fingerprint.from_document(DOC)
    assert observe(fp, "devicetree.root.host-model") == ("IBM,9009-22A",)
    assert observe(fp, "devicetree.root.host-serial") is None
    assert observe(fp, "vdevice[v-scsi@71000010].present") is True
    assert observe(fp, "vdevice[v-scsi@71000010].reg") == "0x71000010"
    assert observe(fp, "vdevice[v-scsi@71000010].compatible") == "IBM,v-scsi"
    assert observe(fp, "vdevice[l-lan@71000020].present") is None
    assert observe(fp, "disk[vio:71000010:0].vendor") == "AIX"
    assert observe(fp, "disk[vio:71000020:0].vendor") is None
    assert observe(fp, "kernel.platform") == "pSeries"


def test_uncovered_vdevice_node_fails():
    fp = Fingerprint.from_document(DOC)
    report = FidelityReport((Expectation("placement", "vdevice[v-scsi@71000010].present", True, True),))
    results = {r.selector: r.status for r in compare(report, fp)}
    assert results == {"vdevice[v-scsi@71000010].present": Status.PASS,
                       "vdevice[vty@71000000].present": Status.FAIL}


def test_x86_fingerprint_has_no_vdevice_checks():
    fp = Fingerprint.from_document({"arch": "x86_64"})
    assert compare(FidelityReport(()), fp) == []
    assert observe(fp, "kernel.platform") is None
