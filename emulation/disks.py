"""Disks and CD-ROM drives → QEMU ``-blockdev``/``-device`` options and expectations, per controller bus.

A VMware guest boots from a disk on the controller VMware gave it: SCSI
(pvscsi, LSI Logic SAS, LSI Logic Parallel, BusLogic), SATA (AHCI), IDE
(the PIIX4's own) or NVMe. Each bus hangs its disks differently in QEMU
(a SCSI id, an AHCI port, an IDE channel and master/slave, an NVMe
namespace) and the guest reads their strings differently (SCSI INQUIRY as
given; libata's translation of ATA IDENTIFY; the NVMe controller's identify
data). Those differences are data (devices.toml ``[disk_buses.*]``); this
module only applies them, so a new bus is a catalogue entry, not code.

Expectations per disk: ``media`` (the disk is there, at its unit, as a disk
or a CD-ROM: the "boots from its own disk" check) and the strings the guest
reads, each as that bus's view turns the profile's strings into them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from guestcompat.detection.selectors import Disk as DiskSelector
from guestcompat.detection.selectors import DiskRate
from guestcompat.emulation.capabilities import Capabilities
from guestcompat.emulation.fidelity import Expectation
from guestcompat.emulation.pci import PciPlan
from guestcompat.emulation.qemuopts import opts
from guestcompat.emulation.recipes import disks_absent
from guestcompat.emulation.vio import VioPlan
from guestcompat.emulation import vm_limits
from guestcompat.errors import CompileError
from guestcompat.profiles.catalog import Catalog, DeviceKind, DiskBus, DiskStrings
from guestcompat.profiles.model import IMAGE_SUFFIXES, Disk, Profile

#: How far a guest's measured rate may be from a throttle limit: QEMU's leaky
#: bucket lets a burst of a tenth of a second through before it throttles.
RATE_TOLERANCE = 0.15
#: Seconds of I/O the probe runs per limit: long enough that the burst and
#: /proc/uptime's 10 ms resolution stay a few percent of the measurement.
RATE_SECONDS = 2



@dataclass(frozen=True)
class Controller:
    """A disk controller as this target presents it."""

    qemu_id: str
    kind: DeviceKind
    address: str
    """How disk selectors name it: the guest address (``03:00.0``) or ``vio:<reg>``."""
    bus_name: str
    bus: DiskBus
    absent: str | None
    """Why the guest sees no disk on it under this QEMU (measured), None when it does."""
    modalias: str | None = None
    """The guest driver the controller needs when the machine, not the profile, presents it (PIIX IDE)."""


def rate_probe(address: object, unit: int, metric: str, limit: int) -> str:
    """The probe's instruction to measure *metric* on a disk: ``PCI/target/metric/block_size/count``."""
    block = 65536 if metric.startswith("bps") else 4096
    per_second = limit / block if metric.startswith("bps") else limit
    count = max(1, round(per_second * RATE_SECONDS))
    return f"0000:{address}/{unit}/{metric}/{block}/{count}"


def find_controller(disk: Disk, profile: Profile, catalog: Catalog, pci: PciPlan, vio: VioPlan,
                    caps: Capabilities | None) -> Controller | str:
    """The controller *disk* hangs on, or why this target has none for it (a sentence)."""
    key = f"disks[{disk.name}].controller"
    if disk.controller in vio.by_name:
        device = vio.by_name[disk.controller]
        return _controller(device.qemu_id, device.kind, f"vio:{device.slot.reg:x}", catalog, caps, key)
    if disk.controller in pci.by_name and pci.by_name[disk.controller].qemu_id is not None:
        presented = pci.by_name[disk.controller]
        return _controller(presented.qemu_id, presented.kind, str(pci.presented_address(disk.controller)),
                           catalog, caps, key)
    wanted = next((d for d in profile.pci.devices if d.name == disk.controller), None)
    kind = catalog.kind(wanted.kind, key) if wanted else None
    bus = catalog.disk_buses.get(kind.disk_bus) if kind and kind.disk_bus else None
    if kind is not None and bus is not None and bus.machine:
        # The machine's own controller of this bus (PIIX IDE), wherever this target's machine has it.
        for name, presented in pci.by_name.items():
            if name.startswith("machine:") and presented.kind.disk_bus == kind.disk_bus:
                return Controller("", presented.kind, str(pci.presented_address(name)), kind.disk_bus, bus, None,
                                  (presented.ids or presented.kind.presented_ids()).modalias())
    reason = pci.by_name[disk.controller].reason if disk.controller in pci.by_name else None
    return (f"{disk.controller} is not presented on this target"
            + (f" ({reason})" if reason else " (the profile omits it here)"))


