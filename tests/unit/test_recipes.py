"""The compiler's recipes follow what a binary's capabilities say, never its name (emulation/recipes.py).

Stock QEMU's real capabilities are extended here with the properties guestcompat's patches add,
one group at a time: each group must switch on exactly its recipe and nothing else.
"""

from __future__ import annotations

import dataclasses

from guestcompat.emulation.arches import resolve_target
from guestcompat.emulation.capabilities import Capabilities, capabilities_for
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.recipes import identity_properties
from guestcompat.harness.matrix_plan import plan
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


def test_efi_profiles_keep_qemus_layout_and_say_why():
    compiled = compile_profile(load("vmware/esxi-7.0-efi"), resolve_target(),
                               extended(stock(), identity=True, piix_slot=True, vmci=True))
    assert not any("x-piix-slot" in m for m in option(compiled.argv, "-machine"))
    vmci = [e for e in compiled.expectations if e.selector == "pci[00:07.7].present"]
    assert vmci and vmci[0].presented is None and "OVMF" in vmci[0].reason     # 00:07.7 unscanned without 00:07.0


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
