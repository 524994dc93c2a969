"""Windows' PCI names (detection/windows/ids.py): ids lists, location and serial instance parts, parsing.

The expected strings are what real Windows VMs show (tests/data/windows/README.md); the properties
check the encoders against their parsers for any input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guestcompat.detection.windows import drivers, ids
from guestcompat.detection.windows.ids import PciIdentity
from guestcompat.errors import ProfileError

ROOT_PORT = PciIdentity(0x15AD, 0x07A0, 0x15AD, 0x07A0, 0x01, 0x060400)


def test_root_port_ids_equal_what_server_2016_lists():
    """FOREST's Win32_PnPEntity row of the root port at 00:15.0 (HardwareID and CompatibleID columns)."""
    assert ids.hardware_ids(ROOT_PORT, windows10=True) == (
        r"PCI\VEN_15AD&DEV_07A0&SUBSYS_07A015AD&REV_01", r"PCI\VEN_15AD&DEV_07A0&SUBSYS_07A015AD",
        r"PCI\VEN_15AD&DEV_07A0&CC_060400", r"PCI\VEN_15AD&DEV_07A0&CC_0604")
    assert ids.compatible_ids(ROOT_PORT, express_type=4) == (
        r"PCI\VEN_15AD&DEV_07A0&REV_01", r"PCI\VEN_15AD&DEV_07A0", r"PCI\VEN_15AD&CC_060400", r"PCI\VEN_15AD&CC_0604",
        r"PCI\VEN_15AD", r"PCI\CC_060400&DT_4", r"PCI\CC_060400", r"PCI\CC_0604&DT_4", r"PCI\CC_0604")


def test_before_windows_10_rev_and_bare_forms_are_hardware_ids():
    hw = ids.hardware_ids(ROOT_PORT, windows10=False)
    assert hw[2:4] == (r"PCI\VEN_15AD&DEV_07A0&REV_01", r"PCI\VEN_15AD&DEV_07A0")


def test_conventional_function_has_no_dt_forms():
    assert not any("&DT_" in i for i in ids.compatible_ids(ROOT_PORT))


@pytest.mark.parametrize("formula, mac, instance", [
    ("vmxnet3", "00:50:56:95:08:BB", "FF565000BB0895FE00"),     # ASR/InMage record: instance id and its MAC
    ("e1000e", "00:50:56:B4:41:AF", "005056FFFFB441AF00"),      # FOREST's e1000e (MAC = the DSN's bytes)
])
def test_serial_instance_from_mac_matches_real_vms(formula, mac, instance):
    assert ids.serial_instance(ids.dsn_from_mac(formula, mac)) == instance


def test_unknown_formula_and_bad_mac_are_refused():
    with pytest.raises(ValueError, match="no serial-number formula"):
        ids.dsn_from_mac("pvscsi", "00:50:56:00:00:01")
    with pytest.raises(ValueError, match="not a MAC"):
        ids.dsn_from_mac("vmxnet3", "00:50:56")


@given(st.lists(st.integers(0, 255), min_size=1, max_size=8))
def test_location_round_trips(chain):
    assert ids.parse_location(ids.location(tuple(chain))) == tuple(chain)


identities = st.builds(PciIdentity, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
                       st.integers(0, 0xFFFF), st.integers(0, 0xFF))


@given(identities, st.integers(3, 9), st.integers(0, 0xFFFFFFF), st.lists(st.integers(0, 255), min_size=1, max_size=6))
def test_location_instance_path_round_trips(identity, level, hash_, chain):
    text = f"{identity.device_id}\\{level:X}&{hash_:x}&0&{ids.location(tuple(chain))}"
    parsed = ids.parse_instance_path(text)
    assert (parsed.ids, parsed.form, parsed.chain, parsed.depth) == (identity, "location", tuple(chain), level)