def _controller(qemu_id: str | None, kind: DeviceKind, address: str, catalog: Catalog,
                caps: Capabilities | None, key: str) -> Controller:
    if qemu_id is None:
        raise CompileError(f"{key}: the controller is not presented on this target")
    if kind.disk_bus is None or kind.disk_bus not in catalog.disk_buses:
        raise CompileError(f"{key}: {kind.name} ({kind.summary}) takes no disks")
    return Controller(qemu_id, kind, address, kind.disk_bus, catalog.disk_buses[kind.disk_bus],
                      disks_absent(kind, caps))


def controller_properties(profile: Profile, catalog: Catalog) -> dict[str, dict[str, object]]:
    """Properties a controller takes from its disks (QEMU's nvme carries the serial number the
    guest reads for every namespace: the first disk's, else VMware's), by controller name."""
    out: dict[str, dict[str, object]] = {}
    for device in profile.pci.devices:
        kind = catalog.kinds.get(device.kind)
        if kind is None or kind.qemu is None or not kind.qemu.controller_serial or kind.disk_bus is None:
            continue
        bus = catalog.disk_buses[kind.disk_bus]
        serial = next((d.serial for d in profile.disks if d.controller == device.name and d.serial), None)
        out[device.name] = {"serial": serial or bus.vmware.serial or device.name}
    return out


@dataclass
class DiskPlan:
    argv: list[str]
    expectations: list[Expectation]
    modaliases: list[str]
    rates: list[str]
    visible: int
    """Disks and drives the guest will see (the probe waits for them)."""


def plan_disks(profile: Profile, catalog: Catalog, pci: PciPlan, vio: VioPlan,
               caps: Capabilities | None) -> DiskPlan:
    plan = DiskPlan([], [], [], [], 0)
    used: dict[tuple[str, int], str] = {}
    shared = vm_limits.plan(profile, plan.argv)  # issue 26: the VM-wide throttle group, if any
    for disk in profile.disks:
        key = f"disks[{disk.name}]"
        found = find_controller(disk, profile, catalog, pci, vio, caps)
        if isinstance(found, str):
            wanted_at = next((d.address for d in profile.pci.devices if d.name == disk.controller), "00:00.0")
            plan.expectations.append(Expectation("disks", str(DiskSelector(wanted_at, disk.unit, "media")),
                                                 disk.media, None, found, disk.name))
            continue
        _check_unit(disk, found, key, used)
        _check_strings(disk, found.bus, key)
        node = f"drive-{disk.name}"
        if shared is not None and disk.image and not found.bus.read_only_disks:
            raise CompileError(f"{key}: an image on an ATA disk is opened through a throwaway overlay (-drive "
                               f"snapshot=on), which cannot join the VM-wide throttle group (limits)")
        inner = vm_limits.inner(node) if shared is not None and disk.media == "disk" else node
        plan.argv += _backend(disk, inner, found.bus, key) + (vm_limits.throttle_node(node, inner) if inner != node else [])
        if shared is not None and inner != node and not found.absent:
            shared.append((found.address, disk.unit))
        plan.argv += ["-device", opts(_qemu_device(disk, found.bus, key), **_device_props(disk, found, node))]
        plan.modaliases += found.bus.cdrom_modaliases if disk.media == "cdrom" else found.bus.modaliases
        plan.modaliases += [found.modalias] if found.modalias else []
        if found.absent is None and disk.media == "disk":
            plan.visible += 1
        plan.expectations += _expectations(disk, found)
        for metric, limit in (disk.limits.items() if disk.limits else ()):
            plan.expectations.append(Expectation("disks", str(DiskRate(found.address, disk.unit, metric)), limit,
                                                 None if found.absent else limit, found.absent, disk.name,
                                                 tolerance=RATE_TOLERANCE))
            if not found.absent:
                plan.rates.append(rate_probe(found.address, disk.unit, metric, limit))
    if profile.limits is not None:
        vm_limits.expect(profile.limits, shared, plan.expectations, plan.rates)
    return plan


