"""Blocked features as data: which apply, what compile says, what run refuses."""

from __future__ import annotations

import json

import pytest

from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.report import blocked_lines, to_json
from guestcompat.emulation.arches import resolve_target
from guestcompat.emulation.target import Target
from guestcompat.errors import CompileError, RunError
from guestcompat.harness.run import run_compiled
from guestcompat.profiles.blocked import accel_facts, load_blocked
from guestcompat.profiles.loader import load

NVME = """
[guest]
os = "debian-12"
[platform]
migratable = {migratable}
[[pci.devices]]
name = "nvme0"
kind = "qemu-nvme"
address = "00:10.0"
"""


def features(compiled) -> dict[str, str]:
    return {b.feature: b.effect for b in compiled.blocked}


def test_accelerator_facts_come_from_the_data():
    facts = accel_facts("x86_64", "tcg")
    assert (facts.cpuid_signature, facts.can_set_signature, facts.backdoor_gethz, facts.user_backdoor) == \
        ("TCGTCGTCGTCG", False, False, False)


def test_esxi65_under_tcg_lists_the_tcg_gaps():
    compiled = compile_profile(load("vmware/esxi-6.5"), resolve_target())
    assert features(compiled) == {"cpuid-hypervisor-signature": "gap", "backdoor-gethz": "gap",
                                  "backdoor-from-user-mode": "gap"}
    lines = blocked_lines(compiled)
    assert lines[0] == "blocked on x86_64/pc/tcg:"
    assert any("TCGTCGTCGTCG" in line for line in lines)
    assert {b["feature"] for b in json.loads(json.dumps(to_json(compiled)))["blocked"]} == set(features(compiled))


def test_a_feature_the_profile_does_not_ask_for_is_not_listed():
    compiled = compile_profile(load("power/pseries-vscsi"), Target("ppc64", "pseries"))
    assert compiled.blocked == () and blocked_lines(compiled) == []


def test_backdoor_on_ppc64_is_refused_by_the_data(profile_dir):
    profile_dir("t/bd", '[platform]\narch = "ppc64"\n[backdoor]\nenabled = true\n')
    with pytest.raises(CompileError, match=r"^backdoor\.enabled: the VMware backdoor \(I/O port 0x5658\) exists only "
                                           r"on x86; t/bd cannot be compiled for ppc64$"):
        compile_profile(load("t/bd"), Target("ppc64", "pseries"))


def test_unmigratable_device_blocks_the_run_only_when_migration_is_asked(profile_dir):
    profile_dir("t/nvme", NVME.format(migratable="false"))
    assert features(compile_profile(load("t/nvme"), resolve_target())) == {}
    profile_dir("t/nvme", NVME.format(migratable="true"))
    compiled = compile_profile(load("t/nvme"), resolve_target())
    assert features(compiled) == {"live-migration": "no-run"}
    assert "run refuses to boot this profile" in blocked_lines(compiled)[1]
    with pytest.raises(RunError, match=r"^t/nvme on x86_64/pc/tcg is blocked: platform\.migratable: QEMU's nvme "
                                       r"device is unmigratable"):
        run_compiled(compiled, timeout=1)


def test_every_entry_names_real_keys_and_kinds():
    from guestcompat.profiles.catalog import load_catalog

    kinds = load_catalog().kinds
    for entry in load_blocked().blocked:
        assert entry.device is None or entry.device in kinds
