"""Profile loading: inheritance, merging, and errors that name the file and key."""

from __future__ import annotations

import os
import tomllib
from unittest import mock

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from guestcompat.errors import ProfileError
from guestcompat.profiles.loader import list_profiles, load
from guestcompat.profiles.model import BIDI_CONTROLS


def test_bundled_esxi65_resolves_through_base():
    profile = load("vmware/esxi-6.5")
    assert profile.lineage == ("vmware/chipset", "vmware/base", "vmware/esxi-6.5")
    assert profile.smbios.system.manufacturer == "VMware, Inc."
    assert profile.platform.hardware_version == 13
    devices = {d.name: d for d in profile.pci.devices}
    assert devices["ethernet0"].address == "0b:00.0" and devices["ethernet0"].kind == "vmxnet3"
    assert devices["scsi0"].address == "03:00.0"
    assert not profile.abstract


def test_base_is_abstract_and_listed():
    names = [s.name for s in list_profiles()]
    assert "vmware/base" in names and "vmware/esxi-6.5" in names
    assert load("vmware/base").abstract


def test_child_overrides_named_entries_and_tables(profile_dir):
    profile_dir("t/parent", """
        [smbios.system]
        manufacturer = "A"
        product = "P"
        [[pci.devices]]
        name = "nic"
        kind = "vmxnet3"
        address = "00:10.0"
        [[pci.devices]]
        name = "svga"
        kind = "vmware-svga"
        address = "00:0f.0"
    """)
    profile_dir("t/child", """
        extends = "t/parent"
        [smbios.system]
        manufacturer = "B"
        [[pci.devices]]
        name = "nic"
        mac = "00:50:56:00:00:01"
        [[pci.devices]]
        name = "svga"
        remove = true
    """)
    profile = load("t/child")
    assert profile.smbios.system.manufacturer == "B" and profile.smbios.system.product == "P"
    assert [(d.name, d.address, d.mac) for d in profile.pci.devices] == [("nic", "00:10.0", "00:50:56:00:00:01")]


def test_cycle_is_reported_with_the_chain(profile_dir):
    profile_dir("t/a", 'extends = "t/b"\n')
    profile_dir("t/b", 'extends = "t/a"\n')
    with pytest.raises(ProfileError, match=r"inheritance cycle t/a -> t/b -> t/a"):
        load("t/a")


def test_unknown_key_names_file_and_path(profile_dir):
    path = profile_dir("t/bad", """
        [smbios.system]
        manufacturr = "typo"
    """)
    with pytest.raises(ProfileError) as err:
        load("t/bad")
    assert str(path) in str(err.value) and "smbios.system.manufacturr: unknown key" in str(err.value)


def test_wrong_type_in_inherited_entry_names_the_child_file(profile_dir):
    profile_dir("t/p", """
        [[pci.devices]]
        name = "nic"
        kind = "vmxnet3"
        address = "00:10.0"
    """)
    child = profile_dir("t/c", """
        extends = "t/p"
        [[pci.devices]]
        name = "nic"
        address = "00:10.z"
    """)
    with pytest.raises(ProfileError) as err:
        load("t/c")
    message = str(err.value)
    assert f"{child}: pci.devices[nic].address" in message and "not a PCI address" in message


@pytest.mark.parametrize("address,fragment", [
    ("0b:00.8", "function 8 is out of range"),
    ("100:00.0", "not a PCI address"),
    ("0b:20.0", "device 0x20 is out of range"),
    ("0001:0b:00.0", "only PCI domain 0000"),
])
def test_malformed_addresses(profile_dir, address, fragment):
    profile_dir("t/addr", f"""
        [[pci.devices]]
        name = "nic"
        kind = "vmxnet3"
        address = "{address}"
    """)
    with pytest.raises(ProfileError, match=fragment):
        load("t/addr")


def test_invalid_toml_names_the_file(profile_dir):
    path = profile_dir("t/syntax", "[smbios\n")
    with pytest.raises(ProfileError, match=f"{path}: invalid TOML"):
        load("t/syntax")


def test_missing_parent(profile_dir):
    path = profile_dir("t/orphan", 'extends = "t/nowhere"\n')
    with pytest.raises(ProfileError, match=rf"{path}: extends: no profile named 't/nowhere'"):
        load("t/orphan")


def test_newline_in_a_guest_string_is_rejected(profile_dir):
    profile_dir("t/nl", '[smbios.system]\nserial = "VMware-1\\n2"\n')
    with pytest.raises(ProfileError, match=r"smbios.system.serial: contains the control character"):
        load("t/nl")


def test_disk_on_unknown_controller(profile_dir):
    profile_dir("t/disk", """
        [[disks]]
        name = "d"
        controller = "nowhere"
    """)
    with pytest.raises(ProfileError, match="controller 'nowhere', which is not a device"):
        load("t/disk")


