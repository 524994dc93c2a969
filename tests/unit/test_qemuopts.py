"""QEMU option escaping: what QEMU's own parser would read back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guestcompat.emulation.qemuopts import escape, opts, pairs


def split_qemu_opts(text: str) -> list[str]:
    """QemuOpts' splitting rule: ',' separates, ',,' is a literal comma."""
    parts, current, i = [], "", 0
    while i < len(text):
        if text[i] == ",":
            if text[i + 1:i + 2] == ",":
                current += ","
                i += 2
                continue
            parts.append(current)
            current = ""
        else:
            current += text[i]
        i += 1
    parts.append(current)
    return parts


def test_vmware_manufacturer_comma_is_doubled():
    assert pairs("type=1", [("manufacturer", "VMware, Inc.")]) == "type=1,manufacturer=VMware,, Inc."


def test_opts_renders_bools_and_skips_none():
    assert opts("pcie-root-port", id="rp", multifunction=True, slot=None, **{"io-reserve": 0}) == \
        "pcie-root-port,id=rp,multifunction=on,io-reserve=0"


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_newlines_are_refused(bad):
    with pytest.raises(ValueError, match="cannot contain newlines"):
        escape(bad)


@given(st.lists(st.tuples(st.from_regex(r"[a-z]{1,8}", fullmatch=True),
                          st.text(alphabet=st.characters(blacklist_characters="\n\r\0", blacklist_categories=("Cs",)),
                                  max_size=30)), max_size=6))
def test_escaped_values_round_trip_through_qemu_splitting(items):
    text = pairs("head", items)
    parts = split_qemu_opts(text)
    assert parts[0] == "head"
    assert [p.split("=", 1) for p in parts[1:]] == [[k, v] for k, v in items]
