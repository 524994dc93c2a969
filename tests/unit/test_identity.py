"""VMware's serial/UUID rule (profiles/identity.py), checked against the captures' pairs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guestcompat.errors import ProfileError
from guestcompat.profiles import identity
from guestcompat.profiles.loader import load

# Pairs quoted in vmware-ground-truth.md §4 from real guests (serial -> what dmidecode displayed).
JC_FUSION = "56 4d fd 28 89 33 f8 e2-64 74 01 59 92 3b 58 0e"   # BIOS 2018, SMBIOS 2.7


def test_serial_is_the_bytes_in_order():
    raw = identity.parse_uuid_bios(JC_FUSION)
    assert identity.vmware_serial(raw) == "VMware-56 4d fd 28 89 33 f8 e2-64 74 01 59 92 3b 58 0e"


def test_bios_smbios_27_shows_the_first_three_fields_swapped():
    raw = identity.parse_uuid_bios(JC_FUSION)
    assert identity.displayed_uuid(raw, firmware="bios", smbios_version="2.7") == \
        "28fd4d56-3389-e2f8-6474-0159923b580e"


def test_bios_smbios_24_and_efi_show_serial_order():
    raw = identity.parse_uuid_bios("42 17 4c 3e ec 05 e3 23-00 11 22 33 44 55 66 77")
    assert identity.displayed_uuid(raw, firmware="bios", smbios_version="2.4") == "42174c3e-ec05-e323-0011-223344556677"
    assert identity.displayed_uuid(raw, firmware="efi", smbios_version="2.7") == "42174c3e-ec05-e323-0011-223344556677"


@given(st.binary(min_size=16, max_size=16))
def test_serial_round_trips(raw):
    serial = identity.vmware_serial(raw)
    assert identity.parse_uuid_bios(serial.removeprefix("VMware-")) == raw


def test_bundled_profiles_derive_consistent_identity():
    smbios = identity.effective_smbios(load("vmware/workstation-17"))
    assert smbios.system.serial == "VMware-56 4d fd 28 89 33 f8 e2-64 74 01 59 92 3b 58 0e"
    assert smbios.system.uuid == "28fd4d56-3389-e2f8-6474-0159923b580e"
    smbios = identity.effective_smbios(load("vmware/esxi-6.5"))
    assert smbios.system.serial == "VMware-42 1e 5b 8f 9c 3a 1d 2e-7f 41 3b 2a 6c 5d 4e 3f"
    assert smbios.system.uuid == "421e5b8f-9c3a-1d2e-7f41-3b2a6c5d4e3f"


def test_malformed_uuid_bios_names_the_key(profile_dir):
    profile_dir("mine", """
        extends = "vmware/esxi-6.5"
        [smbios.system]
        uuid_bios = "42 1e 5b"
    """)
    with pytest.raises(ProfileError, match=r"smbios\.system\.uuid_bios.*not a VMware uuid.bios"):
        load("mine")
