"""guestinfo on the Python side: the profile table and its bounds, --guestinfo/--guestinfo-file, the
selector, the fingerprint section, and the compiler's choice (x-rpc only where the capability probe
lists it, unsupported with the reason elsewhere). The QEMU side is tests/integration/test_vmport_rpc.py."""

from __future__ import annotations

import dataclasses
import json

import pytest

from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.detection.selectors import Guestinfo, parse
from guestcompat.emulation import arches
from guestcompat.emulation.capabilities import capabilities_for
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.fidelity import Fidelity
from guestcompat.errors import SelectorError
from guestcompat.harness.observe import observe
from guestcompat.profiles import guestinfo
from guestcompat.profiles.loader import load
from guestcompat.profiles.model import GUESTINFO_MAX_VALUE

STOCK = "qemu-system-x86_64"


def test_parse_values_and_files(tmp_path) -> None:
    meta = tmp_path / "meta.yaml"
    meta.write_text("instance-id: i-1\nlocal-hostname: moved\n")
    table = guestinfo.parse(["gc.x=hello", "guestinfo.gc.y=a=b", "empty="], [f"metadata={meta}"])
    assert table == {"gc.x": "hello", "gc.y": "a=b", "empty": "", "metadata": meta.read_text()}


@pytest.mark.parametrize("bad", ["novalue", "=v"])
def test_parse_refuses_malformed(bad: str) -> None:
    with pytest.raises(guestinfo.GuestinfoError, match="KEY=VALUE"):
        guestinfo.parse([bad])


def test_parse_refuses_large_missing_and_binary_files(tmp_path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"a" * (GUESTINFO_MAX_VALUE + 1))
    with pytest.raises(guestinfo.GuestinfoError, match="larger than"):
        guestinfo.parse(files=[f"big={big}"])
    with pytest.raises(guestinfo.GuestinfoError, match="cannot read"):
        guestinfo.parse(files=[f"x={tmp_path / 'absent'}"])
    blob = tmp_path / "blob"
    blob.write_bytes(b"\xff\xfe")
    with pytest.raises(guestinfo.GuestinfoError, match="base64"):
        guestinfo.parse(files=[f"x={blob}"])


def test_with_guestinfo_checks_bounds() -> None:
    profile = load("vmware/esxi-6.5")
    assert guestinfo.with_guestinfo(profile, {"gc.x": "v"}).guestinfo == {"gc.x": "v"}
    with pytest.raises(guestinfo.GuestinfoError, match="at most 16"):
        guestinfo.with_guestinfo(profile, {f"k{i}": "v" for i in range(17)})
    with pytest.raises(guestinfo.GuestinfoError, match="letters, digits"):
        guestinfo.with_guestinfo(profile, {"bad key": "v"})
    with pytest.raises(guestinfo.GuestinfoError, match="NUL"):
        guestinfo.with_guestinfo(profile, {"k": "a\0b"})


def test_selector_round_trip() -> None:
    assert parse("guestinfo[gc.x].value") == Guestinfo("gc.x")
    assert str(Guestinfo("metadata")) == "guestinfo[metadata].value"
    with pytest.raises(SelectorError):
        parse("guestinfo[a b].value")
    with pytest.raises(SelectorError):
        parse("guestinfo[gc.x].status")


def test_fingerprint_reads_what_the_channel_answered() -> None:
    doc = {"guestinfo": {"gc.x": {"status": "0", "value": "hello", "error": ""},
                         "gone": {"status": "1", "value": "", "error": "No value found"},
                         "norpc": {"status": "3", "value": "", "error": "no RPCI channel"}}}
    fp = Fingerprint.from_document(doc)
    assert dict(fp.guestinfo) == {"gc.x": "hello", "gone": None, "norpc": None}
    assert observe(fp, "guestinfo[gc.x].value") == "hello"
    assert observe(fp, "guestinfo[gone].value") is None
    assert Fingerprint.from_json(fp.to_json()).guestinfo == fp.guestinfo


def _with_rpc(caps):
    props = dict(caps.device_properties)
    props["vmport"] = (*props["vmport"], "x-rpc", "x-guestinfo-file", "x-time-cmds")
    return dataclasses.replace(caps, device_properties=props)


def test_compiled_only_where_the_probe_lists_x_rpc() -> None:
    profile = guestinfo.with_guestinfo(load("vmware/esxi-6.5"), {"gc.x": "hello", "metadata": "a: 1\n"})
    target = arches.resolve_target(arch="x86_64")
    stock = capabilities_for(STOCK)
    assert "x-rpc" not in stock.device_properties.get("vmport", ())

    plain = compile_profile(profile, target, stock)
    assert not any("x-rpc" in a for a in plain.argv)
    assert not any(a.kind == "json" for a in plain.artefacts)
    wanted = {e.selector: e for e in plain.report.expectations if e.selector.startswith("guestinfo[")}
    assert set(wanted) == {"guestinfo[gc.x].value", "guestinfo[metadata].value"}
    assert all(e.fidelity is Fidelity.UNSUPPORTED and "no backdoor RPC channel" in e.reason for e in wanted.values())
    assert "guestcompat.guestinfo=gc.x,metadata" in plain.guest_cmdline

    patched = compile_profile(profile, target, _with_rpc(stock))
    argv = patched.argv
    assert "vmport.x-rpc=on" in argv and "vmport.x-time-cmds=on" in argv
    store = next(a for a in patched.artefacts if a.kind == "json")
    assert json.loads(store.source) == {"gc.x": "hello", "metadata": "a: 1\n"}
    assert f"vmport.x-guestinfo-file={store.placeholder}" in argv
    exact = [e for e in patched.report.expectations if e.selector.startswith("guestinfo[")]
    assert exact and all(e.fidelity is Fidelity.EXACT for e in exact)


def test_no_backdoor_no_channel() -> None:
    base = load("vmware/esxi-6.5")
    profile = base.model_copy(update={"backdoor": base.backdoor.model_copy(update={"enabled": False}),
                                      "guestinfo": {"gc.x": "hello"}})
    compiled = compile_profile(profile, arches.resolve_target(arch="x86_64"), _with_rpc(capabilities_for(STOCK)))
    assert "vmport.x-rpc=on" not in compiled.argv
    e = next(e for e in compiled.report.expectations if e.selector == "guestinfo[gc.x].value")
    assert e.fidelity is Fidelity.UNSUPPORTED and "no VMware backdoor" in e.reason


def test_profiles_without_guestinfo_compile_as_before() -> None:
    compiled = compile_profile(load("vmware/esxi-6.5"), arches.resolve_target(arch="x86_64"),
                               _with_rpc(capabilities_for(STOCK)))
    assert not any("x-rpc" in a or "guestinfo" in a for a in (*compiled.argv, *compiled.guest_cmdline))


def test_no_backdoor_architecture_states_the_keys_unsupported() -> None:
    profile = guestinfo.with_guestinfo(load("power/pseries-pci"), {"gc.x": "hello"})
    target = arches.resolve_target(arch="ppc64")
    compiled = compile_profile(profile, target, capabilities_for(arches.get("ppc64").binary(target)))
    e = next(e for e in compiled.report.expectations if e.selector == "guestinfo[gc.x].value")
    assert e.fidelity is Fidelity.UNSUPPORTED and "ppc64 has no VMware backdoor" in e.reason
