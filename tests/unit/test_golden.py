"""Compile output against golden files a reviewer reads in a diff (like libvirt's xml2argv, Proxmox's cfg2cmd).

Regenerate after an intended change with ``GUESTCOMPAT_UPDATE_GOLDEN=1 pytest tests/unit/test_golden.py``
and review the diff. A missing golden file fails: a test that writes its own
expectation could never fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.libvirt_xml import render, report_lines
from guestcompat.emulation.report import argv_lines, fidelity_lines
from guestcompat.emulation.target import Target
from guestcompat.profiles.loader import list_profiles, load

GOLDEN = Path(__file__).parent.parent / "golden"
# Stock QEMU 7.2, guestcompat's patched build (images/patches/) and QEMU 10.0 as Debian ships it and
# patched (all made by `make setup`): the same profile compiles to one recipe per build, each
# reviewed in its own golden directory.
TARGETS = [Target("x86_64", "pc", "tcg"), Target("ppc64", "pseries", "tcg"),
           Target("x86_64", "pc", "tcg", qemu_binary="patched"),
           Target("x86_64", "pc", "tcg", qemu_binary="10.0"),
           Target("x86_64", "pc", "tcg", qemu_binary="10.0-patched")]
SOURCE_SUFFIX = {"acpi-asl": "asl"}
RUNNABLE = [s.name for s in list_profiles() if not load(s.name).abstract]
# Every runnable profile on every target its platform.arch allows (None = x86 hardware here).
CASES = [(name, target) for name in RUNNABLE for target in TARGETS
         if (load(name).platform.arch or "x86_64") == target.arch]
CASE_IDS = [f"{n}@{t}" + (f"@{t.qemu_binary}" if t.qemu_binary else "") for n, t in CASES]


def _stem(name: str, target: Target) -> Path:
    build = f"-{target.qemu_binary}" if target.qemu_binary else ""
    return GOLDEN / f"{target.arch}-{target.machine}-{target.accel}{build}" / name.replace("/", "__")


def _check(path: Path, text: str) -> None:
    if os.environ.get("GUESTCOMPAT_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"golden file {path} is missing; create it with GUESTCOMPAT_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(), f"{path} differs from the compiler's output (review, then regenerate)"


@pytest.mark.parametrize(("name", "target"), CASES, ids=CASE_IDS)
def test_compile_matches_golden(name, target):
    compiled = compile_profile(load(name), target)
    stem = _stem(name, target)
    _check(stem.with_name(stem.name + ".args"), "\n".join(argv_lines(compiled)) + "\n")
    _check(stem.with_name(stem.name + ".fidelity"), "\n".join(fidelity_lines(compiled)) + "\n")
    for artefact in compiled.artefacts:  # sources (ASL), not built files: readable in a diff
        _check(stem.with_name(f"{stem.name}.{artefact.name.rsplit('.', 1)[0]}.{SOURCE_SUFFIX[artefact.kind]}"),
               artefact.source)


@pytest.mark.parametrize(("name", "target"), CASES, ids=CASE_IDS)
def test_libvirt_xml_matches_golden(name, target):
    """The domain XML and its 'passed through qemu:commandline' list, per bundled profile."""
    domain = render(compile_profile(load(name), target))
    stem = _stem(name, target)
    _check(stem.with_name(stem.name + ".libvirt.xml"), domain.xml)
    _check(stem.with_name(stem.name + ".libvirt-passthrough"), "\n".join(report_lines(domain)) + "\n")


def test_every_target_has_a_golden_case():
    assert {t.arch for _, t in CASES} == {t.arch for t in TARGETS}
