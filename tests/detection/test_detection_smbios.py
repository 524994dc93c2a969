"""SMBIOS decoding, checked against dmidecode (the reference detectors use)."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detection_support import compare_with_dmidecode, dmidecode_of, vmware_bios_table
from guestcompat.detection import smbios as S
from guestcompat.errors import ProbeError

# --------------------------------------------------------------------------

def test_vmware_capture_values(tmp_path):
    """The values of the Fusion capture (shared/vmware-captures) decode as dmidecode printed them."""
    table = vmware_bios_table()
    view = S.decode(table, S.encode_entry_point_32(len(table), 6, minor=7)).view()
    assert view.version == "2.7" and view.entry_point == "_SM_" and view.entry_point_checksum_ok
    assert view.bios.vendor == "Phoenix Technologies LTD" and view.bios.version == "6.00"
    assert view.bios.address == 0xEA490 and view.bios.runtime_size == 88944
    assert view.bios.rom_size == 64 * 1024 and view.bios.bios_revision == "4.6"
    assert view.bios.firmware_revision == "0.0"
    assert view.system.manufacturer == "VMware, Inc."
    assert view.system.uuid == "28fd4d56-3389-e2f8-6474-0159923b580e"   # as in the capture (2.7)
    assert view.system.wake_up_type == "Power Switch" and view.system.family is None
    assert view.baseboard.product_name == "440BX Desktop Reference Platform"
    assert view.baseboard.board_type == "Unknown"
    assert (view.chassis.manufacturer, view.chassis.type, view.chassis.oem_information) == \
        ("No Enclosure", "Other", 0x1234)
    assert view.oem_strings == ("[MS_VM_CERT/SHA1/27d66596a61c48dd3dc7216fd715126e33f59ae7]",
                                "Welcome to the Virtual Machine")
    assert [s.type for s in view.structures] == [0, 1, 2, 3, 11, 127]


def test_uuid_byte_order_follows_version():
    raw = bytes.fromhex("564d71d16570000000000000000000aa")
    assert S.format_uuid(raw, (2, 4)) == "564d71d1-6570-0000-0000-0000000000aa"
    assert S.format_uuid(raw, (2, 6)) == "d1714d56-7065-0000-0000-0000000000aa"
    assert S.format_uuid(b"\xff" * 16, (2, 8)) == "Not Present"
    assert S.format_uuid(b"\0" * 16, (2, 8)) == "Not Settable"


@pytest.mark.parametrize("ep_kind", ["2.4", "2.7", "3.0"])
def test_vmware_table_matches_dmidecode(tmp_path, ep_kind):
    table = vmware_bios_table()
    if ep_kind == "3.0":
        ep = S.encode_entry_point_64(len(table))
    else:
        ep = S.encode_entry_point_32(len(table), 6, minor=int(ep_kind[-1]))
    view = S.decode(table, ep).view()
    assert compare_with_dmidecode(view, dmidecode_of(table, ep, tmp_path)) >= 30


smbios_strings = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=30) \
    .filter(lambda s: s.strip() == s and s)
opt_string = st.none() | smbios_strings


@st.composite
def random_tables(draw):
    strings: list[str] = []

    def idx(value):
        if value is None:
            return 0
        strings.append(value)
        return len(strings)

    out = b""
    # type 1, varying length (8, 0x19, 0x1B)
    strings = []
    fields = bytes([idx(draw(opt_string)) for _ in range(4)])
    length = draw(st.sampled_from([0x08, 0x19, 0x1B]))
    if length >= 0x19:
        fields += draw(st.binary(min_size=16, max_size=16)) + bytes([draw(st.integers(0, 9))])
    if length >= 0x1B:
        fields += bytes([idx(draw(opt_string)), idx(draw(opt_string))])
    out += S.encode_structure(1, 0x100, fields, tuple(strings))
    # type 2
    strings = []
    fields = bytes([idx(draw(opt_string)) for _ in range(5)]) + bytes([draw(st.integers(0, 31))])
    fields += bytes([idx(draw(opt_string))]) + struct.pack("<HB", draw(st.integers(0, 0xFFFF)),
                                                            draw(st.integers(1, 14))) + b"\0"
    out += S.encode_structure(2, 0x200, fields, tuple(strings))
    # type 3 with SKU after contained elements
    strings = []
    n, m = draw(st.integers(0, 2)), 3
    fields = bytes([idx(draw(opt_string)), draw(st.integers(1, 36)) | draw(st.sampled_from([0, 0x80]))])
    fields += bytes([idx(draw(opt_string)) for _ in range(3)])
    fields += bytes(draw(st.integers(1, 6)) for _ in range(3)) + bytes([draw(st.integers(1, 5))])
    fields += struct.pack("<IBBBB", draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 4)),
                          draw(st.integers(0, 3)), n, m)
    fields += bytes(n * m) + bytes([idx(draw(opt_string))])
    out += S.encode_structure(3, 0x300, fields, tuple(strings))
    # type 11
    oem = draw(st.lists(smbios_strings, max_size=4))
    out += S.encode_structure(11, 0x400, bytes([len(oem)]), tuple(oem))
    out += S.encode_structure(127, 0x500, b"")
    return out


@settings(max_examples=40, deadline=None)
@given(random_tables(), st.sampled_from([(2, 4), (2, 8), (3, 2)]))
def test_random_tables_match_dmidecode(table, version):
    if version[0] == 3:
        ep = S.encode_entry_point_64(len(table), major=3, minor=version[1])
    else:
        ep = S.encode_entry_point_32(len(table), 5, major=version[0], minor=version[1])
    view = S.decode(table, ep).view()
    with tempfile.TemporaryDirectory() as tmp:
        assert compare_with_dmidecode(view, dmidecode_of(table, ep, Path(tmp))) > 10


def test_entry_points():
    ep32 = S.decode_entry_point(S.encode_entry_point_32(100, 3, minor=8))
    assert (ep32.anchor, ep32.version_string, ep32.table_length, ep32.structure_count, ep32.checksum_ok) == \
        ("_SM_", "2.8", 100, 3, True)
    bad = bytearray(S.encode_entry_point_32(100, 3))
    bad[0x16] ^= 1
    assert not S.decode_entry_point(bytes(bad)).checksum_ok
    ep64 = S.decode_entry_point(S.encode_entry_point_64(4096, major=3, minor=3, docrev=1))
    assert (ep64.anchor, ep64.version_string, ep64.structure_count, ep64.checksum_ok) == \
        ("_SM3_", "3.3.1", None, True)
    fixed = S.decode_entry_point(S.encode_entry_point_32(10, 1, major=2, minor=0x33))
    assert fixed.version == (2, 6, 0)
    with pytest.raises(ProbeError, match="no known anchor"):
        S.decode_entry_point(b"garbage" * 5)
    with pytest.raises(ProbeError, match="truncated"):
        S.decode_entry_point(S.encode_entry_point_32(1, 1)[:20])


@pytest.mark.parametrize("ep_kind", ["32", "64"])
def test_truncated_table_is_an_error_at_every_cut(ep_kind):
    table = vmware_bios_table()
    ep = S.encode_entry_point_32(len(table), 6) if ep_kind == "32" else S.encode_entry_point_64(len(table))
    full = S.decode_table(table)
    ends = [s.offset for s in full[1:]] + [len(table)]
    for cut in range(len(table)):
        with pytest.raises(ProbeError, match="SMBIOS"):
            S.decode(table[:cut], ep)
        # Without an entry point only a cut between structures decodes, to the prefix.
        try:
            got = S.decode_table(table[:cut])
        except ProbeError:
            assert cut not in ends
            continue
        assert got == tuple(s for s, end in zip(full, ends) if end <= cut)
        assert cut - (ends[len(got) - 1] if got else 0) < 4


@given(st.binary(max_size=400))
def test_garbage_never_crashes(blob):
    try:
        table = S.decode(blob)
        table.view()
    except ProbeError:
        pass


def test_bad_string_index_and_short_structures():
    t1 = S.encode_structure(1, 1, bytes([1, 9, 0, 0]), ("only",))
    view = S.decode(t1 + S.encode_structure(127, 2, b"")).view()
    assert view.system.manufacturer == "only" and view.system.product_name == "<BAD INDEX>"
    assert view.system.uuid is None and view.system.wake_up_type is None
    with pytest.raises(ProbeError, match="length 2 < 4"):
        S.decode_table(b"\x01\x02\x00\x00\x00\x00")