def _check_unit(disk: Disk, found: Controller, key: str, used: dict[tuple[str, int], str]) -> None:
    bus = found.bus
    if disk.unit >= bus.units:
        raise CompileError(f"{key}.unit: {disk.unit} is past the {bus.units} units a {found.bus_name} controller "
                           f"has (0-{bus.units - 1})")
    if disk.unit in bus.reserved_units:
        raise CompileError(f"{key}.unit: {bus.reserved_units[disk.unit]}")
    if disk.unit >= bus.qemu_unit_limit():
        raise CompileError(f"{key}.unit: {disk.unit} is past the {bus.qemu_unit_limit()} units QEMU's "
                           f"{found.kind.qemu.driver if found.kind.qemu else found.kind.name} has "
                           f"(VMware's has {bus.units}); move the disk to a lower unit")
    slot = (found.address, disk.unit)
    if slot in used:
        raise CompileError(f"{key}.unit: {found.address} unit {disk.unit} is already taken by disk {used[slot]!r}")
    used[slot] = disk.name
    if disk.media == "cdrom" and found.bus.cdrom_device is None:
        raise CompileError(f"{key}.media: a {found.bus_name} controller takes no CD-ROM drive (VMware puts them on "
                           f"IDE, SATA or SCSI)")


def _atapi(disk: Disk, bus: DiskBus) -> bool:
    """A CD-ROM drive on an ATA bus: it answers INQUIRY itself, and its strings are INQUIRY's."""
    return disk.media == "cdrom" and bus.view == "ata"


def _check_strings(disk: Disk, bus: DiskBus, key: str) -> None:
    if _atapi(disk, bus):
        limits = {"vendor": 8, "model": 16, "revision": 4}
        bad = [f for f in ("vendor", "model", "revision") if getattr(disk, f) and len(getattr(disk, f)) > limits[f]]
        if bad:
            raise CompileError(f"{key}.{bad[0]}: a CD-ROM's INQUIRY {bad[0]} carries {limits[bad[0]]} characters")
        if disk.serial is not None:
            raise CompileError(f"{key}.serial: the guest reads no serial of a CD-ROM drive")
        return
    for field in ("vendor", "model", "revision", "serial"):
        value = getattr(disk, field)
        if value is None:
            continue
        limit = bus.limits.get(field)
        if limit is None:
            raise CompileError(f"{key}.{field}: a disk on this bus reports no {field} (it has: "
                               f"{', '.join(bus.limits) or 'none'})")
        if len(value) > limit:
            raise CompileError(f"{key}.{field}: {value!r} is {len(value)} characters; this bus carries {limit}")


def _backend(disk: Disk, node: str, bus: DiskBus, key: str) -> list[str]:
    base_node = f"{node}-base" if disk.limits is not None else node
    if disk.image and not bus.read_only_disks and disk.media == "disk":
        if disk.limits is not None:
            raise CompileError(f"{key}.limits: an image on an ATA disk is opened through a throwaway overlay "
                               f"(-drive snapshot=on), which takes no throttle group here; put the limits on a "
                               f"blank disk or a SCSI one")
        fmt = IMAGE_SUFFIXES[Path(disk.image).suffix.lower()]
        # The image itself is never written: QEMU writes the guest's changes to a temporary file it deletes.
        return ["-drive", opts(None, **{"file": disk.image, "format": fmt, "if": "none", "id": node,
                                        "snapshot": True})]
    if disk.image:
        fmt = IMAGE_SUFFIXES[Path(disk.image).suffix.lower()]
        argv = ["-blockdev", opts(None, **{"driver": "file", "node-name": f"{node}-file", "filename": disk.image,
                                           "read-only": True}),
                "-blockdev", opts(None, **{"driver": fmt, "node-name": base_node, "file": f"{node}-file",
                                           "read-only": True})]
    elif disk.media == "cdrom":
        return []  # an empty drive: no medium
    else:
        argv = ["-blockdev", opts(None, **{"driver": "null-co", "node-name": base_node, "size": disk.size_mb << 20,
                                           "read-zeroes": True})]
    if disk.limits is not None:
        group = f"throttle-{disk.name}"
        argv += ["-object", opts("throttle-group", id=group,
                                 **{f"x-{m.replace('_', '-')}": v for m, v in disk.limits.items()}),
                 "-blockdev", opts(None, **{"driver": "throttle", "node-name": node, "throttle-group": group,
                                            "file": base_node})]
    return argv


