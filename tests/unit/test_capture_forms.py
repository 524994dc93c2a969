"""Every capture form (tests/data/captures, lspci samples rendered by the real lspci): sniffed, read,
ids inferred from names said so, pasting damage undone, and refusals that name what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guestcompat.errors import GuestcompatError, ProfileError
from guestcompat.profiles.importers.capture import import_facts
from guestcompat.profiles.importers.forms import read_text

DATA = Path(__file__).parent.parent / "data" / "captures"
SHARED_DMI = Path("/work/shared/vmware-captures/fusion-centos77-jc.dmidecode.txt")
LSPCI_MODES = ("lspci", "lspci-v", "lspci-vv", "lspci-nnvvv", "lspci-n", "lspci-nn", "lspci-mm", "lspci-nnmm",
               "lspci-vmm", "lspci-nnmmv", "lspci-t", "lspci-tv")
NAMES_ONLY = {"lspci", "lspci-v", "lspci-vv", "lspci-mm", "lspci-vmm", "lspci-tv"}


def _read(name: str):
    return read_text((DATA / name).read_text(errors="replace"), name)


def _ids(facts):
    return {d.slot: (d.vendor, d.device) for d in facts.pci}


@pytest.mark.parametrize("vm", ["esxi65", "ws16"])
@pytest.mark.parametrize("mode", LSPCI_MODES)
def test_every_lspci_mode_reads_the_same_functions(vm: str, mode: str) -> None:
    reference = _read(f"{vm}.lspci-nnmmv.txt")
    facts = _read(f"{vm}.lspci-{mode[6:]}.txt" if mode != "lspci" else f"{vm}.lspci.txt")
    assert {d.slot for d in facts.pci} == {d.slot for d in reference.pci}
    got = {k: v for k, v in _ids(facts).items() if v[0] is not None}
    if mode == "lspci-t":
        assert not got and any("addresses only" in p for p in facts.problems)
        return
    want = {k: v for k, v in _ids(reference).items() if k in got}
    assert got == want and len(got) >= 8
    assert bool(facts.pci_inferred) == (mode in NAMES_ONLY), facts.pci_inferred      # inferred ids are said so
    assert not facts.read_pci() or all(d.vendor is None for d in facts.read_pci() if d.address in facts.pci_inferred)


def test_names_only_lspci_imports_like_the_numeric_one() -> None:
    plain = import_facts("t", _read("esxi65.lspci.txt"))
    numeric = import_facts("t", _read("esxi65.lspci-nn.txt"))
    assert plain.data["pci"] == numeric.data["pci"]
    assert [d["kind"] for d in plain.data["pci"]["devices"]] == ["pvscsi", "vmxnet3"]
    assert any("pci[0b:00.0] vendor device: inferred from a name" in line for line in plain.inferred)
    assert not any(line.startswith("pci[") for line in numeric.inferred)


@pytest.mark.parametrize("name,form,nic", [
    ("esxi65.lshw-businfo.txt", "lshw -businfo", ("ens192", None, "0b:00.0")),
    ("ws16.lshw-c-network-businfo.txt", "lshw -businfo", ("ens33", None, "02:01.0")),
    ("esxi65.lshw.txt", "lshw", ("ens192", "00:50:56:9a:60:e7", "0b:00.0")),
    ("ws16.lshw-c-network.txt", "lshw", ("ens33", "00:0c:29:13:56:1f", "02:01.0")),
    ("esxi65.ip-o-link.txt", "ip link", ("ens192", "00:50:56:9a:60:e7", "0b:00.0")),
    ("ws16.ip-a.txt", "ip link", ("ens33", "00:0c:29:13:56:1f", "02:01.0")),
    ("esxi65.sys-class-net.txt", "ls -l /sys/class/net", ("ens192", None, "0b:00.0")),
    ("ws16.sys-class-net.txt", "ls -l /sys/class/net", ("ens33", None, "02:01.0")),
    ("esxi65.dmesg.txt", "dmesg", ("ens192", None, "0b:00.0")),
    ("ws16.journalctl-k.txt", "dmesg", ("ens33", None, "02:01.0")),
])
def test_nic_forms(name: str, form: str, nic: tuple) -> None:
    facts = _read(name)
    assert [f for _, f in facts.sources] == [form] and not facts.problems
    assert [(n.name, n.mac, n.pci) for n in facts.nics] == [nic]          # lo and docker0 are not NICs


def test_lshw_and_dmesg_carry_ids_identity_and_cpu() -> None:
    lshw = _read("esxi65.lshw.txt")
    assert _ids(lshw)["0b:00.0"] == (0x15AD, 0x07B0) and lshw.dmi.first(1).fields["Serial Number"].startswith("VMware-")
    assert lshw.dmi.smbios_version == "2.4"
    dmesg = _read("esxi65.dmesg.txt")
    assert (dmesg.kernel.hypervisor, dmesg.kernel.tsc_khz) == ("VMware", 2399999)
    assert {d.slot: d.class_id for d in dmesg.pci} == {"00:0f.0": 0x0300, "03:00.0": 0x0107, "0b:00.0": 0x0200}
    profile = import_facts("t", dmesg).data
    assert profile["cpu"]["model_id"] == "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"
    assert profile["cpu"]["tsc_khz"] == 2399999


@pytest.mark.parametrize("name,product,firmware", [("esxi70.banner.txt", "VMware7,1", "efi"),
                                                   ("esxi80.banner.txt", "VMware20,1", "efi")])
def test_dmi_banner(name: str, product: str, firmware: str) -> None:
    facts = _read(name)
    assert facts.dmi.first(1).fields == {"Manufacturer": "VMware, Inc.", "Product Name": product}
    result = import_facts("t", facts)
    assert result.data["platform"]["firmware"] == firmware
    assert result.data["smbios"]["bios"]["vendor"] == "VMware, Inc."
    assert any(line.startswith("smbios.bios.vendor: inferred from the hardware version") for line in result.inferred)
    assert any(line.startswith("smbios.system.uuid_bios: defaulted") for line in result.inferred)


@pytest.mark.parametrize("name", ["fusion.dmidecode-t0123-spaces.txt", "fusion.dmidecode-q.txt"])
def test_pasted_dmidecode_reads_like_the_original(name: str) -> None:
    """Tabs turned to spaces (or dmidecode -q) used to parse to an empty identity: no VMware- serial,
    so the imported guest kept the hypervisor bit and TCG made every tool say qemu."""
    original = import_facts("t", read_text(SHARED_DMI.read_text(), "shared")).data["smbios"]
    pasted = import_facts("t", _read(name)).data["smbios"]
    assert pasted["system"] == original["system"] and pasted["bios"] == original["bios"]
    assert pasted["system"]["uuid_bios"] == "56 4d fd 28 89 33 f8 e2-64 74 01 59 92 3b 58 0e"


def test_partial_dmidecode_still_gives_a_vmware_serial_and_a_detected_vmware_guest(tmp_path: Path) -> None:
    from guestcompat.emulation.compiler import compile_profile

    text = SHARED_DMI.read_text()
    bios_only = text[:text.index("Handle 0x0001")]                    # dmidecode -t bios
    result = import_facts("t", read_text(bios_only, "t0.txt"))
    assert any(line.startswith("smbios.system.uuid_bios: defaulted") for line in result.inferred)
    compiled = compile_profile(result.profile)
    cpu = compiled.argv[compiled.argv.index("-cpu") + 1]
    assert "hypervisor=off" in cpu and "tcg-cpuid=off" in cpu
    assert any(a.startswith("qemu64-x86_64-cpu.model-id=Intel(R) Xeon") for a in compiled.argv)   # -global
    assert any(a.startswith("type=1,") and "serial=VMware-56 4d" in a for a in compiled.argv)


def test_a_redacted_serial_is_rebuilt_from_the_uuid() -> None:
    text = (DATA / "fusion.dmidecode-t-system.txt").read_text().replace(
        "VMware-56 4d fd 28 89 33 f8 e2-64 74 01 59 92 3b 58 0e", "XXXXXXXX")
    result = import_facts("t", read_text(text, "redacted.txt"))
    assert result.data["smbios"]["system"]["uuid_bios"] == "56 4d fd 28 89 33 f8 e2-64 74 01 59 92 3b 58 0e"
    assert "serial" not in result.data["smbios"]["system"]


def test_several_outputs_in_one_pasted_file() -> None:
    facts = _read("esxi65.ticket-paste.txt")         # markdown, prompts, a wrapped header, spaces for tabs
    assert [f for _, f in facts.sources] == ["lspci/-nn/-v/-vvv", "dmidecode (re-indented)", "ls -l /sys/class/net"]
    assert _ids(facts)["0b:00.0"] == (0x15AD, 0x07B0) and {d.slot: d.revision for d in facts.pci}["0b:00.0"] == 1
    assert facts.dmi.first(1).fields["UUID"] == "421e5b8f-9c3a-1d2e-7f41-3b2a6c5d4e3f"
    mail = _read("esxi67.mail-crlf.txt")              # CRLF, dmesg -T timestamps, ip -o link's backslashes
    assert [f for _, f in mail.sources] == ["dmesg", "ip link"]
    assert [(n.name, n.mac, n.pci) for n in mail.nics] == [("ens160", "00:50:56:b0:11:22", "03:00.0")]


def test_refusals_name_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"not a capture this tool reads .*Accepted forms: lspci, lshw -businfo"):
        read_text("Dear support, the VM is slow.\nRegards\n", "mail.txt")
    with pytest.raises(ProfileError, match="closest: lspci"):
        read_text("00:0f.0 something odd\n00:10.0 another\n", "odd.txt")
    cut = (DATA / "esxi65.lspci-nn.txt").read_text()[:-40]
    facts = read_text(cut, "cut.txt")
    assert any("truncated?" in p and "0b:00.0" in p for p in facts.problems), facts.problems
    qemu = "Handle 0x0100, DMI type 1, 27 bytes\nSystem Information\n\tManufacturer: QEMU\n\tProduct Name: Standard PC\n"
    assert any("a QEMU/KVM guest" in n and "not a VMware one" in n
               for n in import_facts("t", read_text(qemu, "kvm.txt")).notes)
    mixed = (DATA / "esxi65.lspci-nn.txt").read_text() + "\n$ dmidecode -t system\n" + qemu
    with pytest.raises(ProfileError, match="two VMs in one capture"):
        import_facts("t", read_text(mixed, "mixed.txt"))
    other = (DATA / "fusion.dmidecode-t-system.txt").read_text()
    twice = other + "\n$ dmidecode -t 1\n" + other.replace("28fd4d56", "11111111")
    with pytest.raises(ProfileError, match="two VMs in one capture"):
        read_text(twice, "two.txt")


SAMPLES = sorted(p.name for p in DATA.glob("*.txt"))


def _damage(text: str, data) -> str:
    lines = text.splitlines(keepends=True)
    how = data.draw(st.sampled_from(["wrap", "truncate", "junk", "crlf", "indent", "drop"]))
    if how == "wrap":
        width = data.draw(st.integers(20, 90))
        return "".join(ln[i:i + width] + ("\n" if i + width < len(ln) else "") for ln in lines
                       for i in range(0, max(len(ln), 1), width))
    if how == "truncate":
        return text[:data.draw(st.integers(0, len(text)))]
    if how == "junk":
        at = data.draw(st.integers(0, len(text)))
        return text[:at] + data.draw(st.text(max_size=80)) + text[at:]
    if how == "crlf":
        return text.replace("\n", "\r\n")
    if how == "indent":
        return "".join("    " + ln for ln in lines)
    keep = data.draw(st.lists(st.booleans(), min_size=len(lines), max_size=len(lines)))
    return "".join(ln for ln, k in zip(lines, keep) if k)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(SAMPLES), data=st.data())
def test_damaged_captures_never_traceback(name: str, data) -> None:
    text = _damage((DATA / name).read_text(errors="replace"), data)
    try:
        facts = read_text(text, name)
        import_facts(name, facts)
    except GuestcompatError:
        pass


def _terminal_wrap(text: str, width: int) -> str:
    """What copying from a terminal of ``width`` columns does: long lines cut at the width, mid-word."""
    out = []
    for line in text.splitlines():
        while len(line) > width:
            out.append(line[:width])
            line = line[width:]
        out.append(line)
    return "\n".join(out) + "\n"


def _mail_wrap(text: str, width: int) -> str:
    """What a mail client does: long lines broken at spaces (the space dropped)."""
    import textwrap

    return "\n".join("\n".join(textwrap.wrap(ln, width, break_long_words=False, break_on_hyphens=False))
                     if len(ln) > width else ln for ln in text.splitlines()) + "\n"


WRAPPABLE = sorted(p.name for p in DATA.glob("*.lspci*.txt")) + ["fusion.dmidecode-t0123-spaces.txt"]


@pytest.mark.parametrize("wrap", [lambda t: _terminal_wrap(t, 80), lambda t: _mail_wrap(t, 72)],
                         ids=["terminal-80", "mail-72"])
@pytest.mark.parametrize("name", WRAPPABLE)
def test_wrapped_lines_are_joined_back(name: str, wrap) -> None:
    def facts_of(f):
        return ({d.slot: (d.vendor, d.device, d.revision, d.class_id, d.subsystem_vendor, d.subsystem_device)
                 for d in f.pci}, f.dmi.structures[:4] if f.dmi else None)

    text = (DATA / name).read_text()
    assert facts_of(read_text(wrap(text), name)) == facts_of(read_text(text, name))


@pytest.mark.parametrize("name,device", [
    ("esxi65.ip-o-link.txt", {"kind": "vmxnet3", "address": "0b:00.0", "mac": "00:50:56:9a:60:e7"}),
    ("ws16.ip-a.txt", {"kind": "e1000", "address": "02:01.0", "mac": "00:0c:29:13:56:1f"}),
    ("esxi65.dmesg.txt", {"kind": "vmxnet3", "address": "0b:00.0"}),
])
def test_a_nic_named_without_a_pci_listing_is_placed_and_said_so(name: str, device: dict) -> None:
    result = import_facts("t", _read(name))
    placed = {d["address"]: d for d in result.data["pci"]["devices"]}
    assert {k: placed[device["address"]].get(k) for k in device} == device
    if name != "esxi65.dmesg.txt":      # dmesg lists the function's ids: read, not defaulted
        assert any(line.startswith(f"pci[{device['address']}] kind {device['kind']}: defaulted")
                   for line in result.inferred)


def test_import_capture_cli_reads_a_pasted_ticket(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "import", "capture",
                           str(DATA / "esxi65.ticket-paste.txt"), str(DATA / "esxi65.ip-o-link.txt"),
                           "--name", "imported/web01"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "GUESTCOMPAT_PROFILE_PATH": ""})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    toml = (tmp_path / "profiles" / "imported" / "web01.toml").read_text()
    assert 'kind = "pvscsi"' in toml and 'kind = "vmxnet3"' in toml and 'mac = "00:50:56:9a:60:e7"' in toml
    assert 'uuid_bios = "42 1e 5b 8f 9c 3a 1d 2e-7f 41 3b 2a 6c 5d 4e 3f"' in toml
    assert "compiles for x86_64/pc/tcg" in proc.stdout
    junk = tmp_path / "junk.txt"
    junk.write_text("see attached screenshot\n")
    proc = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "import", "capture", str(junk),
                           "--name", "imported/x"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2 and "not a capture this tool reads" in proc.stderr and "Traceback" not in proc.stderr
