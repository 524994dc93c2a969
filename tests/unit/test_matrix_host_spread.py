"""Spreading a matrix over libvirt hosts: assignment, the reports naming the host, bad command lines,
and an unreachable host (no guest boots: the host is refused before anything runs)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from guestcompat.emulation.target import Target
from guestcompat.errors import GuestcompatError
from guestcompat.harness.matrix import CellResult, MatrixResult, run_matrix
from guestcompat.harness.fleet import HostInfo, need, place
from guestcompat.harness.matrix_plan import Cell, plan
from guestcompat.harness.matrix_report import PlainReporter, json_text, junit_bytes, summary_table
from guestcompat.harness.libvirt_embed import embed_uri_root

GUESTCOMPAT = str(Path(sys.executable).with_name("guestcompat"))
PC = Target("x86_64", "pc", "tcg")
UNREACHABLE = "qemu+unix:///system?socket=/nonexistent/guestcompat-test/libvirt-sock"


def test_cells_go_round_robin_over_the_hosts_whose_qemu_can_run_them():
    planned = plan(["vmware/esxi-6.5", "power/pseries-vscsi", "vmware/esxi-6.0", "vmware/esxi-5.5",
                    "power/pseries-pci"])
    x86, ppc = need(planned[0]), need(planned[1])
    assert x86[1:] == ("x86_64", "pc", "qemu") and ppc[1:] == ("ppc64", "pseries", "qemu")
    a, b = HostInfo("a", 1), HostInfo("b", 1)
    assert place(range(5), planned, [a, b]) == ({"a": [0, 2, 4], "b": [1, 3]}, {})
    no_ppc = HostInfo("b", 1, cannot={ppc: "Cannot find 'qemu-system-ppc64'"})
    assert place(range(5), planned, [a, no_ppc]) == ({"a": [0, 1, 4], "b": [2, 3]}, {})
    assert place(range(5), planned, [HostInfo("a", 3), b]) == ({"a": [0, 2, 3, 4], "b": [1]}, {})  # capacity
    shares, unplaceable = place(range(5), planned, [HostInfo("a", 1, cannot={ppc: "no ppc"}), no_ppc])
    assert shares == {"a": [0, 3], "b": [2]}
    with pytest.raises(GuestcompatError, match="no libvirt host"):
        place([0], planned, [])
    assert unplaceable[1] == unplaceable[4] == (f"no libvirt host can run {ppc[0]} (ppc64/pseries): a: no ppc; "
                                                f"b: Cannot find 'qemu-system-ppc64'")


def test_embed_uris_name_their_root_and_other_uris_none():
    assert embed_uri_root("qemu:///embed?root=/tmp/x") == Path("/tmp/x")
    assert embed_uri_root("qemu:///system") is None
    assert embed_uri_root(UNREACHABLE) is None
    assert embed_uri_root("qemu+ssh://h/embed?root=/tmp/x") is None


def test_an_embed_root_too_long_for_libvirts_sockets_is_refused_up_front():
    root = "/tmp/" + "r" * 60
    planned = plan(["power/pseries-vscsi"])
    matrix = run_matrix(planned, PlainReporter(), hosts=[f"qemu:///embed?root={root}"], timeout=60)
    (result,) = matrix.results
    assert result.verdict == "error"
    assert f"libvirt embed root {root} is too long (65 characters; at most" in result.reason
    assert not Path(root).exists()


def _hosts_matrix() -> MatrixResult:
    a, b = "qemu:///embed?root=/tmp/a", "qemu:///embed?root=/tmp/b&x=<1>"
    return MatrixResult((
        CellResult(Cell("vmware/esxi-6.5", PC), "pass", 9.5, {"pass": 3, "deviation": 1, "fail": 0}, host=a,
                   host_name="gc-a", qemu_build="/usr/bin/qemu-system-x86_64 7.2.22"),
        CellResult(Cell("vmware/esxi-6.0", PC), "error", 1.0, reason=f"libvirt host {b} cannot be reached", host=b),
        CellResult(Cell("power/pseries-vscsi", Target("ppc64", "pseries", "tcg")), "skipped", reason="ppc64"),
    ), wall_seconds=12.0, jobs=1, mode="libvirt", hosts=(a, b))


def test_reports_say_which_host_ran_each_cell():
    matrix = _hosts_matrix()
    doc = json.loads(json_text(matrix))
    assert doc["hosts"] == list(matrix.hosts) and doc["mode"] == "libvirt"
    assert [c["host"] for c in doc["cells"]] == [matrix.hosts[0], matrix.hosts[1], None]
    cases = ET.fromstring(junit_bytes(matrix)).findall("testsuite/testcase")
    assert [[(p.get("name"), p.get("value")) for p in c.findall("properties/property")] for c in cases] == \
        [[("host", matrix.hosts[0]), ("host_name", "gc-a"), ("qemu_build", "/usr/bin/qemu-system-x86_64 7.2.22")],
         [("host", matrix.hosts[1])], []]
    assert doc["cells"][0]["host_name"] == "gc-a" and doc["cells"][1]["qemu_build"] is None
    from rich.console import Console

    console = Console(width=300, record=True)
    console.print(summary_table(matrix))
    text = console.export_text()
    assert "2 libvirt hosts x 1 jobs" in text and "host" in text.splitlines()[2]
    assert matrix.hosts[0] in text and matrix.hosts[1] in text


def test_direct_matrix_reports_have_no_host():
    matrix = MatrixResult((CellResult(Cell("vmware/esxi-6.5", PC), "pass", 1.0),), 1.0, 2, "async")
    assert json.loads(json_text(matrix))["hosts"] == []
    assert json.loads(json_text(matrix))["cells"][0]["host"] is None
    assert not ET.fromstring(junit_bytes(matrix)).findall(".//properties")


def test_an_unreachable_host_gives_error_cells_naming_its_uri(capsys):
    planned = plan(["vmware/esxi-6.5", "vmware/esxi-6.0"])
    matrix = run_matrix(planned, PlainReporter(), hosts=[UNREACHABLE], timeout=60)
    assert [r.verdict for r in matrix.results] == ["error", "error"]
    for r in matrix.results:
        assert r.host == UNREACHABLE
        assert r.reason.startswith(f"libvirt host {UNREACHABLE} cannot be reached: cannot open libvirt connection")
    assert matrix.exit_code() == 2
    assert f"error on {UNREACHABLE}" in capsys.readouterr().err


def test_the_same_host_twice_is_refused():
    with pytest.raises(GuestcompatError, match="given twice"):
        run_matrix(plan(["vmware/esxi-6.5"]), PlainReporter(), hosts=["qemu:///system", "qemu:///system"])


@pytest.mark.parametrize("args, message", [
    (["--jobs-per-host", "2"], "--jobs-per-host needs at least one --libvirt URI"),
    (["--libvirt", "qemu:///system", "--jobs", "2"], "with --libvirt, say --jobs-per-host"),
    (["--libvirt", "qemu:///system", "--jobs-per-host", "0"], "--jobs-per-host must be at least 1, not 0"),
])
def test_bad_host_options_are_clear_errors(args, message):
    cli = subprocess.run([GUESTCOMPAT, "matrix", "vmware/esxi-6.5", *args], capture_output=True, text=True,
                         timeout=120)
    assert cli.returncode == 2, cli
    assert message in cli.stderr and "Traceback" not in cli.stderr
