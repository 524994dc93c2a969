"""VIO placement (pseries): the profile's ``[[vio.devices]]`` → ``-device …,reg=`` and expectations.

Each device is a node ``/vdevice/<name>@<reg>`` in the guest's device tree.
The machine creates some nodes itself (catalogue ``vio_fixed``: the console
and the NVRAM); a profile may state them too, at the same ``reg`` and kind,
to say the guest should see them — they are then checked, not created twice.
Every node the guest shows must be covered by an expectation (the harness
fails unexpected nodes), so the machine's own nodes always get one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from guestcompat.bridges.spapr_vio import VioSlot, check
from guestcompat.detection.selectors import Vdevice
from guestcompat.emulation.fidelity import Expectation
from guestcompat.emulation.qemuopts import opts
from guestcompat.errors import TopologyError
from guestcompat.profiles.catalog import Catalog, DeviceKind, Machine
from guestcompat.profiles.model import Profile, VioDevice

MACHINE_REASON = "created by the QEMU machine type itself"


@dataclass(frozen=True)
class VioPresented:
    """One VIO device the guest will see."""

    slot: VioSlot
    kind: DeviceKind
    qemu_id: str | None
    """None for a device the machine creates by itself."""
    wanted: bool
    """The profile states it."""


@dataclass
class VioPlan:
    devices: tuple[VioPresented, ...] = ()
    argv: list[str] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)
    modaliases: list[str] = field(default_factory=list)

    @property
    def by_name(self) -> dict[str, VioPresented]:
        return {d.slot.name: d for d in self.devices}


def plan_vio(profile: Profile, catalog: Catalog, machine: Machine, machine_name: str) -> VioPlan:
    if profile.vio.devices and not machine.vio:
        raise TopologyError(f"vio.devices: machine type {machine_name!r} has no PAPR VIO bus "
                            f"({profile.vio.devices[0].name} cannot be placed)")
    fixed = {f.reg: catalog.kind(f.kind, "machine") for f in machine.vio_fixed}
    wanted: dict[int, VioDevice] = {}
    slots: list[VioSlot] = []
    kinds: dict[str, DeviceKind] = {}
    for device in profile.vio.devices:
        key = f"vio.devices[{device.name}]"
        kind = catalog.kind(device.kind, f"{key}.kind")
        if kind.vio is None:
            raise TopologyError(f"{key}: kind {device.kind!r} is a PCI device; declare it under pci.devices")
        if device.reg in fixed:
            if fixed[device.reg].name != kind.name:
                raise TopologyError(f"{key}: reg {device.reg:#x} is the machine's own "
                                    f"{fixed[device.reg].vio.name}@{device.reg:x} ({fixed[device.reg].summary}); "
                                    f"choose another reg")
            wanted[device.reg] = device
            continue
        if kind.qemu is None:
            raise TopologyError(f"{key}: QEMU has no model of {kind.summary} ({kind.name})")
        if kind.role != "nic" and device.mac is not None:
            raise TopologyError(f"{key}.mac: {kind.name} is not a NIC")
        wanted[device.reg] = device
        slots.append(VioSlot(device.name, device.reg, kind.vio.name))
        kinds[device.name] = kind
    for reg, kind in fixed.items():
        name = wanted[reg].name if reg in wanted else f"machine:{kind.name}"
        slots.append(VioSlot(name, reg, kind.vio.name, fixed=True))
        kinds[name] = kind
    ordered = check(slots)
    plan = VioPlan(tuple(VioPresented(s, kinds[s.name], None if s.fixed else s.name, s.reg in wanted)
                         for s in ordered))
    for presented in plan.devices:
        _emit(plan, presented, wanted.get(presented.slot.reg))
        _expect(plan, presented)
    return plan


def _emit(plan: VioPlan, presented: VioPresented, device: VioDevice | None) -> None:
    if presented.qemu_id is None or device is None:
        return
    kind = presented.kind
    assert kind.qemu is not None and kind.vio is not None
    props: dict[str, object] = {"id": presented.qemu_id, "reg": f"{presented.slot.reg:#x}"}
    if kind.role == "nic":
        netdev = f"net-{presented.qemu_id}"
        plan.argv += ["-netdev", opts("user", id=netdev, restrict=True)]
        props["netdev"] = netdev
        props["mac"] = device.mac
    plan.argv += ["-device", opts(kind.qemu.driver, **props)]
    plan.modaliases.append(kind.vio.modalias())


def _expect(plan: VioPlan, presented: VioPresented) -> None:
    kind, node, subject = presented.kind, presented.slot.path, presented.slot.name
    assert kind.vio is not None
    reason = None if presented.wanted else MACHINE_REASON
    want = (lambda v: v) if presented.wanted else (lambda v: None)
    plan.expectations.append(Expectation("placement", str(Vdevice(node, "present")), want(True), True, reason, subject))
    for prop, value in (("name", kind.vio.name), ("device_type", kind.vio.device_type),
                        ("compatible", kind.vio.compatible), ("reg", f"{presented.slot.reg:#010x}")):
        plan.expectations.append(Expectation("ids", str(Vdevice(node, prop)), want(value), value, reason, subject))
