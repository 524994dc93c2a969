"""Parsers of the guest tools' output, against real VMware captures and garbage."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detection_support import BUSYBOX, PROBE_SH

from guestcompat.detection import frame
from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.detection.tools import (ToolRun, parse_checkvm, parse_detect_virt, parse_dmidecode,
                                         parse_lspci_vmm, parse_net_id, parse_runs, parse_virt_what)

from detection_support import CAPTURES
LSPCI = (CAPTURES / "fusion-ubuntu2010-jc.lspci.txt").read_text()
DMIDECODE = (CAPTURES / "fusion-centos77-jc.dmidecode.txt").read_text()


def test_lspci_capture_of_a_vmware_fusion_guest():
    devices, errors = parse_lspci_vmm(LSPCI)
    assert errors == ()
    assert len(devices) == sum(ln.startswith("Slot:") for ln in LSPCI.splitlines())
    host = devices[0]
    assert (host.slot, host.class_id, host.vendor, host.device) == ("00:00.0", 0x0600, 0x8086, 0x7190)
    assert (host.subsystem_vendor, host.subsystem_device, host.revision) == (0x15AD, 0x1976, 0x01)
    assert host.device_name == "440BX/ZX/DX - 82443BX/ZX/DX Host bridge"
    assert host.subsystem_vendor_name == "VMware"
    ide = next(d for d in devices if d.slot == "00:07.1")
    assert ide.prog_if == 0x8A
    # PCIe root ports carry VMware's slot numbers (PhySlot) in a real VMware guest
    assert any(d.physical_slot for d in devices)
    assert all(d.vendor is not None and d.device is not None for d in devices)


def test_dmidecode_capture_of_a_vmware_fusion_guest():
    dmi, errors = parse_dmidecode(DMIDECODE)
    assert errors == ()
    assert dmi.smbios_version == "2.7"
    assert len(dmi.structures) == 620
    system = dmi.first(1)
    assert system.title == "System Information" and system.handle == 0x0001
    assert system.fields["Manufacturer"] == "VMware, Inc."
    assert system.fields["Product Name"] == "VMware Virtual Platform"
    assert system.fields["Serial Number"] == "VMware-56 4d fd 28 89 33 f8 e2-64 74 01 59 92 3b 58 0e"
    assert system.fields["UUID"] == "28fd4d56-3389-e2f8-6474-0159923b580e"
    bios = dmi.first(0)
    assert bios.fields["Release Date"] == "04/13/2018"
    assert "Characteristics" in bios.lists and len(bios.lists["Characteristics"]) > 5
    assert dmi.of_type(127)[0].title == "End Of Table"


def test_net_id_detect_virt_virt_what_checkvm():
    names, errors = parse_net_id("ens192", "ID_NET_NAMING_SCHEME=v252\nID_NET_NAME_MAC=enx0050569a60e7\n"
                                 "ID_NET_NAME_PATH=enp11s0\nID_NET_NAME_SLOT=ens192\n")
    assert errors == () and names.predictable == "ens192" and names.path == "enp11s0"
    names, _ = parse_net_id("eth0", "ID_NET_NAME_PATH=enp11s0\n")
    assert names.predictable == "enp11s0" and names.slot is None
    assert parse_detect_virt(ToolRun(0, "vmware\n", "")) == "vmware"
    assert parse_detect_virt(ToolRun(1, "none\n", "")) == "none"
    assert parse_virt_what(ToolRun(0, "vmware\nqemu\n", "")) == ("vmware", "qemu")
    assert parse_virt_what(ToolRun(1, "", "virt-what: this script must be run as root")) is None
    good = parse_checkvm(ToolRun(0, "VMware software version 6 (good)\n", ""))
    assert good.ok and good.version == 6
    bad = parse_checkvm(ToolRun(1, "Error: vmware-checkvm must be run inside a virtual machine\n", ""))
    assert not bad.ok and bad.version is None and bad.message.startswith("Error:")
    killed = parse_checkvm(ToolRun(139, "", ""))
    assert not killed.ok and killed.message == "exit status 139"


def test_failed_tool_is_an_error_not_a_crash():
    tools, errors = parse_runs({"lspci": ToolRun(127, "", "lspci: not found"),
                                "dmidecode": ToolRun(0, DMIDECODE, "")})
    assert tools.lspci == () and tools.dmidecode is not None
    assert errors == ("tool lspci exited with status 127: lspci: not found",)


text = st.text(alphabet=st.sampled_from(list("Slot:\t\n 0123abcdefHandle x,DMItype[]=_ABCZ#.\x00é")), max_size=400)


@settings(max_examples=300, deadline=None)
@given(text)
def test_garbage_never_crashes_the_parsers(garbage):
    for t in (garbage, LSPCI[:len(garbage)] + garbage, DMIDECODE[:500] + garbage):
        parse_lspci_vmm(t)
        parse_dmidecode(t)
        parse_net_id("eth0", t)
        parse_runs({"lspci": ToolRun(0, t, ""), "dmidecode": ToolRun(0, t, ""), "virt-what": ToolRun(0, t, ""),
                    "systemd-detect-virt": ToolRun(0, t, ""), "vmware-checkvm": ToolRun(0, t, t),
                    "net_id/eth0": ToolRun(0, t, "")})


def _fake_tool(root: Path, rel: str, script: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("#!/bin/sh\n" + script + "\n")
    p.chmod(0o755)


def test_probe_runs_the_tools_and_the_fingerprint_parses_them(tmp_path):
    """probe.sh (busybox sh + awk on the host) with fake tools: the records, the
    frame and the typed fields all carry what the tools printed, tabs included."""
    tools = tmp_path / "tools"
    lspci_out = "Slot:\t0b:00.0\nClass:\tEthernet controller [0200]\nVendor:\tVMware [15ad]\n" \
                "Device:\tVMXNET3 Ethernet Controller [07b0]\nRev:\t01\n"
    (tmp_path / "lspci.txt").write_text(lspci_out)
    _fake_tool(tools, "usr/bin/lspci", f"cat {tmp_path}/lspci.txt")
    _fake_tool(tools, "usr/sbin/dmidecode", f"head -c 3000 {CAPTURES}/fusion-centos77-jc.dmidecode.txt")
    _fake_tool(tools, "usr/bin/systemd-detect-virt", "echo vmware")
    _fake_tool(tools, "usr/sbin/virt-what", "echo vmware; echo qemu")
    _fake_tool(tools, "usr/bin/vmware-checkvm", "kill -SEGV $$")
    sysroot = tmp_path / "sys"
    (sysroot / "sys/class/net/eth0").mkdir(parents=True)
    (sysroot / "sys/class/net/lo").mkdir(parents=True)
    _fake_tool(tools, "usr/bin/udevadm", 'echo "ID_NET_NAME_PATH=enp11s0"; echo "$3" >&2')
    env = {**os.environ, "GC_TOOLROOT": str(tools), "GC_SYSROOT": str(sysroot), "GC_HELPER": "",
           "GC_CONSOLE_LEVEL": "", "GC_TMPDIR": str(tmp_path / "t"), "GC_DMESG": "true"}
    out = subprocess.run([BUSYBOX, "sh", str(PROBE_SH)], env=env, capture_output=True, text=True,
                         check=True).stdout
    doc = frame.extract_document(out.splitlines())
    assert doc["tools"]["lspci"]["stdout"] == lspci_out.rstrip("\n")
    assert doc["tools"]["vmware-checkvm"]["status"] == "139"
    assert set(doc["tools"]["net_id"]) == {"eth0"}
    fp = Fingerprint.from_document(doc)
    t = fp.tools
    assert t.lspci_device("0b:00.0").device == 0x07B0
    assert t.dmidecode.first(0).fields["Vendor"] == "Phoenix Technologies LTD"
    assert (t.detect_virt, t.virt_what) == ("vmware", ("vmware", "qemu"))
    assert not t.vmware_checkvm.ok and t.vmware_checkvm_ioperm is None
    assert t.net_names["eth0"].predictable == "enp11s0"
    assert t.runs["net_id/eth0"].stderr.endswith("sys/class/net/eth0")
    assert Fingerprint.from_json(fp.to_json()) == fp


@pytest.mark.parametrize("tools", [
    {"lspci": "not an object"},
    {"lspci": {"status": "zero", "stdout": ""}},
    {"lspci": {"status": "0", "stdout": 17}},
    {"net_id": {"eth0": ["x"]}},
])
def test_a_malformed_tools_section_is_a_probe_error(tools):
    from guestcompat.errors import ProbeError
    with pytest.raises(ProbeError, match=r"probe document: tools"):
        Fingerprint.from_document({"format": "guestcompat-probe", "version": 1, "tools": tools})


def test_document_without_tools_has_none():
    assert Fingerprint.from_document({"format": "guestcompat-probe", "version": 1}).tools is None


@pytest.mark.parametrize(("cmdline", "gc_run", "expected"), [
    ("quiet guestcompat.run=0123abcd guestcompat.nics=0", None, "0123abcd"),   # the boot's nonce
    ("quiet guestcompat.run=0123abcd", "token42", "token42"),                  # a migration rerun's token wins
    ("quiet", None, None),
])
def test_probe_records_the_boots_nonce_as_run(tmp_path, cmdline, gc_run, expected):
    """Issue 13: the host puts guestcompat.run=<nonce> on the command line and refuses a document without it."""
    sysroot = tmp_path / "sys"
    (sysroot / "proc").mkdir(parents=True)
    (sysroot / "proc/cmdline").write_text(cmdline + "\n")
    env = {**os.environ, "GC_TOOLROOT": str(tmp_path / "none"), "GC_SYSROOT": str(sysroot), "GC_HELPER": "",
           "GC_CONSOLE_LEVEL": "", "GC_TMPDIR": str(tmp_path / "t"), "GC_DMESG": "true", "GC_SETTLE_TIMEOUT": "0"}
    env.pop("GC_RUN", None)
    if gc_run:
        env["GC_RUN"] = gc_run
    out = subprocess.run([BUSYBOX, "sh", str(PROBE_SH)], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert frame.extract_document(out.splitlines()).get("run") == expected
