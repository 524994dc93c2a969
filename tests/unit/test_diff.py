"""The semantic diff engine and the baseline file handling, on a stored real
fingerprint (tests/data/esxi-6.5.fingerprint.json, from a vmware/esxi-6.5 boot) and edits of it."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from guestcompat.detection.diff import diff, match_pci
from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.detection.tools import NetNames
from guestcompat.harness import baseline
from guestcompat.harness.normalize import BaselineError, default_rules, normalize_plain, parse_rules

DATA = Path(__file__).resolve().parents[1] / "data" / "esxi-6.5.fingerprint.json"


@pytest.fixture(scope="module")
def fp() -> Fingerprint:
    return Fingerprint.from_json(DATA.read_text())


def texts(a: Fingerprint, b: Fingerprint) -> list[str]:
    return [c.text for c in diff(a, b)]


def move_nic(fp: Fingerprint, to: str, slot: str, name: str) -> Fingerprint:
    pci = tuple(dataclasses.replace(f, address=to, physical_slot=slot) if f.address == "0b:00.0" else f
                for f in fp.pci)
    net = tuple(dataclasses.replace(n, pci=to) if n.pci == "0b:00.0" else n for n in fp.net)
    props = dict(fp.tools.net_names["eth0"].properties, ID_NET_NAME_SLOT=name)
    tools = dataclasses.replace(fp.tools, net_names={"eth0": NetNames("eth0", props)})
    return dataclasses.replace(fp, pci=pci, net=net, tools=tools)


def test_identical_fingerprints_have_no_changes(fp):
    assert diff(fp, fp) == ()


def test_a_moved_nic_is_a_move_and_a_rename_not_delete_and_add(fp):
    assert texts(fp, move_nic(fp, "0c:00.0", "193", "ens193")) == [
        "vmxnet3 (15ad:07b0) moved from 0b:00.0 to 0c:00.0",
        "physical slot of 0b:00.0 (now 0c:00.0): 192 → 193",
        "NIC renamed ens192 → ens193 (its PCI function moved from 0b:00.0 to 0c:00.0)",
    ]


def test_identical_root_ports_pair_by_address_first(fp):
    ports = [f for f in fp.pci if f.driver == "pcieport"]
    assert len(ports) > 2
    pairs, gone, new = match_pci(fp.pci, fp.pci[::-1])
    assert all(x is y for x, y in pairs) and not gone and not new


def test_detectors_dmi_and_kernel_lines(fp):
    other = dataclasses.replace(
        fp, dmi={**fp.dmi, "product_serial": "B"},
        tools=dataclasses.replace(fp.tools, detect_virt="kvm", virt_what=("kvm",)),
        hypervisor_lines=("Hypervisor detected: KVM",),
        kernel_log=tuple("Hypervisor detected: KVM" if ln == "Hypervisor detected: VMware" else ln
                         for ln in fp.kernel_log))
    got = texts(fp, other)
    assert "systemd-detect-virt: vmware → kvm" in got
    assert "virt-what: vmware → kvm" in got
    assert f"DMI product_serial: {fp.dmi['product_serial']} → B" in got
    assert "kernel now says Hypervisor detected: KVM (was VMware)" in got
    assert len(got) == 4, got


def test_removed_function_and_changed_slot(fp):
    vmci = next(f for f in fp.pci if f.vendor == 0x15AD and f.device == 0x0405)
    fewer = dataclasses.replace(fp, pci=tuple(f for f in fp.pci if f is not vmci))
    assert texts(fp, fewer) == [f"PCI function {vmci.ref} (15ad:0405) disappeared"]
    assert texts(fewer, fp) == [f"PCI function {vmci.ref} (15ad:0405) appeared"]
    reslot = dataclasses.replace(fp, pci=tuple(dataclasses.replace(f, physical_slot="193") if f.address == "0b:00.0"
                                               else f for f in fp.pci))
    assert texts(fp, reslot) == ["physical slot of 0b:00.0: 192 → 193"]


def test_backdoor_and_cpuid_signature(fp):
    leaf = dataclasses.replace(fp.cpuid[0x40000000], ebx=int.from_bytes(b"KVMK", "little"),
                               ecx=int.from_bytes(b"VMKV", "little"), edx=int.from_bytes(b"M\0\0\0", "little"))
    other = dataclasses.replace(fp, cpuid={**fp.cpuid, 0x40000000: leaf}, backdoor=None, backdoor_error="no vmport")
    got = texts(fp, other)
    assert "CPUID hypervisor signature: '' → 'KVMKVMKVM'" in got
    assert "VMware backdoor GETVERSION: VMware version 6, type 2 → no answer (no vmport)" in got


def test_sections_without_a_rule_are_still_compared(fp):
    bios = dataclasses.replace(fp.smbios.bios, version="7.00")
    other = dataclasses.replace(fp, smbios=dataclasses.replace(fp.smbios, bios=bios))
    assert texts(fp, other) == [f"smbios.bios.version: {fp.smbios.bios.version} → 7.00"]


# -- normalisation -----------------------------------------------------------------

def test_volatile_fields_are_normalised_away(fp):
    plain = json.loads(fp.to_json())
    plain["tools"]["runs"]["lspci"]["centiseconds"] = 9999
    plain["kernel_log"] = [ln.replace("2442.878 MHz", "2600.000 MHz") for ln in plain["kernel_log"]]
    plain["net"][0]["ifindex"] = 7
    edited = Fingerprint.from_json(json.dumps(plain))
    assert diff(fp, edited) != ()
    assert diff(baseline.normalized(fp), baseline.normalized(edited)) == ()
    norm = normalize_plain(plain, default_rules())
    assert norm["tools"]["runs"]["lspci"]["centiseconds"] is None
    assert "tsc: Detected <MHz> MHz processor" in norm["kernel_log"]
    assert plain["tools"]["runs"]["lspci"]["centiseconds"] == 9999     # input untouched


def test_every_declared_rule_has_a_reason_and_a_bad_rule_is_refused():
    assert all(r.reason for r in default_rules())
    with pytest.raises(BaselineError, match=r"rule\[0\] \(a.b\): needs a reason"):
        parse_rules('[[rule]]\npath = "a.b"\n', "t.toml")
    with pytest.raises(BaselineError, match="pattern"):
        parse_rules('[[rule]]\npath = "a"\nreason = "x"\npattern = "("\n', "t.toml")


# -- files -----------------------------------------------------------------------

def test_store_is_atomic_and_round_trips(fp, tmp_path):
    path = tmp_path / "b" / "vmware" / "esxi-6.5.json"
    stored = baseline.store(fp, path)
    assert os.listdir(path.parent) == ["esxi-6.5.json"]
    assert baseline.load_fingerprint(path) == stored
    assert baseline.check(fp, path).same


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "x.json"
    path.write_text("old")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        baseline.write_atomic(path, "new")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["x.json"]


def test_run_json_and_bad_files(fp, tmp_path):
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"verdict": "pass", "fingerprint": json.loads(fp.to_json())}))
    assert baseline.load_fingerprint(run) == fp
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(BaselineError, match="bad.json: not JSON"):
        baseline.load_fingerprint(bad)
    with pytest.raises(BaselineError, match="no such file"):
        baseline.load_fingerprint(tmp_path / "missing.json")
    with pytest.raises(BaselineError, match="cannot name"):
        baseline.baseline_path("../etc/passwd")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", *args], capture_output=True, text=True)


def test_diff_command_exit_codes(fp, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(fp.to_json())
    b.write_text(move_nic(fp, "0c:00.0", "193", "ens193").to_json())
    same = cli("diff", str(a), str(a))
    assert (same.returncode, same.stdout) == (0, "SAME\n")
    changed = cli("diff", str(a), str(b))
    assert changed.returncode == 1
    assert "  NIC renamed ens192 → ens193 (its PCI function moved from 0b:00.0 to 0c:00.0)" in changed.stdout.splitlines()
    missing = cli("diff", str(a), str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "error:" in missing.stderr and "nope.json: no such file" in missing.stderr


def test_the_tsc_calibration_path_is_volatile_but_a_new_tsc_fact_is_not(fp):
    """Seen in the suite: one TCG boot calibrates against the PIT, the next one (busier host) falls back to
    the HPET; that is host timing, not a different machine. A line outside the rule still differs."""
    plain = json.loads(fp.to_json())
    pit = dict(plain, kernel_log=["tsc: Fast TSC calibration using PIT", "tsc: Detected 2445.4 MHz processor"])
    hpet = dict(plain, kernel_log=["tsc: Unable to calibrate against PIT", "tsc: using HPET reference calibration",
                                   "tsc: Detected 2445.3 MHz processor"])
    unstable = dict(hpet, kernel_log=hpet["kernel_log"] + ["tsc: Marking TSC unstable due to clocksource watchdog"])
    as_fp = lambda p: baseline.normalized(Fingerprint.from_json(json.dumps(p)))  # noqa: E731
    assert diff(as_fp(pit), as_fp(hpet)) == ()
    assert texts(as_fp(pit), as_fp(unstable)) == [
        "kernel now logs: tsc: Marking TSC unstable due to clocksource watchdog"]


def test_the_patched_builds_measured_tsc_rate_is_volatile_but_the_vmware_leaves_are_not(fp):
    """Seen booting the same profile twice on guestcompat's patched QEMU: the TSC rate it measures at
    start differs by a few kHz (leaf 0x40000010, GETHZ, the kernel's lines about them). Losing the
    VMware signature is still a change."""
    plain = json.loads(fp.to_json())
    leaves = {"0x40000000": {"eax": "0x40000010", "ebx": "0x61774d56", "ecx": "0x4d566572", "edx": "0x65726177"}}

    def boot(khz: int, offset: int) -> dict:
        timing = {"eax": f"0x{khz:08x}", "ebx": "0x000f4240", "ecx": "0x00000000", "edx": "0x00000000"}
        return dict(plain, cpuid={**plain["cpuid"], **leaves, "0x40000010": timing},
                    kernel_log=[f"vmware: TSC freq read from hypervisor : {khz / 1000:.3f} MHz",
                                f"vmware: using clock offset of {offset} ns"])

    as_fp = lambda p: baseline.normalized(Fingerprint.from_json(json.dumps(p)))  # noqa: E731
    assert diff(as_fp(boot(2599997, 304042885)), as_fp(boot(2599995, 210080201))) == ()
    unsigned = boot(2599995, 210080201)
    unsigned["cpuid"]["0x40000000"] = dict(leaves["0x40000000"], ebx="0x54474354")
    changes = diff(as_fp(boot(2599997, 1)), as_fp(unsigned))
    assert changes and {c.kind for c in changes} == {"cpuid"}
