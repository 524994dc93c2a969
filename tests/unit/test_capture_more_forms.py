"""Capture forms and paste shapes of issue 24, on real public pastes (tests/data/captures/pub.*, sources in
that folder's README): hostnamectl, inxi, systemd device units, /dev/disk/by-path, lshw -short, dmidecode -s
pairs, an lspci -t tree pasted in markdown, a BusLogic kernel log without timestamps; the command as the
first line, prose around the output, a prompt running other commands first, quoted-printable mail,
redacted values and an arm64 guest."""

from __future__ import annotations

import quopri
import re
from pathlib import Path

import pytest

from guestcompat.errors import ProfileError
from guestcompat.profiles.importers.capture import import_facts
from guestcompat.profiles.importers.forms import read_text
from guestcompat.profiles.importers.redacted import is_redacted

DATA = Path(__file__).parent.parent / "data" / "captures"


def _read(name: str):
    return read_text((DATA / name).read_text(), name)


@pytest.mark.parametrize("name, date", [("pub.hostnamectl-ubuntu2404.txt", "11/12/2020"),
                                        ("pub.hostnamectl-ubuntu2404-ad.txt", "11/12/2020"),
                                        ("pub.hostnamectl-ol96-steps.txt", None)])
def test_hostnamectl_gives_the_identity_it_carries(name, date):
    facts = _read(name)
    assert [form for _, form in facts.sources] == ["hostnamectl"]
    assert facts.arch[0] == "x86-64"
    result = import_facts("t", facts)
    system, bios = result.data["smbios"]["system"], result.data["smbios"]["bios"]
    assert (system["manufacturer"], system["product"], bios["version"]) == ("VMware, Inc.", "VMware Virtual Platform",
                                                                            "6.00")
    assert bios.get("date") == date
    assert "pci" not in result.data or result.data["pci"]["devices"] == []   # no PCI facts in this form
    from guestcompat.harness.replay import source_fingerprint

    source = source_fingerprint(facts)              # replay scores systemd-detect-virt's answer hostnamectl shows
    assert source.tools.detect_virt == "vmware" and "systemd-detect-virt" in source.tools.runs


@pytest.mark.parametrize("name, bios_date, nic", [
    ("pub.inxi-Fzx-ubuntu2204.txt", "11/12/2020", None),
    ("pub.inxi-v5-ubuntu1604.txt", "07/02/2015", ("ens192", "0b:00.0", "00:50:56:09:f0:11")),
    ("pub.inxi-b-sl71.txt", "09/17/2015", None),
])
def test_inxi_machine_section_and_network_interfaces(name, bios_date, nic):
    facts = _read(name)
    assert [form for _, form in facts.sources] == ["inxi"]
    result = import_facts("t", facts)
    smbios = result.data["smbios"]
    assert smbios["system"]["manufacturer"] == "VMware, Inc." and smbios["bios"]["date"] == bios_date
    assert smbios["bios"]["vendor"] == "Phoenix Technologies LTD"
    assert any("inxi prints 'Phoenix'" in line for line in result.inferred)   # the full name is inferred
    if nic:
        assert [(n.name, n.pci, n.mac) for n in facts.nics] == [nic]
        assert {d["address"]: d["kind"] for d in result.data["pci"]["devices"]} == {"0b:00.0": "vmxnet3"}
    if "sl71" in name:   # the serial inxi -b shows is VMware's: the machine's uuid.bios comes back
        assert smbios["system"]["uuid_bios"] == "42 01 09 7b d7 cf ec cd-a6 9a 79 d9 35 f5 0c 95"


