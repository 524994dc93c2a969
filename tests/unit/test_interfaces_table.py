"""The multi-interface catalogue and the table renderer (pure logic, no boot)."""

from __future__ import annotations

import pytest

from guestcompat.harness.interfaces import (DETECTORS, CombinationRow, InterfaceTable, PresentationRow, QemuAnswer,
                                            render_markdown, render_text)
from guestcompat.profiles.ifcatalog import INTERFACES, Presentation, load_interfaces
from guestcompat.profiles.loader import load


def test_catalogue_covers_every_interface_and_its_combinations_exist():
    catalog = load_interfaces()
    assert {p.interface for p in catalog.presentation} == set(INTERFACES)
    for interface in INTERFACES:   # every interface has its CPUID facet, with the accelerator it needs
        assert catalog.by_key()[f"{interface}:cpuid"].needs in ("kvm", "xen")
    for name in catalog.combination:
        assert not load(name).abstract
    presented = {k.split(":")[0] for c in catalog.combination.values() for k in c.presents}
    assert presented == set(INTERFACES)


def _table(real_linux: str | None, model_linux: str | None) -> InterfaceTable:
    p = Presentation(interface="hyperv", facet="vmbus", what="VMBus | synthetic", argv=("-device", "vmbus-bridge"),
                     needs="kvm", note="KVM only")
    rows = (PresentationRow(p, (QemuAnswer("tcg", False, "VMBus requires usable Hyper-V SynIC and VP_INDEX"),)),)
    real = {"linux": real_linux, "systemd-detect-virt": "microsoft", "virt-what": "virtualpc,qemu"}
    model = {"linux": model_linux, "systemd-detect-virt": "microsoft", "virt-what": "virtualpc,qemu",
             "vmware-checkvm": "no"}
    combos = (CombinationRow("interfaces/hyperv", ("hyperv:dmi",), "TCGTCGTCGTCG", True, real, model, "none"),
              CombinationRow("interfaces/broken", ("xen:dmi",), None, None, {}, {}, None, "guest hung"))
    return InterfaceTable("QEMU emulator version 7.2.22", rows, combos)


def test_markdown_marks_agreement_refusals_and_errors():
    md = render_markdown(_table(None, None))
    assert "guestcompat interfaces --markdown" in md and "QEMU emulator version 7.2.22" in md
    assert "| hyperv | vmbus | VMBus \\| synthetic | `-device vmbus-bridge` | refused: VMBus requires usable " \
           "Hyper-V SynIC and VP_INDEX | kvm | KVM only |" in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| interfaces/hyperv |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "set / TCGTCGTCGTCG"
    assert cells[3:3 + len(DETECTORS)] == ["— ✓", "microsoft ✓", "virtualpc,qemu ✓", "not run"]
    assert "| interfaces/broken | xen:dmi | error: guest hung |" in md
    assert "Interfaces no booted combination presents: vmware, kvm." in md


def test_a_disagreeing_model_is_shown_and_counted():
    table = _table("VMware", None)
    row = table.combinations[0]
    assert row.disagreeing == ("linux",)
    assert "VMware ✗ model: —" in render_markdown(table)
    assert "MODEL DISAGREES: linux" in render_text(table)


@pytest.mark.parametrize("argv, accepted, words", [
    (("-device", "xen-platform"), False, "not a valid device model name"),
    (("-device", "vmbus-bridge"), False, "QEMU kept running without it"),
    (("-cpu", "qemu64,kvm=on"), True, ""),
])
def test_qemu_answers_for_real(argv, accepted, words):
    from guestcompat.harness.interfaces import qemu_answer
    answer = qemu_answer("qemu-system-x86_64", argv, "tcg")
    assert answer.accepted is accepted and words in answer.message


def test_cpu_flags_join_the_compiled_cpu_option():
    from guestcompat.harness.interfaces import with_cpu_flags
    p = load_interfaces().by_key()["hyperv:cpuid"]
    argv = ("qemu-system-x86_64", "-machine", "pc", "-cpu", "qemu64,vendor=GenuineIntel", "-m", "512")
    assert with_cpu_flags(argv, p) == ("qemu-system-x86_64", "-machine", "pc", "-cpu",
                                      "qemu64,vendor=GenuineIntel,hv-relaxed=on,hv-vendor-id=Microsoft Hv",
                                      "-m", "512")
    assert {q.key for q in load_interfaces().presentation if q.prove_on} == {"vmware:cpuid", "kvm:cpuid",
                                                                             "hyperv:cpuid"}