@given(identities, st.integers(0, 2**64 - 1))
def test_serial_instance_path_round_trips(identity, serial):
    parsed = ids.parse_instance_path(f"{identity.device_id}\\{ids.serial_instance(serial)}")
    assert (parsed.ids, parsed.form, parsed.serial) == (identity, "serial", serial)


def test_doubled_backslashes_and_quotes_are_undone():
    parsed = ids.parse_instance_path(r'"PCI\\VEN_1000&DEV_0054&SUBSYS_197615AD&REV_01\\4&2732702B&0&00A8"')
    assert parsed.text == r"PCI\VEN_1000&DEV_0054&SUBSYS_197615AD&REV_01\4&2732702B&0&00A8"
    assert parsed.chain == (0x00, 0xA8) and parsed.prefix == "4&2732702B&0"


@pytest.mark.parametrize("text, message", [
    (r"USB\VID_0E0F&PID_0003\6&1", "not a PCI instance path"),
    (r"PCI\VEN_15AD&DEV_07B\FF565000BB0895FE00", "not a PCI device id"),
    (r"PCI\VEN_15AD&DEV_07B0&SUBSYS_07B015AD&REV_01\?", "neither a location"),
    ("PCI\\" + "A" * 300, "longer than any PCI instance path"),
])
def test_bad_instance_paths_name_what_is_wrong(text, message):
    with pytest.raises(ProfileError, match=message):
        ids.parse_instance_path(text, "line 3")


def test_driver_catalogue_loads_and_ranks_the_most_specific_id_first():
    v = drivers.catalogue().version("2016")
    lsi = PciIdentity(0x1000, 0x0054, 0x15AD, 0x1976, 0x01, 0x010000)
    found = drivers.match(ids.hardware_ids(lsi) + ids.compatible_ids(lsi), v)
    assert found.entry.service == "LSI_SAS" and found.matched_id == r"PCI\VEN_1000&DEV_0054"
    assert drivers.match(ids.hardware_ids(lsi), drivers.catalogue().version("2003")).entry is None


def test_unknown_windows_version_is_refused_with_the_known_ones():
    with pytest.raises(ProfileError, match="unknown Windows version 'windows-95'.*2019"):
        drivers.catalogue().version("windows-95")


def test_every_catalogue_entry_matches_on_an_id_windows_builds_and_says_its_source():
    """A match string no device could carry (a typo: VEN without DEV, lower-case CC) would never bind."""
    import re

    shape = re.compile(r"^PCI\\(?:VEN_[0-9A-F]{4}(?:&DEV_[0-9A-F]{4}(?:&SUBSYS_[0-9A-F]{8})?(?:&REV_[0-9A-F]{2})?)?"
                       r"(?:&CC_[0-9A-F]{4}(?:[0-9A-F]{2})?)?|CC_[0-9A-F]{4}(?:[0-9A-F]{2})?(?:&DT_[0-9A-F])?)$")
    for entry in drivers.catalogue().driver:
        assert entry.source.strip()
        for m in entry.match:
            assert shape.match(m), (entry.service, m)
    # and each match id is one ids.py builds for some device (so ranking can reach it)
    built = set(ids.hardware_ids(PciIdentity(0x1000, 0x0054, 0x15AD, 0x1976, 1, 0x010000), windows10=False)) | \
        set(ids.compatible_ids(PciIdentity(0x1000, 0x0054, 0x15AD, 0x1976, 1, 0x010000)))
    assert r"PCI\VEN_1000&DEV_0054" in built and r"PCI\CC_0100" in built


def test_a_profile_of_an_architecture_without_windows_is_refused_by_name():
    """The architecture strategy says whether Windows runs there (runs_windows), not an if on its name."""
    import pytest

    from guestcompat.detection.windows.sources import from_profile
    from guestcompat.errors import ProfileError
    from guestcompat.profiles.loader import load

    with pytest.raises(ProfileError, match=r"power/pseries-vscsi: a Windows view needs an x86 machine; this profile is ppc64"):
        from_profile(load("power/pseries-vscsi"))
