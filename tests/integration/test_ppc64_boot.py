"""Boot the bundled ppc64 pseries profiles for real (qemu-system-ppc64, TCG) and assert placement and identity."""

from __future__ import annotations

import pytest

from shared_boots import direct_boot

from guestcompat.detection import models
from guestcompat.emulation.fidelity import FidelityReport
from guestcompat.emulation.target import Target
from guestcompat.harness.compare import Status, compare
from guestcompat.harness.run import RunOutcome

pytestmark = pytest.mark.boot

PSERIES = Target("ppc64", "pseries", "tcg")


@pytest.fixture(scope="module")
def vscsi() -> RunOutcome:
    return direct_boot("power/pseries-vscsi", PSERIES)


@pytest.fixture(scope="module")
def pci() -> RunOutcome:
    return direct_boot("power/pseries-pci", PSERIES)


def _failures(outcome: RunOutcome) -> list[str]:
    return [c.line() for c in outcome.checks if c.status is Status.FAIL]


def test_vscsi_profile_passes(vscsi):
    assert vscsi.passed, _failures(vscsi)
    assert vscsi.fingerprint.arch == "ppc64le"


def test_vio_nodes_sit_at_the_profiles_reg(vscsi):
    dt = vscsi.fingerprint.devicetree
    assert dt["vdevice/v-scsi@71000010/reg"] == ("0x71000010",)
    assert dt["vdevice/v-scsi@71000010/compatible"] == ("IBM,v-scsi",)
    assert dt["vdevice/l-lan@71000020/reg"] == ("0x71000020",)
    assert dt["vdevice/l-lan@71000020/device_type"] == ("network",)
    nodes = sorted({k.split("/")[1] for k in dt if k.startswith("vdevice/")})
    assert nodes == ["l-lan@71000020", "nvram@71000001", "v-scsi@71000010", "vty@71000000"]


def test_vio_disk_and_nic_are_driven(vscsi):
    [disk] = [b for b in vscsi.fingerprint.block if b.vio == "71000010"]
    assert (disk.vendor, disk.model, disk.rev) == ("AIX", "VDASD", "0001")
    macs = {n.mac for n in vscsi.fingerprint.net}
    assert "52:54:00:12:34:20" in macs             # ibmveth bound the l-lan adapter


def test_identity_from_the_device_tree(vscsi):
    dt = vscsi.fingerprint.devicetree
    assert dt["host-model"] == ("IBM,9009-22A",)
    assert dt["host-serial"] == ("IBM,02781234X",)
    assert dt["system-id"] == ("2e8f3c1a-5b7d-4e9f-a1c3-6d5e4f3a2b1c",)
    assert vscsi.fingerprint.smbios is None and not vscsi.fingerprint.cpuid   # no SMBIOS, no CPUID on pseries
    assert any(line.endswith(" pSeries") for line in vscsi.fingerprint.kernel_log)


def test_an_unexpected_vio_node_fails_the_comparison(vscsi):
    """Drop the expectations of one node: the guest still shows it, so the comparison must fail."""
    kept = tuple(e for e in vscsi.compiled.expectations if not e.selector.startswith("vdevice[l-lan@71000020]"))
    results = compare(FidelityReport(kept), vscsi.fingerprint)
    failed = [r.selector for r in results if r.status is Status.FAIL]
    assert failed == ["vdevice[l-lan@71000020].present"]


def test_pci_profile_passes_with_functions_at_their_addresses(pci):
    assert pci.passed, _failures(pci)
    by_ref = {fn.ref: fn for fn in pci.fingerprint.pci}
    assert sorted(by_ref) == ["00:01.0", "00:02.0"]           # PHB 0 is PCI domain 0000
    assert (by_ref["00:01.0"].vendor, by_ref["00:01.0"].device, by_ref["00:01.0"].driver) == (0x1000, 0x0060,
                                                                                          "megaraid_sas")
    assert (by_ref["00:02.0"].vendor, by_ref["00:02.0"].device, by_ref["00:02.0"].driver) == (0x8086, 0x100E, "e1000")
    [disk] = [b for b in pci.fingerprint.block if b.pci == "00:01.0"]
    assert disk.model == "PCI disk"
    assert pci.fingerprint.devicetree["host-model"] == ("IBM,9009-42A",)


def test_pci_profile_reports_the_nil_uuid_as_a_deviation(pci):
    [check] = [c for c in pci.checks if c.selector == "devicetree.root.vm,uuid"]
    assert check.status is Status.DEVIATION
    assert check.observed == ("00000000-0000-0000-0000-000000000000",)


@pytest.mark.parametrize(("regs", "qemu_says"), [
    ((0x71000002, 0x2000), "is not free"),                 # same VIO interrupt (0x02)
    ((0x71000101,), "is not free"),                         # the machine's nvram@71000001 has interrupt 0x01
    ((0x71000001,), "conflict at address 0x71000001"),      # the machine's nvram itself
])
def test_qemu_refuses_what_the_vio_check_refuses(regs, qemu_says, tmp_path):
    """The compile-time VIO checks predict QEMU's own refusals (with the harness's serial backend)."""
    import subprocess

    from guestcompat.bridges.spapr_vio import VioSlot, check
    from guestcompat.errors import TopologyError

    machine = [VioSlot("vty", 0x71000000, "vty", fixed=True), VioSlot("nvram", 0x71000001, "nvram", fixed=True)]
    with pytest.raises(TopologyError):
        check([*machine, *(VioSlot(f"d{i}", reg, "v-scsi") for i, reg in enumerate(regs))])
    argv = ["qemu-system-ppc64", "-M", f"pseries,x-vof=on,dumpdtb={tmp_path / 'x.dtb'}", "-nodefaults",
            "-display", "none", "-serial", "null"]
    for reg in regs:
        argv += ["-device", f"spapr-vscsi,reg={reg:#x}"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and qemu_says in result.stderr


def test_qemu_accepts_the_bundled_vio_layout(tmp_path):
    import subprocess

    from guestcompat.emulation.compiler import compile_profile
    from guestcompat.profiles.loader import load

    argv = list(compile_profile(load("power/pseries-vscsi"), PSERIES).argv)
    i = argv.index("-machine")
    argv[i + 1] += f",dumpdtb={tmp_path / 'x.dtb'}"
    result = subprocess.run([*argv, "-serial", "null"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert b"IBM,9009-22A" in (tmp_path / "x.dtb").read_bytes()


@pytest.mark.parametrize("which", ["vscsi", "pci"])
def test_detection_models_agree_with_the_guest(which, request):
    """ppc64 images carry no systemd-detect-virt, virt-what or vmware-checkvm (x86 tools):
    the real detector is the kernel, which names no hypervisor on pseries; the x86 models
    say nothing either and name the facts they lack instead of guessing."""
    fp = request.getfixturevalue(which).fingerprint
    assert models.real_verdicts(fp) == {"linux": None}
    assert [d.line() for d in models.disagreements(fp)] == []
    verdicts = models.evaluate(fp)
    assert "cpuid" in verdicts["linux"].missing
    assert verdicts["vmware-checkvm"].result is None and "backdoor" in verdicts["vmware-checkvm"].missing
    assert verdicts["windows"].result == "none"
