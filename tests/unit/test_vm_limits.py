"""VM-wide I/O limits (issue 26): compiled to one throttle group; the guest's group measurement."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.emulation.arches import resolve_target
from guestcompat.emulation.compiler import compile_profile
from guestcompat.errors import ProbeError, ProfileError
from guestcompat.harness.observe import observe
from guestcompat.profiles.loader import load

TWO_DISKS = """
extends = "vmware/esxi-6.5"
[limits]
bps_read = 4194304
[[disks]]
name = "disk0"
controller = "scsi0"
limits = {{ iops_write = 100 }}
[[disks]]
name = "disk1"
controller = "scsi0"
unit = 1
size_mb = 64
{extra}
"""


def _compiled(profile_dir, extra="", name="t/vm"):
    profile_dir(name, TWO_DISKS.format(extra=extra))
    return compile_profile(load(name), resolve_target())


def test_one_group_shared_by_every_disk_over_per_disk_limits(profile_dir):
    c = _compiled(profile_dir)
    argv = list(c.argv)
    assert argv.count("throttle-group,id=throttle-vm,x-bps-read=4194304") == 1
    assert "driver=throttle,node-name=drive-disk0,throttle-group=throttle-vm,file=drive-disk0-vm" in argv
    assert "driver=throttle,node-name=drive-disk1,throttle-group=throttle-vm,file=drive-disk1-vm" in argv
    # disk0's own limit stays below the VM's node
    assert "driver=throttle,node-name=drive-disk0-vm,throttle-group=throttle-disk0,file=drive-disk0-vm-base" in argv
    e = next(e for e in c.expectations if e.selector == "limits.bps_read")
    assert (e.wanted, e.presented, e.tolerance) == (4194304, 4194304, 0.15)
    spec = next(w for w in c.guest_cmdline if w.startswith("guestcompat.rate="))
    assert "0000:03:00.0/0/bps_read/65536/64+0000:03:00.0/1/bps_read/65536/64" in spec.split("=", 1)[1].split(",")


def test_vm_limits_are_validated_like_disk_limits(profile_dir):
    profile_dir("t/bad", 'extends = "vmware/esxi-6.5"\n[limits]\nbps_total = 8192\nbps_read = 8192\n')
    with pytest.raises((ProfileError, ValidationError), match="bps_total cannot be combined"):
        load("t/bad")


def _doc(*rates):
    return {"format": "guestcompat-probe", "version": 1, "rate": {str(i): r for i, r in enumerate(rates)}}


def _part(target, group="0", status="0", count="64"):
    return {"spec": f"0000:03:00.0/{target}/bps_read/65536/{count}", "device": f"sd{target}", "group": group,
            "status": status, "start": "5.00", "end": "7.00"}


def test_group_rate_is_the_sum_over_the_groups_time():
    fp = Fingerprint.from_document(_doc(_part(0), _part(1)))
    assert observe(fp, "limits.bps_read") == 2 * 64 * 65536 // 2
    assert observe(Fingerprint.from_document(_doc(_part(0), _part(1, status="1"))), "limits.bps_read") is None
    assert observe(Fingerprint.from_document(_doc()), "limits.bps_read") is None


def test_malformed_group_is_a_probe_error():
    with pytest.raises(ProbeError, match="group"):
        Fingerprint.from_document(_doc(_part(0, group="x")))


def test_libvirt_shares_the_group_by_name_or_passes_it_once(profile_dir):
    from guestcompat.emulation.libvirt_xml import render

    # LSI controller (native <disk>): both disks' <iotune> name the group
    profile_dir("t/lv", TWO_DISKS.format(extra="").replace("vmware/esxi-6.5", "vmware/esxi-5.0")
                .replace("limits = { iops_write = 100 }", ""))
    xml = render(compile_profile(load("t/lv"), resolve_target())).xml
    assert xml.count("<group_name>throttle-vm</group_name>") == 2
    # PVSCSI (passed through): the group's -object once, however many disks join it
    xml = render(_compiled(profile_dir, name="t/lv2")).xml
    assert xml.count("throttle-group,id=throttle-vm") == 1
