"""The PCI hole below 4 GiB (issue 26): .vmx pciHole.start, the compiled max-ram-below-4g, and the guest's e820."""

from __future__ import annotations

from pathlib import Path

from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.emulation.arches import resolve_target
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.fidelity import Fidelity
from guestcompat.harness.observe import observe
from guestcompat.profiles.importers.vmx import import_vmx
from guestcompat.profiles.loader import load

SAMPLE = Path(__file__).parent.parent / "data" / "esxi67-web01.vmx"

BASE = """
extends = "vmware/esxi-6.5"
[platform]
memory_mb = {memory}
"""


def _compiled(profile_dir, memory: int, hole: int | None, name: str):
    text = BASE.format(memory=memory) + (f"pci_hole_start_mb = {hole}\n" if hole else "")
    profile_dir(name, text)
    c = compile_profile(load(name), resolve_target())
    return c, next(e for e in c.expectations if e.selector == "kernel.ram_below_4g_mb")


def test_vmx_pci_hole_start_is_imported_and_a_bad_one_is_listed():
    text = SAMPLE.read_text()
    assert import_vmx(text + 'pciHole.start = "2048"\n', "i/a", "a.vmx").profile.platform.pci_hole_start_mb == 2048
    assert import_vmx(text, "i/b", "b.vmx").profile.platform.pci_hole_start_mb is None
    bad = import_vmx(text + 'pciHole.start = "9000"\n', "i/c", "c.vmx")
    assert bad.profile.platform.pci_hole_start_mb is None
    assert any("pcihole.start" in note and "9000" in note for note in bad.notes)


def test_hole_below_the_ram_is_compiled_to_max_ram_below_4g(profile_dir):
    c, e = _compiled(profile_dir, 768, 512, "t/h1")
    assert "max-ram-below-4g=512M" in " ".join(c.argv)
    assert (e.wanted, e.presented, e.fidelity) == (512, 512, Fidelity.EXACT)


def test_ram_that_fits_below_the_hole_moves_nothing(profile_dir):
    c, e = _compiled(profile_dir, 512, None, "t/h2")
    assert "max-ram-below-4g" not in " ".join(c.argv)
    assert (e.wanted, e.presented) == (512, 512)


def test_vmware_default_hole_for_a_large_vm(profile_dir):
    c, e = _compiled(profile_dir, 3328, None, "t/h3")  # QEMU's own default would keep all 3.25 GiB low
    assert "max-ram-below-4g=3072M" in " ".join(c.argv)
    assert (e.wanted, e.presented) == (3072, 3072)


def test_a_hole_above_3_gib_is_a_deviation_with_its_reason(profile_dir):
    _, e = _compiled(profile_dir, 4096, 3584, "t/h4")
    assert (e.wanted, e.presented, e.fidelity) == (3584, 3072, Fidelity.APPROXIMATE)
    assert "capped at 3 GiB" in e.reason


def test_ram_below_4g_read_from_the_e820_lines():
    doc = {"format": "guestcompat-probe", "version": 1, "kernel_log": [
        "[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
        "[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x000000001ffdffff] usable",
        "[    0.000000] BIOS-e820: [mem 0x000000001ffe0000-0x000000001fffffff] reserved",
        "[    0.000000] BIOS-e820: [mem 0x00000000fffc0000-0x00000000ffffffff] reserved",
        "[    0.000000] BIOS-e820: [mem 0x0000000100000000-0x000000010fffffff] usable"]}
    assert observe(Fingerprint.from_document(doc), "kernel.ram_below_4g_mb") == 512
    assert observe(Fingerprint.from_document({"format": "guestcompat-probe", "version": 1}),
                   "kernel.ram_below_4g_mb") is None
