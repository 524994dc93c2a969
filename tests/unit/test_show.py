"""`guestcompat show`: the predicted tree and NIC names come from the profile, deviations are marked."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from guestcompat.detection.netnames import predicted_name
from guestcompat.harness.cli import cli


def test_predicted_names_follow_systemd_slot_then_path():
    assert predicted_name(0x0B, 0, 0, 192) == "ens192"
    assert predicted_name(0x02, 1, 0, 33) == "ens33"
    assert predicted_name(0x00, 0x11, 0, None) == "enp0s17"
    assert predicted_name(0x04, 0, 1, 161) == "ens161f1"


def test_show_prints_tree_names_and_reasons():
    result = CliRunner().invoke(cli, ["show", "vmware/workstation-17"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "lineage: vmware/chipset -> vmware/base -> vmware/workstation-17" in out
    nic_lines = [line for line in out.splitlines() if "=>" in line]
    assert [line.split("=> ")[1] for line in nic_lines] == ["ens33", "ens34"]
    assert all(line.startswith("~") for line in nic_lines)  # e1000's subsystem differs under QEMU
    assert "[ethernet0]" in nic_lines[0] and "02:01.0" in nic_lines[0]
    assert "+ 00:0e.0" in out and "notes:" in out


def test_show_unknown_profile_is_a_clear_error():
    proc = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "show", "vmware/nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "error: no profile named 'vmware/nope'" in proc.stderr and "Traceback" not in proc.stderr


DUAL = """
description = "two NIC functions in one device"
[[pci.devices]]
name = "nic0"
kind = "e1000e"
address = "00:10.0"
[[pci.devices]]
name = "nic1"
kind = "e1000e"
address = "00:10.1"
"""


def test_function_0_of_a_multifunction_nic_is_expected_with_f0_and_shown_so(profile_dir):
    from guestcompat.emulation.compiler import compile_profile
    from guestcompat.emulation.arches import resolve_target
    from guestcompat.profiles.loader import load

    profile_dir("t/dual", DUAL)
    compiled = compile_profile(load("t/dual"), resolve_target())
    names = {e.selector: (e.wanted, e.presented) for e in compiled.expectations if e.selector.endswith("].name")}
    assert names["net[00:10.0].name"][0] == names["net[00:10.0].name"][1] and \
        names["net[00:10.0].name"][0].endswith("s16f0")
    assert names["net[00:10.1].name"][0].endswith("s16f1")
    result = CliRunner().invoke(cli, ["show", "t/dual"])
    assert result.exit_code == 0, result.output
    assert "s16f0" in result.output and "s16f1" in result.output
