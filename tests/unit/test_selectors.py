"""Typed selectors (detection/selectors.py): one spelling, one parser, and the SMBIOS key table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guestcompat.detection import selectors as sel
from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.detection.smbios_fields import BY_SECTION, SECTIONS, SYSFS_TO_DMIDECODE
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.libvirt_xml import SYSINFO
from guestcompat.emulation.target import Target
from guestcompat.errors import SelectorError
from guestcompat.harness.observe import observe
from guestcompat.profiles.loader import list_profiles, load

HEX = "0123456789abcdef"
pci_address = st.builds(lambda b, d, f: f"{b:02x}:{d:02x}.{f}", st.integers(0, 255), st.integers(0, 31),
                        st.integers(0, 7))
vio_controller = st.text(HEX, min_size=1, max_size=8).map(lambda reg: f"vio:{reg}")
controller = st.one_of(pci_address, vio_controller)
unit = st.integers(0, 10_000)
word = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)


def _smbios() -> st.SearchStrategy[sel.Smbios]:
    nested = [(s.section, f.field) for s in SECTIONS for f in s.fields if f.sysfs is None]
    return st.one_of(st.sampled_from(sel.SMBIOS_TOP).map(lambda f: sel.Smbios(None, f)),
                     st.sampled_from(nested).map(lambda sf: sel.Smbios(*sf)))


SELECTORS = st.one_of(
    st.builds(sel.Pci, pci_address, st.sampled_from(sel.PCI_FIELDS)),
    st.builds(sel.NetName, pci_address),
    st.builds(sel.Disk, controller, unit, st.sampled_from(sel.DISK_FIELDS)),
    st.builds(sel.DiskRate, controller, unit, word),
    st.builds(sel.Vdevice, st.from_regex(r"[a-z][a-z-]{0,8}@[0-9a-f]{1,8}", fullmatch=True),
              st.sampled_from(sel.VDEVICE_FIELDS)),
    st.builds(sel.DeviceTreeRoot, st.from_regex(r"[a-z][a-z0-9,-]{0,12}", fullmatch=True)),
    st.builds(sel.Dmi, st.sampled_from(sel.DMI_FILES)),
    _smbios(),
    st.builds(sel.Cpuid, st.sampled_from(sel.CPUID_FIELDS)),
    st.builds(sel.Kernel, st.sampled_from(sel.KERNEL_FIELDS)),
    st.builds(sel.Backdoor, st.sampled_from(sel.BACKDOOR_FIELDS)),
    st.builds(sel.Tool, st.sampled_from(sel.TOOLS)),
)


@given(SELECTORS)
def test_parse_inverts_str(selector):
    assert sel.parse(str(selector)) == selector


def test_spellings_are_the_wire_format():
    assert str(sel.Pci("03:00.0", "vendor")) == "pci[03:00.0].vendor"
    assert str(sel.Disk("vio:71000003", 0, "model")) == "disk[vio:71000003:0].model"
    assert str(sel.DiskRate("03:00.0", 1, "bps_read")) == "disk[03:00.0:1].rate.bps_read"
    assert str(sel.Smbios("processor", "socket")) == "smbios.processor.socket"
    assert str(sel.Smbios(None, "oem_strings")) == "smbios.oem_strings"
    assert str(sel.Tool("virt_what")) == "tools.virt_what"
    assert sel.parse("disk[vio:71000003:0].model").vio == "71000003"
    assert sel.parse("disk[03:00.0:0].model").vio is None


@pytest.mark.parametrize(("text", "names"), [
    ("pci[03:00.0", "unknown selector family"),
    ("pci[3:0.0].vendor", "'3:0.0' is not a bb:dd.f address"),
    ("pci[03:00.0].colour", "field 'colour' is not one of"),
    ("disk[03:00.0].model", "is not <controller>:<unit>"),
    ("disk[sata:1:0].model", "neither a bb:dd.f address nor vio:<reg>"),
    ("net[0b:00.0].mac", "field 'mac' is not name"),
    ("smbios.system.manufacturer", "its selector is dmi.sys_vendor"),
    ("dmi.nonsense", "file 'nonsense' is not one of"),
    ("devicetree.cpus.x", "only devicetree.root.<prop> exists"),
    ("cpuid", "expected <family>.<field>"),
    ("firmware.version", "unknown selector family 'firmware'"),
])
def test_malformed_selectors_are_named(text, names):
    with pytest.raises(SelectorError) as error:
        sel.parse(text)
    assert str(error.value).startswith(f"malformed selector {text!r}: ")
    assert names in str(error.value)


def test_observe_refuses_a_malformed_selector():
    with pytest.raises(SelectorError, match="malformed selector 'pci.vendor'"):
        observe(Fingerprint.from_document({}), "pci.vendor")


CASES = [(s.name, t) for s in list_profiles() if not load(s.name).abstract
         for t in (Target("x86_64", "pc", "tcg"), Target("ppc64", "pseries", "tcg"))
         if (load(s.name).platform.arch or "x86_64") == t.arch]


@pytest.mark.parametrize(("name", "target"), CASES, ids=[f"{n}@{t}" for n, t in CASES])
def test_every_compiled_selector_is_typed(name, target):
    """The compiler's literal selectors (``tools.virt_what``) are spelled as the types spell them."""
    for expectation in compile_profile(load(name), target).expectations:
        assert str(sel.parse(expectation.selector)) == expectation.selector


def test_smbios_table_feeds_selectors_libvirt_and_models():
    assert sel.smbios_selector("system", "manufacturer") == sel.Dmi("sys_vendor")
    assert sel.smbios_selector("bios", "release") == sel.Smbios("bios", "release")
    assert sel.smbios_selector("memory", "locator") == sel.Smbios("memory", "locator")
    assert SYSINFO["2"] == ("baseBoard", {"manufacturer": "manufacturer", "product": "product",
                                          "version": "version", "serial": "serial", "asset": "asset"})
    assert "4" not in SYSINFO and "17" not in SYSINFO  # libvirt has no <sysinfo> for them: passed through
    assert SYSFS_TO_DMIDECODE["product_serial"] == (1, "Serial Number")
    assert BY_SECTION["processor"].field("socket").designation == "socket"
