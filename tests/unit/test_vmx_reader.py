"""The .vmx reader (profiles/importers/vmx_text.py) and VMware's device limits (vmx_limits.py).

Each case is a line real VMs carry (issue 24 lists the four that used to refuse whole VMs)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from guestcompat.errors import ProfileError
from guestcompat.profiles.importers.vmx import import_vmx
from guestcompat.profiles.importers.vmx_limits import check_device_limits
from guestcompat.profiles.importers.vmx_text import MAX_BYTES, MAX_LINES, read_vmx_file, read_vmx_text

CORPUS = Path(__file__).parent.parent / "data" / "vmx-corpus"
HEAD = 'config.version = "8"\nvirtualHW.version = "14"\n'


def test_keys_vmware_accepts_are_read_not_refused():
    text = HEAD + ('board-id.reflectHost = "TRUE"\n'          # hyphen (macOS guests on Workstation)
                   'pciPassthru*.present = "False"\n'          # wildcard (a hardening guide's line)
                   'scsi0:0.virtualSSD = 1\n'                 # unquoted value
                   'guestinfo.[vendor] = "x"\n'               # brackets
                   'guestinfo.größe = "4"\n')                 # non-ASCII key
    read = read_vmx_text(text.encode("utf-8"), "odd.vmx")
    assert read.values["board-id.reflecthost"] == "TRUE"
    assert read.values["pcipassthru*.present"] == "False"
    assert read.values["scsi0:0.virtualssd"] == "1"
    assert read.values["guestinfo.[vendor]"] == "x"
    assert read.values["guestinfo.größe"] == "4"
    assert read.problems == ()


def test_a_line_that_is_no_setting_is_reported_and_skipped_never_refused():
    # the ESXi template of issue 24's corpus carries a path fragment on a line of its own
    text = HEAD + 'sched.swap.derivedName = "/vmfs/volumes/x/vm.vswp"\nDebian13-Template-1625969d.vswp"\n' \
                  'memSize = "2048"\n'
    read = read_vmx_text(text, "t.vmx")
    assert read.values["memsize"] == "2048"
    assert read.problems == ("t.vmx: line 4 is not a setting (key = \"value\"), skipped: "
                             "'Debian13-Template-1625969d.vswp\"'",)
    result = import_vmx(text, "imported/t", "t.vmx")
    assert result.profile.platform.memory_mb == 2048
    assert any("line 4 is not a setting" in n for n in result.notes)


@pytest.mark.parametrize("encoding, display", [
    ("windows-1252", "Büro-Server ÄÖÜ"), ("windows-1251", "Сервер"), ("Shift_JIS", "仮想マシン"),
    ("GBK", "虚拟机"), ("CP949", "가상 머신"), ("Big5", "虛擬機"), ("windows-1250", "Počítač"),
])
def test_the_legacy_encodings_vmware_writes_are_honoured(encoding, display):
    data = f'.encoding = "{encoding}"\n{HEAD}displayName = "{display}"\n'.encode(encoding)
    read = read_vmx_text(data, "enc.vmx")
    assert read.values["displayname"] == display and read.problems == ()
    result = import_vmx(data, "imported/enc", "enc.vmx")
    assert display in result.data["description"]


def test_an_undecodable_byte_is_reported_and_the_value_kept_up_to_it():
    # a Shift_JIS host path cut inside a double-byte character (issue 24)
    path = "D:\\仮想\\disk.vmdk".encode("shift_jis")
    data = b'.encoding = "Shift_JIS"\n' + HEAD.encode() + b'annotation = "' + path[:5] + b'\xff\xfe"\nmemSize = "1024"\n'
    read = read_vmx_text(data, "cut.vmx")
    assert read.values["annotation"] == "D:\\仮"
    assert read.values["memsize"] == "1024"
    [problem] = read.problems
    assert problem.startswith("cut.vmx: line 4: byte 0xff at column 20 does not decode as shift_jis")


def test_an_unknown_encoding_name_is_reported_and_utf8_used():
    read = read_vmx_text(b'.encoding = "klingon-8"\n' + HEAD.encode() + 'displayName = "é"\n'.encode(), "k.vmx")
    assert read.values["displayname"] == "é"
    assert "'klingon-8' is not an encoding this reader knows" in read.problems[0]


def test_duplicates_last_wins_and_is_reported():
    read = read_vmx_text(HEAD + 'memSize = "1024"\nMEMSIZE = "2048"\n', "d.vmx")
    assert read.values["memsize"] == "2048"
    assert read.problems == ("d.vmx: line 4: MEMSIZE is set again (first at line 3): the last value wins, as in VMware",)


def test_comments_crlf_bom_and_vmware_escapes():
    data = ("\ufeff#!/usr/bin/vmware\r\n" + HEAD.replace("\n", "\r\n") +
            '# a comment\r\n  displayName = "a |22quoted|22 name |7C x" # trailing comment\r\n').encode("utf-8")
    read = read_vmx_text(data, "c.vmx")
    assert read.values["displayname"] == 'a "quoted" name | x'
    assert read.values["virtualhw.version"] == "14" and read.problems == ()


def test_file_size_and_line_count_are_bounded(tmp_path):
    with pytest.raises(ProfileError, match="larger than any VMware descriptor"):
        read_vmx_text(b"#" * (MAX_BYTES + 1), "big.vmx")
    with pytest.raises(ProfileError, match=f"more than a VMware descriptor holds \\(at most {MAX_LINES}\\)"):
        read_vmx_text("\n" * MAX_LINES, "long.vmx")
    big = tmp_path / "big.vmx"
    big.write_bytes(b"#" * (MAX_BYTES + 10))
    with pytest.raises(ProfileError, match="larger than any VMware descriptor"):
        read_vmx_file(big)


def test_half_a_million_nics_is_refused_quickly():
    text = HEAD + "".join(f'ethernet{i}.present = "TRUE"\n' for i in range(500_000))
    start = time.monotonic()
    with pytest.raises(ProfileError, match="many.vmx: 15888936 bytes: larger than any VMware descriptor"):
        import_vmx(text, "imported/many", "many.vmx")
    # within the size bound, the device limit refuses the eleventh NIC before anything is built
    with pytest.raises(ProfileError, match="ethernet1\\d+.present: VMware allows at most 10 virtual NICs"):
        import_vmx(HEAD + "".join(f'ethernet{i}.present = "TRUE"\n' for i in range(20_000)), "imported/m", "m.vmx")
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("key, message", [
    ("ethernet10.present", "VMware allows at most 10 virtual NICs"),
    ("scsi4.present", "at most 4 SCSI adapters"),
    ("sata0:30.present", "sata devices have units 0-29"),
    ("nvme4.present", "at most 4 NVMe controllers"),
    ("ide2:0.present", "at most 2 IDE channels"),
    ("ide0:2.present", "ide devices have units 0-1"),
    ("serial32.present", "at most 32 serial ports"),
    ("floppy2.present", "at most 2 floppy drives"),
    ("scsi0:65.present", "scsi devices have units 0-64"),
    ("ethernet99999999999999.present", "at most 10 virtual NICs"),
])
def test_more_devices_than_vmware_allows_is_a_clear_error(key, message):
    with pytest.raises(ProfileError, match=message):
        import_vmx(HEAD + f'{key} = "TRUE"\n', "imported/x", "x.vmx")


def test_devices_at_vmware_limits_pass_and_absent_ones_are_not_counted():
    settings = {f"ethernet{i}.present": "TRUE" for i in range(10)}
    settings |= {f"sata3:{u}.present": "TRUE" for u in range(30)} | {"ethernet12.present": "FALSE"}
    check_device_limits(settings, "ok.vmx")   # no exception


def test_corpus_files_read_with_problems_only_where_the_file_is_odd():
    """Every real descriptor of the corpus reads; the only odd line is the ws15 macOS VM's none."""
    for path in sorted(CORPUS.glob("*.vmx")):
        read = read_vmx_text(path.read_bytes(), path.name)
        assert "virtualhw.version" in read.values, path.name
        assert read.problems == (), (path.name, read.problems)


@pytest.mark.parametrize("line", ["a" + " " * 2_000_000 + "b", "k = x" + " " * 2_000_000 + "y", "k = x" + " #" * 900_000])
def test_long_lines_read_in_linear_time(line):
    """A lazy regex over a long run of blanks took quadratic time (a 200 KB line: 86 s)."""
    start = time.monotonic()
    read = read_vmx_text('virtualHW.version = "4"\n' + line + "\n", "long.vmx")
    assert time.monotonic() - start < 10 and "virtualhw.version" in read.values
