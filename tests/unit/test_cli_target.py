"""How the CLI picks the target: --arch, else the profile's platform.arch, else x86_64; machine from the strategy."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from guestcompat.emulation.target import Target
from guestcompat.errors import CompileError
from guestcompat.harness.cli import cli, make_target


def test_defaults_stay_x86_pc():
    assert make_target(None, None, "tcg", None) == Target("x86_64", "pc", "tcg")


def test_arch_picks_its_default_machine():
    assert make_target("ppc64", None, "tcg", None) == Target("ppc64", "pseries", "tcg")


def test_profile_arch_is_used_without_arch_option():
    assert make_target(None, None, "tcg", None, "ppc64") == Target("ppc64", "pseries", "tcg")
    assert make_target("x86_64", None, "tcg", None, "ppc64").arch == "x86_64"   # the option wins (and the compiler refuses)


def test_unknown_arch_is_a_clear_error():
    with pytest.raises(CompileError, match="unknown architecture 'sparc'"):
        make_target("sparc", None, "tcg", None)


@pytest.mark.parametrize("args", [["power/pseries-vscsi"], ["power/pseries-vscsi", "--arch", "ppc64", "--machine", "pseries"]])
def test_compile_ppc64_profile_prints_argv_and_fidelity(args):
    result = CliRunner().invoke(cli, ["compile", *args])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("qemu-system-ppc64")
    assert "spapr-vscsi,id=vscsi0,reg=0x71000010" in result.output
    assert "fidelity of power/pseries-vscsi on ppc64/pseries/tcg:" in result.output


def test_one_rule_for_every_caller():
    """The strategy registry owns the rule; the CLI, the compiler's default and the matrix use it."""
    from guestcompat.emulation import arches
    from guestcompat.emulation.compiler import compile_profile
    from guestcompat.harness.matrix_plan import plan
    from guestcompat.profiles.loader import load

    assert arches.resolve_target() == Target(arches.DEFAULT_ARCH, arches.get(arches.DEFAULT_ARCH).default_machine)
    assert arches.resolve_target("ppc64", accel=None) == Target("ppc64", "pseries", "tcg")
    assert arches.resolve_target("ppc64", arch="x86_64", machine="pc", qemu_binary="/q") == \
        Target("x86_64", "pc", "tcg", "/q")
    assert compile_profile(load("power/pseries-vscsi")).target == Target("ppc64", "pseries", "tcg")
    [cell] = plan(["power/pseries-vscsi"])
    assert cell.cell.target == arches.resolve_target("ppc64") == make_target(None, None, "tcg", None, "ppc64")
