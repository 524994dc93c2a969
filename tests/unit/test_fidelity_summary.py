"""`guestcompat fidelity`: deviation reasons grouped across profiles, and docs/fidelity.md kept current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.fidelity_summary import summarize, text_lines
from guestcompat.emulation.target import Target
from guestcompat.harness.cli import cli
from guestcompat.profiles.loader import load

PC = Target("x86_64", "pc", "tcg")
GUESTCOMPAT = str(Path(sys.executable).with_name("guestcompat"))
DOC = Path(__file__).resolve().parents[2] / "docs" / "fidelity.md"


def _summary(*names: str):
    return summarize([compile_profile(load(n), PC) for n in names])


def test_a_reason_is_listed_once_with_the_profiles_it_touches():
    summary = _summary("vmware/esxi-6.5", "vmware/esxi-4.0", "vmware/ws-hw4")
    by_reason = {r.reason: r for r in summary.reasons}
    mptsas = next(r for reason, r in by_reason.items() if "mptsas never turns it into a block device" in reason)
    assert mptsas.fidelity == "unsupported" and mptsas.properties == (("vmware/esxi-4.0", 4),)
    vmci = next(r for reason, r in by_reason.items() if reason.startswith("stock QEMU has no VMCI device"))
    assert dict(vmci.properties) == {"vmware/esxi-6.5": 1, "vmware/esxi-4.0": 1}       # ws-hw4 predates VMCI
    # every deviation of every profile is under exactly one reason: nothing is dropped by the grouping
    for machine in (compile_profile(load(n), PC) for n in ("vmware/esxi-6.5", "vmware/esxi-4.0", "vmware/ws-hw4")):
        grouped = sum(dict(r.properties).get(machine.profile.name, 0) for r in summary.reasons)
        assert grouped == len(machine.report.deviations())
    # unsupported before approximate; counts per profile as `compile` reports them
    levels = [r.fidelity for r in summary.reasons]
    assert levels == sorted(levels, key=lambda f: f != "unsupported")
    text = "\n".join(text_lines(summary))
    assert "(OVMF)\n    in vmware/esxi-6.5, vmware/esxi-4.0;" in text
    assert "in vmware/esxi-4.0 (3 properties each)" in text


def test_docs_fidelity_md_is_the_current_output():
    result = CliRunner().invoke(cli, ["fidelity", "--markdown"])
    assert result.exit_code == 0, result.output
    assert DOC.read_text() == result.output, "docs/fidelity.md is stale: run `guestcompat fidelity --markdown > docs/fidelity.md`"


def test_an_unknown_profile_is_a_clear_error():
    result = subprocess.run([GUESTCOMPAT, "fidelity", "vmware/nope"], capture_output=True, text=True)
    assert result.returncode == 2 and "error: no profile named 'vmware/nope'" in result.stderr
    assert "Traceback" not in result.stderr