printable = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FFF,
                                           blacklist_categories=("Cs", "Cc"),
                                           blacklist_characters='"\\' + "".join(BIDI_CONTROLS)),
                    max_size=40)


@settings(max_examples=60, deadline=None)
@given(parent=printable, child=st.one_of(st.none(), printable), product=printable)
def test_merge_property_child_wins_parent_fills(tmp_path_factory, parent, child, product):
    directory = tmp_path_factory.mktemp("profiles")
    (directory / "t").mkdir()
    (directory / "t" / "p.toml").write_text(
        f'[smbios.system]\nmanufacturer = "{parent}"\nproduct = "{product}"\n')
    child_line = f'manufacturer = "{child}"\n' if child is not None else ""
    (directory / "t" / "c.toml").write_text(f'extends = "t/p"\n[smbios.system]\n{child_line}')
    with mock.patch.dict(os.environ, {"GUESTCOMPAT_PROFILE_PATH": str(directory)}):  # restored after
        profile = load("t/c")
    assert profile.smbios.system.manufacturer == (child if child is not None else parent)
    assert profile.smbios.system.product == product


# Keys and strings TOML can carry, plus the loader's own section names: arbitrary Unicode made most
# examples unparsable TOML, which `assume` then discarded until Hypothesis's health check failed.
toml_key = st.one_of(st.sampled_from(["extends", "description", "platform", "smbios", "pci", "devices", "system",
                                      "arch", "firmware", "backdoor", "enabled", "kind", "address", "name"]),
                     st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8))
toml_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, blacklist_characters='"\\'),
                    max_size=10)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(toml_key, st.recursive(
    st.one_of(st.integers(), toml_text, st.booleans()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(toml_key, inner, max_size=3),
    max_leaves=8), max_size=5))
def test_arbitrary_tables_never_crash_the_loader(tmp_path_factory, data):
    """Whatever TOML a user writes, the loader answers with a profile or a ProfileError."""
    directory = tmp_path_factory.mktemp("fuzz")
    path = directory / "f.toml"
    path.write_text(_to_toml(data))
    assume(_parses(path.read_text()))  # the TOML parser's own refusals are not the loader's business
    with mock.patch.dict(os.environ, {"GUESTCOMPAT_PROFILE_PATH": str(directory)}):  # restored after
        try:
            load("f")
        except ProfileError:
            pass


def _parses(text: str) -> bool:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    return True


def _to_toml(data: dict) -> str:
    import json
    lines = []
    for key, value in data.items():
        lines.append(f"{json.dumps(key)} = {_value(value)}")
    return "\n".join(lines) + "\n"


def _value(value) -> str:
    import json
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_value(v)}" for k, v in value.items()) + "}"


def test_vio_devices_merge_by_name(profile_dir):
    """vio.devices is a named list like pci.devices: a child changes one entry and removes another."""
    profile_dir("t/lpar", """
        extends = "power/pseries-vscsi"
        [[vio.devices]]
        name = "vscsi0"
        reg = 0x71000030
        [[vio.devices]]
        name = "vlan0"
        remove = true
    """)
    from guestcompat.profiles.loader import load as load_profile
    profile = load_profile("t/lpar")
    regs = {d.name: d.reg for d in profile.vio.devices}
    assert regs == {"vty0": 0x71000000, "nvram0": 0x71000001, "vscsi0": 0x71000030}
    assert profile.devicetree.host_model == "IBM,9009-22A"


def test_load_mapping_resolves_like_a_file_without_touching_the_environment(monkeypatch):
    import os

    from guestcompat.profiles.loader import load_mapping

    monkeypatch.delenv("GUESTCOMPAT_PROFILE_PATH", raising=False)
    before = dict(os.environ)
    data = {"extends": "vmware/esxi-6.5", "description": "mapped",
            "pci": {"devices": [{"name": "ethernet0", "mac": "00:50:56:00:00:01"}]}}
    profile = load_mapping(data, "imported/mapped")
    assert dict(os.environ) == before
    assert profile.name == "imported/mapped" and profile.lineage[-2:] == ("vmware/esxi-6.5", "imported/mapped")
    devices = {d.name: d for d in profile.pci.devices}
    assert devices["ethernet0"].mac == "00:50:56:00:00:01" and devices["ethernet0"].kind == "vmxnet3"
    assert data["extends"] == "vmware/esxi-6.5"  # the caller's data is not consumed


def test_load_mapping_errors_name_the_origin_and_key():
    from guestcompat.profiles.loader import load_mapping

    with pytest.raises(ProfileError, match=r"^web01\.vmx: platform\.colour: unknown key"):
        load_mapping({"extends": "vmware/base", "platform": {"colour": "blue"}}, "imported/web01", origin="web01.vmx")
    with pytest.raises(ProfileError, match=r"^<imported/x>: extends: no profile named 'vmware/nope'"):
        load_mapping({"extends": "vmware/nope"}, "imported/x")