@pytest.mark.parametrize("name", ["pub.systemctl-devices-rocky9.txt", "pub.systemctl-fedora-session.txt"])
def test_systemd_device_units_name_nics_and_disks_at_their_addresses(name):
    facts = _read(name)
    assert [(n.name, n.pci) for n in facts.nics] == [("ens160", "03:00.0")]
    assert ("sr0", "00:07.1") in [(d.name, d.pci) for d in facts.disks]
    result = import_facts("t", facts)
    assert {d["address"]: d["kind"] for d in result.data["pci"]["devices"]} == {"03:00.0": "vmxnet3"}
    assert any(n.startswith("disk sr0 on 00:07.1") for n in result.notes)


@pytest.mark.parametrize("name, disk", [("pub.by-path-jmeter.txt", ("sda", "03:00.0", "scsi", "0:0:0:0")),
                                        ("pub.by-path-ll.txt", ("sda", "03:00.0", "scsi", "0:0:0:0"))])
def test_disk_by_path_tells_which_controller_and_target(name, disk):
    facts = _read(name)
    assert disk in [(d.name, d.pci, d.bus, d.target) for d in facts.disks]
    assert all(not d.name.endswith(("1", "2", "3")) or d.name.startswith("sr") for d in facts.disks)  # no partitions
    result = import_facts("t", facts)
    assert any(n.startswith("disk sda on 03:00.0 (scsi 0:0:0:0): its controller is not in the capture")
               for n in result.notes)


def test_by_path_and_an_lspci_listing_place_the_disk_on_its_controller():
    lspci = (DATA / "esxi65.lspci-nn.txt").read_text()
    facts = read_text(lspci + "\n$ ls -l /dev/disk/by-path\n" + (DATA / "pub.by-path-ll.txt").read_text()
                      .split("\n", 1)[1], "both.txt")
    result = import_facts("t", facts)
    controller = next(d["name"] for d in result.data["pci"]["devices"] if d["address"] == "03:00.0")
    assert result.data["disks"] == [{"name": "sda", "controller": controller, "unit": 0}]


@pytest.mark.parametrize("name", ["pub.lshw-short-vmxnet3.txt", "pub.lshw-short-snipped.txt"])
def test_lshw_short_paths_give_addresses_by_vmware_layout(name):
    facts = _read(name)
    assert [(n.name, n.pci) for n in facts.nics] == [("ens160", "03:00.0")]
    result = import_facts("t", facts)
    assert any("lshw path /0/100/15/0" in line for line in result.inferred)


@pytest.mark.parametrize("name, fields", [
    ("pub.dmidecode-s-ubuntu.txt", {"Manufacturer": "VMware, Inc.", "Product Name": "VMware Virtual Platform"}),
    ("pub.dmidecode-s-zetawiki.txt", {"Serial Number": "VMware-57 9d 13 6d f8 a0 24 7f-91 be ad 35 8b a0 2e a4"}),
    ("pub.dmidecode-s-vsphere.txt", {"Product Name": "VMware Virtual Platform"}),
])
def test_dmidecode_s_command_answer_pairs(name, fields):
    facts = _read(name)
    assert dict(facts.dmi.first(1).fields) == fields
    result = import_facts("t", facts)
    if "Serial Number" in fields:
        assert result.data["smbios"]["system"]["uuid_bios"] == "57 9d 13 6d f8 a0 24 7f-91 be ad 35 8b a0 2e a4"


def test_an_lspci_tree_pasted_in_markdown_with_backticks_and_backslashes():
    facts = _read("pub.lspci-t-markdown.txt")
    assert [form for _, form in facts.sources] == ["lspci -t/-tv"]
    result = import_facts("t", facts)
    assert {d["address"]: d["kind"] for d in result.data["pci"]["devices"]} == {"03:00.0": "pvscsi",
                                                                                 "0b:00.0": "vmxnet3"}


