"""Matrix planning (skip reasons asked of the real QEMU binaries) and its reports (pure rendering)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from guestcompat.emulation.arches import resolve_target
from guestcompat.errors import GuestcompatError
from guestcompat.harness.matrix import CellResult, MatrixResult
from guestcompat.harness.matrix_plan import Cell, plan
from guestcompat.harness.matrix_report import json_text, junit_bytes, summary_table


def _by(planned):
    return {(p.cell.profile, p.cell.target.arch, p.cell.target.accel, p.cell.target.qemu_binary): p
            for p in planned}


def test_impossible_combinations_are_skipped_with_their_reason():
    cells = _by(plan(["vmware/esxi-6.5", "power/pseries-vscsi"], ["x86_64", "ppc64"], [], ["tcg", "kvm"]))
    assert len(cells) == 8
    runnable = {k for k, p in cells.items() if p.compiled is not None}
    assert runnable == {("vmware/esxi-6.5", "x86_64", "tcg", None), ("power/pseries-vscsi", "ppc64", "tcg", None)}
    assert all(p.error is None for p in cells.values())
    assert cells[("power/pseries-vscsi", "x86_64", "tcg", None)].skip_reason == "the profile describes ppc64 hardware"
    kvm = cells[("vmware/esxi-6.5", "x86_64", "kvm", None)].skip_reason
    assert "KVM is not proven to boot here" in kvm and "accepts tcg only" in kvm
    assert cells[("power/pseries-vscsi", "ppc64", "kvm", None)].skip_reason == \
        "qemu-system-ppc64 has no accelerator 'kvm' (it offers: tcg)"
    assert "exists only on x86" in cells[("vmware/esxi-6.5", "ppc64", "tcg", None)].skip_reason


def test_a_qemu_binary_of_another_architecture_is_a_skip_and_a_missing_one_an_error():
    cells = _by(plan(["vmware/esxi-6.5"], [], ["qemu-system-ppc64", "/nonexistent/qemu"], ["tcg"]))
    assert cells[("vmware/esxi-6.5", "x86_64", "tcg", "qemu-system-ppc64")].skip_reason == \
        "qemu-system-ppc64 has no machine type 'pc' (a QEMU for another architecture)"
    missing = cells[("vmware/esxi-6.5", "x86_64", "tcg", "/nonexistent/qemu")]
    assert missing.compiled is None and "'/nonexistent/qemu' not found" in missing.error


def test_bad_names_are_errors_for_the_whole_command():
    with pytest.raises(GuestcompatError, match="no/such"):
        plan(["no/such"])
    with pytest.raises(GuestcompatError, match="unknown architecture 'sparc'"):
        plan(["vmware/esxi-6.5"], ["sparc"])


def test_default_plan_is_every_concrete_profile_on_its_own_target():
    planned = plan()
    # 10 VMware + 2 pseries + 7 multi-interface combinations (profiles/interfaces/)
    assert len(planned) == 19 and all(p.compiled is not None for p in planned)
    assert len([p for p in planned if p.cell.profile.startswith("interfaces/")]) == 7
    assert {p.cell.target.arch for p in planned if p.cell.profile.startswith("power/")} == {"ppc64"}


def _matrix(*results: CellResult) -> MatrixResult:
    return MatrixResult(tuple(results), wall_seconds=10.0, jobs=2, mode="async")


CELL = Cell("vmware/esxi-6.5", resolve_target())
PASS = CellResult(CELL, "pass", 8.0, {"pass": 3, "deviation": 1, "fail": 0})
MISMATCH = CellResult(Cell("vmware/esxi-6.0", resolve_target()), "mismatch", 9.0, {"pass": 2, "deviation": 0, "fail": 2},
                      mismatches=("pci[0b:00.0].vendor: wanted 0x15ad, guest shows 0x8086", "nic[ens192]: <missing>"))
ERROR = CellResult(Cell("vmware/esxi-5.0", resolve_target(qemu_binary="/opt/q")), "error", 1.0,
                   reason="QEMU refused to start\n  | console \x1b[0m<garbage>\x00")
SKIP = CellResult(Cell("power/pseries-pci", resolve_target()), "skipped", reason="the profile describes ppc64 hardware")


@pytest.mark.parametrize("results, code", [((PASS, SKIP), 0), ((PASS, MISMATCH, SKIP), 1),
                                           ((PASS, MISMATCH, ERROR), 2), ((ERROR,), 2)])
def test_exit_codes(results, code):
    assert _matrix(*results).exit_code() == code


def test_junit_has_one_testcase_per_cell_with_mismatch_lines_and_escaped_text():
    root = ET.fromstring(junit_bytes(_matrix(PASS, MISMATCH, ERROR, SKIP)))
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("4", "1", "1", "1")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("vmware/esxi-6.5", "x86_64/pc/tcg"), ("vmware/esxi-6.0", "x86_64/pc/tcg"),
        ("vmware/esxi-5.0", "x86_64/pc/tcg [/opt/q]"), ("power/pseries-pci", "x86_64/pc/tcg")]
    assert cases[0].find("failure") is None and cases[0].find("error") is None
    failure = cases[1].find("failure")
    assert failure.text.splitlines() == list(MISMATCH.mismatches)
    assert failure.get("message").startswith("2 mismatches: pci[0b:00.0].vendor")
    error = cases[2].find("error")
    assert error.get("message") == "QEMU refused to start" and "<garbage>\ufffd" in error.text
    assert cases[3].find("skipped").get("message") == "the profile describes ppc64 hardware"


def test_json_report_totals_and_cells():
    doc = json.loads(json_text(_matrix(PASS, MISMATCH, SKIP)))
    assert doc["totals"] == {"pass": 1, "mismatch": 1, "error": 0, "skipped": 1}
    assert doc["exit_code"] == 1 and doc["run_seconds"] == 17.0
    assert doc["cells"][1]["mismatches"] == list(MISMATCH.mismatches)
    assert doc["cells"][0]["counts"] == {"pass": 3, "deviation": 1, "fail": 0}


def test_summary_table_has_a_row_per_cell():
    table = summary_table(_matrix(PASS, MISMATCH, ERROR, SKIP))
    assert table.row_count == 4
    assert [c.header for c in table.columns][:7] == ["profile", "target", "verdict", "passed", "deviations",
                                                     "mismatches", "seconds"]


def test_live_reporter_prints_each_finished_cell_on_a_terminal():
    import io

    from rich.console import Console

    from guestcompat.harness.matrix_report import LiveReporter

    buffer = io.StringIO()
    with LiveReporter(Console(file=buffer, force_terminal=True, width=120)) as reporter:
        reporter.planned(2)
        reporter.message(PASS.cell, "image is cached")
        reporter.started(PASS.cell)
        reporter.message(PASS.cell, "booting the guest")
        reporter.finished(PASS)
        reporter.finished(SKIP)
        assert reporter.running == {}
        assert reporter.progress.tasks[0].completed == 2
    text = buffer.getvalue()
    assert "pass" in text and "vmware/esxi-6.5 x86_64/pc/tcg" in text and "skipped" in text
