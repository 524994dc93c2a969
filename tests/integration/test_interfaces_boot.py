"""The multi-interface matrix for real: boot the VMware-only combination and a mixed one
(Xen's DMI vendor strings + a VMware serial + the VMware backdoor) under TCG; the guest's own
detectors must conclude what the table says, and every model must agree with its real tool.
2 boots (one at a time in this worker; xdist runs other modules beside it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared_boots import direct_boot

from guestcompat.detection import models
from guestcompat.harness.compare import Status
from guestcompat.harness.interfaces import TARGET, combination_row, render_markdown, InterfaceTable
from guestcompat.harness.run import RunOutcome
from guestcompat.profiles.ifcatalog import load_interfaces

pytestmark = pytest.mark.boot

def booted(name: str) -> RunOutcome:
    return direct_boot(name, TARGET)  # shared with test_libvirt.py's equality test (tests/support/shared_boots.py)


@pytest.mark.parametrize("name, real", [
    ("interfaces/vmware", {"linux": "VMware", "systemd-detect-virt": "vmware",
                           # "qemu": QEMU's default 'Manufacturer: QEMU' in SMBIOS types 4 and 17
                           "virt-what": "vmware,qemu", "vmware-checkvm": "vmware"}),
    # Mixed: the kernel believes the serial + backdoor, systemd-detect-virt checks DMI 'Xen' before
    # anything else, virt-what ignores a VMware serial and finds QEMU and AWS-on-Xen strings.
    ("interfaces/xen-vmware", {"linux": "VMware", "systemd-detect-virt": "xen", "virt-what": "qemu,aws",
                               "vmware-checkvm": "vmware"}),
])
def test_real_detectors_and_models_on_a_combination(name, real):
    outcome = booted(name)
    assert outcome.passed, [c.line() for c in outcome.checks if c.status is Status.FAIL]
    fp = outcome.fingerprint
    assert models.real_verdicts(fp) == real
    assert [d.line() for d in models.disagreements(fp)] == []
    assert models.hypervisor_bit(fp) is False          # TCG cannot say VMwareVMware: Linux's DMI path


def test_the_table_rows_of_the_booted_combinations():
    catalog = load_interfaces()
    rows = tuple(combination_row(n, catalog.combination[n].presents, booted(n).fingerprint)
                 for n in ("interfaces/vmware", "interfaces/xen-vmware"))
    assert all(not r.disagreeing for r in rows)
    md = render_markdown(InterfaceTable("qemu", (), rows))
    assert "| interfaces/xen-vmware | xen:dmi, xen:mac, vmware:dmi, vmware:backdoor | clear / (nothing) | " \
           "VMware ✓ | xen ✓ | qemu,aws ✓ | vmware ✓ | vmware |" in md


def test_an_unknown_combination_is_an_error_before_booting():
    res = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "interfaces", "vmware/esxi-6.5"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "not a combination of profiles/catalog/interfaces.toml: vmware/esxi-6.5" in res.stderr
