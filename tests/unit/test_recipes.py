"""The compiler's recipes follow what a binary's capabilities say, never its name (emulation/recipes.py).

Stock QEMU's real capabilities are extended here with the properties guestcompat's patches add,
one group at a time: each group must switch on exactly its recipe and nothing else.
"""

from __future__ import annotations

import dataclasses

from guestcompat.emulation.arches import resolve_target
from guestcompat.emulation.arches.x86_64 import X86_64
from guestcompat.emulation.capabilities import Capabilities, capabilities_for
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.recipes import identity_properties
from guestcompat.emulation.report import argv_lines, fidelity_lines
from guestcompat.harness.matrix_plan import plan
from guestcompat.images.ovmf_build import OvmfBuild
from guestcompat.profiles.loader import load

ID_PROPS = tuple(identity_properties().values())
CPU_PROPS = ("x-tcg-vmware-cpuid", "x-tcg-host-freq", "x-vmware-backdoor-user")


def stock() -> Capabilities:
    return capabilities_for(resolve_target().qemu_binary or "qemu-system-x86_64")


def extended(caps: Capabilities, *, identity: bool = False, cpu: bool = False, piix_slot: bool = False,
             vmci: bool = False) -> Capabilities:
    devices = {name: props + (ID_PROPS if identity else ()) for name, props in caps.device_properties.items()}
    cpus = {name: props + (CPU_PROPS if cpu else ()) for name, props in caps.cpu_properties.items()}
    machines = {name: props + (("x-piix-slot",) if piix_slot else ()) for name, props in caps.machine_properties.items()}
    types = caps.device_types + (("vmware-vmci",) if vmci else ())
    if vmci:
        devices["vmware-vmci"] = ("addr", "multifunction", *ID_PROPS)
    return dataclasses.replace(caps, device_properties=devices, cpu_properties=cpus, machine_properties=machines,
                               device_types=types)


def argv(name: str, caps: Capabilities) -> tuple[str, ...]:
    return compile_profile(load(name), resolve_target(), caps).argv


def option(args: tuple[str, ...], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]


def test_stock_capabilities_give_the_stock_recipe():
    args = argv("vmware/esxi-6.5", stock())
    assert not any("x-id-" in a or "x-piix-slot" in a or "x-tcg-" in a for a in args)
    assert "hypervisor=off" in option(args, "-cpu")[0]


def test_identity_properties_alone_set_real_ids_but_keep_the_machine_layout():
    args = argv("vmware/esxi-6.5", extended(stock(), identity=True))
    devices = option(args, "-device")
    assert any(d.startswith("pvscsi,") and "x-id-class=0x010700" in d for d in devices)
    assert any(d.startswith("pcie-root-port,") and "x-id-vendor=0x15ad" in d and "x-id-device=0x07a0" in d
               for d in devices)
    assert not any("x-piix-slot" in m for m in option(args, "-machine"))      # needs the machine option too
    assert any(d.startswith("pci-bridge,id=agp,") and "addr=0xe" in d for d in devices)  # substitute kept


def test_the_440bx_layout_needs_the_machine_option_and_identity_on_every_function():
    args = argv("vmware/esxi-6.5", extended(stock(), identity=True, piix_slot=True))
    assert "x-piix-slot=7" in option(args, "-machine")[0]
    globals_ = option(args, "-global")
    assert "i440FX.x-id-device=0x7190" in globals_ and "PIIX3.x-id-device=0x7110" in globals_
    assert any(d.startswith("pci-bridge,id=agp,") and "addr=0x1," in d and "x-id-device=0x7191" in d
               for d in option(args, "-device"))


def ovmf(tmp_path, capabilities: tuple[str, ...]) -> OvmfBuild:
    """A firmware build whose manifest lists *capabilities* (the compiler reads nothing else of it)."""
    return OvmfBuild(tmp_path / "guestcompat-ovmf-0123456789abcdef", "2022.11-6+deb12u2", (), (), capabilities, 1.0)


def with_firmware(monkeypatch, build: OvmfBuild | None) -> None:
    monkeypatch.setattr(X86_64, "firmware_builds", lambda self: {"efi": build})


LAYOUT_440BX = ("host-bridge-440bx", "piix4-any-slot")


def test_efi_profiles_keep_qemus_layout_and_say_why_without_a_firmware_for_it(monkeypatch, tmp_path):
    for build in (None, ovmf(tmp_path, ("host-bridge-440bx", "boot-pvscsi"))):  # not built; one capability short
        with_firmware(monkeypatch, build)
        compiled = compile_profile(load("vmware/esxi-7.0-efi"), resolve_target(),
                                   extended(stock(), identity=True, piix_slot=True, vmci=True))
        assert not any("x-piix-slot" in m for m in option(compiled.argv, "-machine"))
        assert option(compiled.argv, "-bios") == ["/usr/share/ovmf/OVMF.fd"] and not option(compiled.argv, "-drive")
        vmci = [e for e in compiled.expectations if e.selector == "pci[00:07.7].present"]
        assert vmci and vmci[0].presented is None and "OVMF" in vmci[0].reason  # 00:07.7 unscanned without 00:07.0
        assert compiled.firmware.startswith("Debian's OVMF")