def _qemu_device(disk: Disk, bus: DiskBus, key: str) -> str:
    if disk.media == "cdrom":
        assert bus.cdrom_device is not None
        return bus.cdrom_device
    return bus.qemu_device


def _device_props(disk: Disk, found: Controller, node: str) -> dict[str, object]:
    fields = {"controller": found.qemu_id, "unit": disk.unit, "channel": disk.unit // 2, "device": disk.unit % 2,
              "nsid": disk.unit + 1}
    props: dict[str, object] = {"id": disk.name}
    if disk.image or disk.media == "disk":
        props["drive"] = node
    props["bus"] = found.bus.bus.format(**fields)
    for prop, template in found.bus.unit_properties.items():
        props[prop] = int(template.format(**fields))
    for field, prop in ({} if _atapi(disk, found.bus) else found.bus.identity).items():
        value = getattr(disk, field)
        if value is not None:
            props[prop] = value
    return props


def guest_strings(disk: Disk, bus: DiskBus) -> tuple[DiskStrings, DiskStrings, str | None]:
    """(what the guest reads on VMware, what it reads here, why they differ) for *disk*'s strings."""
    wanted = DiskStrings(vendor=disk.vendor, model=disk.model, revision=disk.revision, serial=disk.serial)
    if _atapi(disk, bus):
        # An ATAPI drive answers INQUIRY itself; the profile states VMware's INQUIRY strings.
        return wanted, _over(wanted, bus.qemu_cdrom), bus.qemu_cdrom_reason
    if bus.view == "ata":
        seen = _libata_view(wanted)
        return seen, seen, None
    return wanted, _over(wanted, bus.qemu_fixed), bus.qemu_fixed_reason


def _over(wanted: DiskStrings, fixed: DiskStrings | None) -> DiskStrings:
    """*wanted* with the strings QEMU answers whatever its properties put over the ones stated."""
    if fixed is None:
        return wanted
    return wanted.model_copy(update={f: v for f, v in fixed.model_dump(exclude_none=True).items()
                                     if getattr(wanted, f) is not None})


def _libata_view(ata: DiskStrings) -> DiskStrings:
    """What Linux shows for an ATA disk (libata's SCSI translation): vendor ATA, the model's first
    16 characters, and firmware characters 5-8 (1-4 when those are blank); no serial in sysfs."""
    revision = None
    if ata.revision is not None:
        padded = ata.revision.ljust(8)
        revision = (padded[4:8] if padded[4:8].strip() else padded[0:4]).rstrip()
    return DiskStrings(vendor="ATA" if ata.model is not None else None,
                       model=ata.model[:16].rstrip() if ata.model is not None else None, revision=revision)


def _expectations(disk: Disk, found: Controller) -> list[Expectation]:
    out = [Expectation("disks", str(DiskSelector(found.address, disk.unit, "media")), disk.media,
                       None if found.absent else disk.media, found.absent, disk.name)]
    wanted, presented, reason = guest_strings(disk, found.bus)
    for field in ("vendor", "model", "revision", "serial"):
        value = getattr(wanted, field)
        if value is None:
            continue
        shown = None if found.absent else getattr(presented, field)
        why = found.absent or (reason if shown != value else None)
        out.append(Expectation("disks", str(DiskSelector(found.address, disk.unit, field)), value, shown, why,
                               disk.name))
    return out
