"""Every bundled VMware profile booted on guestcompat's patched QEMU (images/patches/, built by `make setup`).

The same profiles boot on stock QEMU in test_vmware_family.py / test_esxi65_boot.py; here the
guest must show what only the patched build can present (VMware's ids and chipset layout, the
CPUID signature, GETHZ, the user-mode backdoor) and every check must pass, with fewer known
deviations than on stock QEMU, each still predicted by the fidelity report.
"""

from __future__ import annotations

import pytest

from shared_boots import direct_boot

from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.target import Target
from guestcompat.harness.compare import Status
from guestcompat.harness.observe import observe
from guestcompat.profiles.loader import list_profiles, load

pytestmark = pytest.mark.boot

STOCK = Target("x86_64", "pc", "tcg")
PATCHED = Target("x86_64", "pc", "tcg", qemu_binary="patched")
VMWARE = sorted(s.name for s in list_profiles() if s.name.startswith("vmware/") and not load(s.name).abstract)
BIOS = [name for name in VMWARE if (load(name).platform.firmware or "bios") == "bios"]


@pytest.mark.parametrize("name", VMWARE)
def test_profile_passes_on_the_patched_build_with_fewer_deviations(name):
    outcome = direct_boot(name, PATCHED)
    assert outcome.passed, [c.line() for c in outcome.checks if c.status is Status.FAIL]
    stock = compile_profile(load(name), STOCK).report.deviations()
    patched = compile_profile(load(name), PATCHED).report.deviations()
    deviations = [c for c in outcome.checks if c.status is Status.DEVIATION]
    assert len(deviations) == len(patched) < len(stock)


@pytest.mark.parametrize("name", VMWARE)
def test_guest_detects_vmware_by_cpuid_and_reaches_the_backdoor_from_user_mode(name):
    fp = direct_boot(name, PATCHED).fingerprint
    assert observe(fp, "cpuid.hypervisor_bit") is True
    assert observe(fp, "cpuid.hypervisor_signature") == "VMwareVMware"
    assert "Hypervisor detected: VMware" in fp.hypervisor_lines
    assert observe(fp, "kernel.vmware_tsc_from_hypervisor") is True       # GETHZ answered
    assert observe(fp, "tools.systemd_detect_virt") == "vmware"
    assert observe(fp, "tools.virt_what") == ("vmware",)
    assert observe(fp, "tools.vmware_checkvm") is True                    # no ioperm granted


@pytest.mark.parametrize("name", BIOS)
def test_bios_profiles_show_the_440bx_piix4_layout(name):
    fp = direct_boot(name, PATCHED).fingerprint
    seen = {f.address: (f.vendor, f.device) for f in fp.pci if f.address.startswith("00:0")}
    assert seen["00:00.0"] == (0x8086, 0x7190)
    assert seen["00:07.0"] == (0x8086, 0x7110)
    assert seen["00:07.1"] == (0x8086, 0x7111)
    assert seen["00:07.3"] == (0x8086, 0x7113)
    assert "00:01.1" not in seen and "00:01.3" not in seen                 # no PIIX3 left at 00:01.x