@pytest.mark.parametrize("name, device, nic", [
    ("pub.hwinfo-dell-forum.txt", ("03:00.0", 0x14E4, 0x170C, 0x1028, 0x01AF, 0x02, 0x02), ("eth0", "00:19:b9:6e:e2:1e")),
    ("pub.hwinfo-display-a770.txt", ("03:00.0", 0x8086, 0x56A0, 0x8086, 0x1020, 0x08, 0x03), None),
])
def test_hwinfo_pci_entries_carry_lspci_facts(name, device, nic):
    facts = _read(name)
    assert [form for _, form in facts.sources] == ["hwinfo"]
    by_address = {d.address: d for d in facts.pci}
    d = by_address[device[0]]
    assert (d.address, d.vendor, d.device, d.subsystem_vendor, d.subsystem_device, d.revision, d.class_id >> 8) == device
    assert [(n.name, n.mac) for n in facts.nics] == ([nic] if nic else [])
    notes = "\n".join(import_facts("t", facts).notes)   # a laptop: every function reported, none dropped silently
    assert f"{device[0]} {device[1]:04x}:{device[2]:04x}" in notes and "no device kind carries these ids" in notes


@pytest.mark.parametrize("name", ["pub.dmesg-buslogic-ws.txt", "pub.dmesg-buslogic-quoted.txt"])
def test_a_kernel_log_without_timestamps_buslogic_on_workstation(name):
    facts = _read(name)
    assert [form for _, form in facts.sources] == ["dmesg"]
    [adapter] = facts.pci
    assert (adapter.address, adapter.vendor, adapter.device) == ("00:10.0", 0x104B, 0x1040)
    assert facts.pci_inferred["00:10.0"] == ("vendor", "device", "class_id")   # from the model name: not scored
    assert facts.read_pci()[0].vendor is None


def test_the_command_as_first_line_and_prose_before_the_output():
    lspci = (DATA / "esxi65.lspci-nn.txt").read_text()
    facts = read_text("lspci -nn\n" + lspci, "bare.txt")
    assert facts.sources == (("bare.txt", "lspci/-nn/-v/-vvv"),) and len(facts.pci) > 10
    prose = read_text("Here is what hostnamectl says on the VM:\n" + (DATA / "pub.hostnamectl-ubuntu2404.txt")
                      .read_text().split("\n", 2)[2].replace("```", ""), "prose.txt")
    assert [f for _, f in prose.sources] == ["hostnamectl"]
    # a form that needs its text alone (uname -a is one line) is read once the sentences around it are dropped
    uname = read_text("The kernel, as asked:\nLinux vm 4.18.0 #1 SMP x86_64 x86_64 x86_64 GNU/Linux\n"
                      "Hope this helps.\nRegards, Ann\n", "mail.txt")
    assert [f for _, f in uname.sources] == ["uname -a"] and uname.arch[0] == "x86_64"
    assert any("line(s) of prose before or after the output skipped" in p for p in uname.problems)


def test_a_prompt_running_other_commands_first():
    facts = _read("pub.systemctl-fedora-session.txt")         # nano and chmod before systemctl
    assert [f for _, f in facts.sources] == ["systemctl device units"]
    root = read_text("root@vm:~# uname -a\nLinux vm 5.15.0 #1 SMP x86_64 GNU/Linux\nroot@vm:~# lspci -nn\n"
                     + (DATA / "esxi65.lspci-nn.txt").read_text(), "root.txt")
    assert [f for _, f in root.sources] == ["uname -a", "lspci/-nn/-v/-vvv"]


def test_quoted_printable_mail_is_undone():
    original = (DATA / "esxi65.lspci-nnmmv.txt").read_text()
    mail = quopri.encodestring(original.encode(), quotetabs=True).decode()   # a mail archive's =09, =20 …
    assert "=09" in mail and "=20" in mail
    wrapped = re.sub(r"([^\n]{60}[^=\n]{0,2})", "\\1=\n", mail)         # and soft line breaks
    for text in (mail, wrapped):
        facts = read_text(text, "mail.txt")
        assert {d.address for d in facts.pci} == {d.address for d in read_text(original, "o").pci}


