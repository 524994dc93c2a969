"""The probe's input devices and the VMware mouse selector (issue 26)."""

from __future__ import annotations

import os
import subprocess

import pytest

from detection_support import BUSYBOX, PROBE_SH

from guestcompat.detection import frame
from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.errors import ProbeError
from guestcompat.harness.observe import observe

DEVICES = ("AT Translated Set 2 keyboard", "VirtualPS/2 VMware VMMouse", "VirtualPS/2 VMware VMMouse")


def _probe(tmp_path, devices: tuple[str, ...], psmouse: bool = False) -> dict:
    sysroot = tmp_path / "sys"
    (sysroot / "proc").mkdir(parents=True)
    for i, name in enumerate(devices):
        (sysroot / f"sys/class/input/input{i}").mkdir(parents=True)
        (sysroot / f"sys/class/input/input{i}/name").write_text(name + "\n")
    if psmouse:
        (sysroot / "sys/module/psmouse").mkdir(parents=True)
        (sysroot / "sys/bus/serio/devices/serio1").mkdir(parents=True)  # a port no driver took
    env = {**os.environ, "GC_TOOLROOT": str(tmp_path / "none"), "GC_SYSROOT": str(sysroot), "GC_HELPER": "",
           "GC_CONSOLE_LEVEL": "", "GC_TMPDIR": str(tmp_path / "t"), "GC_DMESG": "true", "GC_SETTLE_TIMEOUT": "0"}
    out = subprocess.run([BUSYBOX, "sh", str(PROBE_SH)], env=env, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return frame.extract_document(out.splitlines())


def test_probe_records_input_device_names_in_order(tmp_path):
    doc = _probe(tmp_path, DEVICES)
    fp = Fingerprint.from_document(doc)
    assert fp.input_devices == ("AT Translated Set 2 keyboard", "VirtualPS/2 VMware VMMouse",
                                "VirtualPS/2 VMware VMMouse")
    assert observe(fp, "input.vmmouse") == "VirtualPS/2 VMware VMMouse"
    assert Fingerprint.from_json(fp.to_json()) == fp
    assert "input_waited_ds" not in doc  # psmouse not loaded: no wait


def test_plain_ps2_mouse_is_not_the_vmware_mouse(tmp_path):
    fp = Fingerprint.from_document(_probe(tmp_path, ("ImExPS/2 Generic Explorer Mouse",)))
    assert fp.input_devices == ("ImExPS/2 Generic Explorer Mouse",)
    assert observe(fp, "input.vmmouse") is None


def test_unbound_serio_port_waits_at_most_three_seconds(tmp_path):
    doc = _probe(tmp_path, (), psmouse=True)
    assert doc["input_waited_ds"] == "30"
    assert Fingerprint.from_document(doc).input_devices == ()


def test_malformed_input_section_is_a_probe_error():
    with pytest.raises(ProbeError, match="input"):
        Fingerprint.from_document({"format": "guestcompat-probe", "version": 1, "input": ["x"]})
    with pytest.raises(ProbeError, match="at most 64"):
        Fingerprint.from_document({"format": "guestcompat-probe", "version": 1,
                                   "input": {str(i): "m" for i in range(65)}})
