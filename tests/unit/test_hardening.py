"""Issue 13 (hardening): each defect the audit found, as a test that failed before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.qemuopts import global_property, parse_option
from guestcompat.emulation.target import Target
from guestcompat.errors import GuestcompatError, ProfileError
from guestcompat.profiles.loader import load

PC = Target("x86_64", "pc", "tcg")


def _keys(argv) -> list[tuple[str, frozenset[str]]]:
    out, i = [], 1
    while i < len(argv) - 1:
        if argv[i].startswith("-") and not argv[i + 1].startswith("-"):
            head, props = parse_option(argv[i], argv[i + 1])
            out.append((argv[i], frozenset(props)))
            i += 2
        else:
            i += 1
    return out


# -- option injection through -cpu ------------------------------------------------------------------
def test_a_comma_in_the_brand_string_adds_no_option(profile_dir):
    profile_dir("t/evil", '''
        extends = "interfaces/kvm"
        [cpu]
        model_id = "Xeon,model-id=EVIL,vendor=AuthenticAMD"
        ''')
    profile_dir("t/plain", '''
        extends = "interfaces/kvm"
        [cpu]
        model_id = "Xeon"
        ''')
    evil, plain = compile_profile(load("t/evil"), PC).argv, compile_profile(load("t/plain"), PC).argv
    assert _keys(evil) == _keys(plain)
    assert "qemu64-x86_64-cpu.model-id=Xeon,model-id=EVIL,vendor=AuthenticAMD" in evil


def test_global_property_refuses_what_the_short_form_cannot_carry():
    assert global_property("vmport", "vmware-vmx-type", 2) == "vmport.vmware-vmx-type=2"
    with pytest.raises(ValueError):
        global_property("a.b", "c", "x")
    with pytest.raises(ValueError):
        global_property("cpu", "model-id", "a\nb")
    assert parse_option("-global", "x.y=a,b=c") == ("", {"x.y": "a,b=c"})