@pytest.mark.parametrize("value, redacted", [
    ("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", True), ("****", True), ("<redacted>", True), ("[REDACTED]", True),
    ("<filter>", True), ("VMware-56 4d xx xx xx xx xx xx-xx xx xx xx xx xx xx xx", True), ("XXXXXXXX", True),
    ("VMware-56 4d fd 28 89 33 f8 e2-64 74 01 59 92 3b 58 0e", False), ("None", False), ("6.00", False),
    ("Not Specified", False), ("xx", False), ("440BX Desktop Reference Platform", False),
])
def test_redaction_markers(value, redacted):
    assert is_redacted(value) is redacted


def test_a_redacted_dmidecode_imports_and_names_the_redacted_fields():
    text = (DATA / "fusion.dmidecode-t-system.txt").read_text()
    text = re.sub(r"UUID: \S+", "UUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", text)
    text = text.replace("VMware-56 4d fd 28 89 33 f8 e2-64 74 01 59 92 3b 58 0e", "****")
    result = import_facts("t", read_text(text, "redacted.txt"))
    [note] = [n for n in result.notes if n.startswith("redacted in the capture")]
    assert "System Information UUID" in note and "System Information Serial Number" in note
    assert result.data["smbios"]["system"]["product"] == "VMware Virtual Platform"
    assert any(line.startswith("smbios.system.uuid_bios: defaulted") for line in result.inferred)


@pytest.mark.parametrize("text", [
    (DATA / "pub.hostnamectl-arm64-ubuntu2404.txt").read_text(),
    (DATA / "pub.hostnamectl-arm64-fedora36.txt").read_text(),
    "$ uname -a\nLinux ubuntu 5.15.0-56-generic #62-Ubuntu SMP Tue Nov 22 21:24:20 UTC 2022 aarch64 aarch64 aarch64 "
    "GNU/Linux\n",
    # with an x86-looking lspci listing beside it, the architecture still decides
    "$ uname -a\nLinux vm 6.1.0 #1 SMP aarch64 GNU/Linux\n$ lspci -nn\n" + (DATA / "esxi65.lspci-nn.txt").read_text(),
])
def test_an_arm64_guest_is_refused_with_what_it_is(text):
    with pytest.raises(ProfileError, match=r"arm64 guests are not supported \(yet\).*shows architecture"):
        import_facts("t", read_text(text, "arm.txt"))


def test_a_capture_file_is_bounded(tmp_path):
    from guestcompat.harness.replay import load_sources
    from guestcompat.profiles.importers.forms import MAX_CAPTURE_BYTES, read_files

    huge = tmp_path / "journal.txt"
    huge.write_bytes(b"pci 0000:00:00.0: [8086:7190] type 00 class 0x060000\n" * (MAX_CAPTURE_BYTES // 50 + 1))
    with pytest.raises(ProfileError, match="journal.txt: larger than 16 MiB: not one VM's capture"):
        read_files((huge,))
    with pytest.raises(ProfileError, match="larger than 16 MiB"):
        load_sources((huge,))
    with pytest.raises(ProfileError, match="65 capture files"):
        read_files(tuple(DATA / "pub.by-path-ll.txt" for _ in range(65)))


@pytest.mark.parametrize("text", ["a" * 300_000, "x -> " * 60_000, "`a`\\\n" * 20_000])
def test_sniffing_a_long_junk_capture_stays_linear(text):
    """The /sys/class/net sniffer's unanchored pattern took quadratic time on a long line (20 KB: 4 s)."""
    import time

    start = time.monotonic()
    with pytest.raises(ProfileError, match="not a capture this tool reads"):
        read_text(text, "junk.txt")
    assert time.monotonic() - start < 20


def test_redaction_check_is_linear_on_long_near_misses():
    """A nested-repeat regex took 59 s on 'xx' + 40 hex digits + '!'."""
    import time

    start = time.monotonic()
    assert not is_redacted("xx" + "a" * 40 + "!") and not is_redacted("xx" + "a" * 5000 + "!")
    assert time.monotonic() - start < 1