def test_a_firmware_that_handles_the_440bx_layout_gives_efi_profiles_vmwares_layout(monkeypatch, tmp_path):
    build = ovmf(tmp_path, (*LAYOUT_440BX, "boot-pvscsi"))
    with_firmware(monkeypatch, build)
    compiled = compile_profile(load("vmware/esxi-8.0-efi"), resolve_target(),
                               extended(stock(), identity=True, piix_slot=True, vmci=True))
    assert "x-piix-slot=7" in option(compiled.argv, "-machine")[0]
    assert "i440FX.x-id-device=0x7190" in option(compiled.argv, "-global")
    assert not option(compiled.argv, "-bios")
    assert option(compiled.argv, "-drive") == [
        f"if=pflash,format=raw,unit=0,readonly=on,file={build.code}",
        f"if=pflash,format=raw,unit=1,snapshot=on,file={build.vars}"]
    by_selector = {e.selector: e for e in compiled.expectations}
    assert by_selector["pci[00:07.7].present"].presented is True          # VMCI behind PIIX4 at 00:07.0
    assert by_selector["pci[00:00.0].device"].presented == "0x7190"
    assert "guestcompat OVMF" in compiled.firmware and "host-bridge-440bx" in compiled.firmware
    # compile output names the build symbolically: golden files do not depend on the cache path
    lines = argv_lines(compiled)
    assert "-drive if=pflash,format=raw,unit=0,readonly=on,file=@ovmf-guestcompat/OVMF_CODE_4M.fd" in lines
    assert not any(str(tmp_path) in line for line in lines)
    assert fidelity_lines(compiled)[1] == f"firmware: {build.summary()}"


def test_stock_qemu_keeps_debians_ovmf_even_with_guestcompats_built(monkeypatch, tmp_path):
    with_firmware(monkeypatch, ovmf(tmp_path, LAYOUT_440BX))
    args = argv("vmware/esxi-8.0-efi", stock())
    assert option(args, "-bios") == ["/usr/share/ovmf/OVMF.fd"] and not option(args, "-drive")
    assert not any("x-piix-slot" in m for m in option(args, "-machine"))


def test_bios_profiles_never_ask_for_a_firmware_build(monkeypatch, tmp_path):
    with_firmware(monkeypatch, ovmf(tmp_path, LAYOUT_440BX))
    compiled = compile_profile(load("vmware/esxi-6.5"), resolve_target(),
                               extended(stock(), identity=True, piix_slot=True, vmci=True))
    assert not option(compiled.argv, "-drive") and not option(compiled.argv, "-bios") and compiled.firmware == ""


def test_cpu_properties_switch_the_detection_path_to_cpuid():
    compiled = compile_profile(load("vmware/esxi-6.5"), resolve_target(), extended(stock(), cpu=True))
    cpu = option(compiled.argv, "-cpu")[0]
    assert "x-tcg-vmware-cpuid=on" in cpu and "x-vmware-backdoor-user=on" in cpu
    assert "hypervisor=off" not in cpu and "tsc-frequency" not in cpu
    by_selector = {e.selector: e for e in compiled.expectations}
    assert by_selector["cpuid.hypervisor_signature"].presented == "VMwareVMware"
    assert by_selector["kernel.vmware_tsc_from_hypervisor"].presented is True
    assert by_selector["tools.vmware_checkvm"].presented is True
    assert not [b for b in compiled.blocked if b.feature in ("cpuid-hypervisor-signature", "backdoor-gethz",
                                                              "backdoor-from-user-mode")]


def test_patched_on_ppc64_is_a_skip_with_its_reason():
    [cell] = plan(["power/pseries-vscsi"], qemu_binaries=["patched"])
    assert cell.skip_reason and "x86_64 only" in cell.skip_reason


def test_capabilities_name_the_firmware_build_and_the_layouts_it_enables(tmp_path):
    from guestcompat.emulation.capreport import firmware_json, firmware_text
    from guestcompat.profiles.catalog import load_catalog

    build = ovmf(tmp_path, (*LAYOUT_440BX, "boot-pvscsi"))
    catalog = load_catalog()
    on_stock = firmware_json({"efi": build}, stock(), catalog)["efi"]
    assert on_stock["summary"] == build.summary() and on_stock["code"] == str(build.code)
    assert on_stock["layouts"] == [{"machine": "pc", "layout": "vmware-440bx", "binary_has_options": False}]
    patched = firmware_json({"efi": build}, extended(stock(), piix_slot=True), catalog)["efi"]
    assert patched["layouts"][0]["binary_has_options"] is True
    assert firmware_json({"efi": ovmf(tmp_path, ("boot-pvscsi",))}, stock(), catalog)["efi"]["layouts"] == []
    assert "not in the cache" in firmware_text({"efi": None}, stock(), catalog)[0]
