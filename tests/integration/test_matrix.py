"""`guestcompat matrix` for real: a booted cell passes, a crashing QEMU is an error for its cell
only, impossible cells are skipped, the reports say so, and nothing is left behind."""

from __future__ import annotations

import json
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from guestcompat.harness.cli import cli
from guestcompat.harness.matrix import run_matrix
from guestcompat.harness.matrix_plan import plan
from guestcompat.harness.matrix_report import PlainReporter


def crashing_qemu(directory: Path, real: str) -> str:
    """A 'QEMU' that answers the capability questions like the real one (the probe runs
    ``-machine none``) and dies when asked to run a machine."""
    path = directory / "qemu-crashes"
    path.write_text(f'#!/bin/sh\ncase "$2" in help|none) exec {real} "$@";; esac\n'
                    'echo "simulated crash: Segmentation fault" >&2\nexit 139\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.boot
def test_matrix_cli_reports_pass_error_and_skips(tmp_path, leaves_nothing_behind):
    broken = crashing_qemu(tmp_path, "qemu-system-ppc64")
    junit, report = tmp_path / "junit.xml", tmp_path / "matrix.json"
    result = CliRunner().invoke(cli, ["matrix", "power/pseries-vscsi", "vmware/esxi-6.5", "--arch", "ppc64",
                                      "--qemu", "qemu-system-ppc64", "--qemu", broken, "--accel", "tcg",
                                      "--accel", "kvm", "--junit", str(junit), "--json", str(report)])
    assert result.exit_code == 2, result.output          # an error cell makes the matrix exit 2

    doc = json.loads(report.read_text())
    cells = {(c["profile"], c["qemu_binary"], c["accel"]): c for c in doc["cells"]}
    assert len(cells) == 8 and doc["totals"] == {"pass": 1, "mismatch": 0, "error": 1, "skipped": 6}
    good = cells[("power/pseries-vscsi", "qemu-system-ppc64", "tcg")]
    assert good["verdict"] == "pass" and good["counts"]["fail"] == 0 and good["counts"]["pass"] > 20
    crashed = cells[("power/pseries-vscsi", broken, "tcg")]
    assert crashed["verdict"] == "error" and "exit code 139" in crashed["reason"]
    assert "simulated crash" in crashed["reason"]
    assert "has no accelerator 'kvm'" in cells[("power/pseries-vscsi", broken, "kvm")]["reason"]
    assert cells[("vmware/esxi-6.5", "qemu-system-ppc64", "tcg")]["verdict"] == "skipped"

    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("8", "0", "1", "6")
    errors = [c for c in suite.iter("testcase") if c.find("error") is not None]
    assert [e.get("classname") for e in errors] == ["power/pseries-vscsi"] and broken in errors[0].get("name")
    assert "pass" in result.output and "skipped" in result.output   # the summary table


def test_process_mode_isolates_a_crashing_cell(tmp_path, leaves_nothing_behind, capsys):
    broken = crashing_qemu(tmp_path, "qemu-system-ppc64")
    matrix = run_matrix(plan(["power/pseries-vscsi"], [], [broken]), PlainReporter(), jobs=2, mode="process")
    [cell] = matrix.results
    assert cell.verdict == "error" and "exit code 139" in cell.reason and matrix.exit_code() == 2
    assert f"[1/1] power/pseries-vscsi ppc64/pseries/tcg [{broken}]: error" in capsys.readouterr().err


def test_a_matrix_where_nothing_can_run_is_an_error(tmp_path):
    result = CliRunner().invoke(cli, ["matrix", "power/pseries-vscsi", "--arch", "x86_64"])
    assert result.exit_code != 0
    assert "every cell was skipped" in str(result.exception)
