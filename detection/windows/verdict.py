"""The Windows verdict of a move: source view vs target view.

Per PCI function: **same** (Windows finds its instance and keeps its driver
and settings), **new** (Windows files it under a new instance and installs
it again: *driver present* if an inbox or VMware Tools driver matches its
ids, *driver missing* otherwise) or **gone** (its settings stay with a ghost
device). A source and a target function are paired by instance identity
first, then by position (same device/function chain), then by ids (a device
that moved), so every "new" says what changed.

Boot (reference §4): Windows starts the boot disk's controller and every
bridge above it before PnP runs. Each of them must keep its instance, or be
new with ids that map (CriticalDeviceDatabase up to Windows 7 / 2008 R2,
DriverDatabase from Windows 8) to a boot-start service: one that is boot
start on every installation (pci.sys for bridges) or the service the source
already booted from. Anything else is 0x7B INACCESSIBLE_BOOT_DEVICE.

Activation: activation.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from guestcompat.detection.windows.activation import Activation, activation
from guestcompat.detection.windows.view import WinDevice, WindowsView

SAME, NEW, GONE = "same", "new", "gone"
#: exit status a CI job gates on: boot (default: only a predicted 0x7B fails), nic (also a NIC that loses its
#: settings), any (any function that is new or gone)
FAIL_ON = ("boot", "nic", "any")


@dataclass(frozen=True)
class DeviceRow:
    status: str                                # same | new | gone
    source: WinDevice | None
    target: WinDevice | None
    reasons: tuple[str, ...] = ()
    driver: str | None = None                  # new: "present" | "missing"

    @property
    def device(self) -> WinDevice:
        return self.target or self.source      # type: ignore[return-value]

    @property
    def label(self) -> str:
        return f"{self.status}" + (f" – driver {self.driver}" if self.driver else "")


@dataclass(frozen=True)
class BootStep:
    key: str                                   # target function key (controller first, bridges after)
    where: str
    ok: bool
    rule: str


@dataclass(frozen=True)
class BootVerdict:
    boots: bool | None                         # None: cannot tell (no boot disk on one side)
    steps: tuple[BootStep, ...]
    summary: str


@dataclass(frozen=True)
class NicLoss:
    source: WinDevice
    target: WinDevice | None
    why: str


@dataclass(frozen=True)
class WindowsVerdict:
    source: WindowsView
    target: WindowsView
    rows: tuple[DeviceRow, ...]
    boot: BootVerdict
    nics: tuple[NicLoss, ...]
    activation: Activation
    notes: tuple[str, ...] = field(default_factory=tuple)

    def count(self, status: str, driver: str | None = None) -> int:
        return sum(1 for r in self.rows if r.status == status and (driver is None or r.driver == driver))

    def exit_code(self, fail_on: str = "boot") -> int:
        """1 when the gate trips (a predicted boot failure; with ``nic`` also a NIC losing its settings;
        with ``any`` also any function that is new or gone), else 0."""
        if fail_on not in FAIL_ON:
            raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON)}")
        if self.boot.boots is False:
            return 1
        if fail_on in ("nic", "any") and self.nics:
            return 1
        if fail_on == "any" and any(r.status != SAME for r in self.rows):
            return 1
        return 0


def compare(source: WindowsView, target: WindowsView, injected: tuple[str, ...] = ()) -> WindowsVerdict:
    """The Windows verdict of moving the machine of ``source`` to the machine of ``target``.

    ``injected``: driver origins put into the guest before the move (``virtio-win``, as virt-v2v does: the
    files, the service with Start=0 and the DriverDatabase/CriticalDeviceDatabase entries)."""
    rows = _pair(source, target, injected)
    return WindowsVerdict(source, target, tuple(rows), _boot(source, target, rows, injected), _nics(rows),
                          activation(source, target), _notes(source, target) + tuple(
                              f"drivers from {o} are taken as injected before the move (boot start)" for o in injected))


def _installed(match, injected: tuple[str, ...]) -> bool:
    return match.entry is not None and (match.present or match.entry.origin in injected)


def _notes(source: WindowsView, target: WindowsView) -> tuple[str, ...]:
    notes = [f"source: {n}" for n in source.notes] + [f"target: {n}" for n in target.notes]
    s, t = source.machine.root, target.machine.root
    if (s.hid, s.uid) != (t.hid, t.uid):
        notes.append(f"the root bridge changes from ACPI {s.hid} _UID {s.uid or 'none'} to {t.hid} _UID "
                     f"{t.uid or 'none'}: every location-form instance id on the target is new")
    if s.pcie_native != t.pcie_native:
        notes.append(f"the source {'gives' if s.pcie_native else 'does not give'} Windows PCI Express config access, "
                     f"the target {'does' if t.pcie_native else 'does not'}: devices with a serial number change "
                     f"instance form (KB 2621024)")
    return tuple(notes)


def _pair(source: WindowsView, target: WindowsView, injected: tuple[str, ...] = ()) -> list[DeviceRow]:
    rows: list[DeviceRow] = []
    left = list(source.devices)
    right = list(target.devices)
    by_key = {d.key: d for d in left}
    matched_t: list[WinDevice] = []
    for t in right:
        s = by_key.get(t.key)
        if s is not None and s in left:
            left.remove(s)
            matched_t.append(t)
            rows.append(DeviceRow(SAME, s, t))
    right = [t for t in right if t not in matched_t]
    src_index = {id(s): i for i, s in enumerate(source.devices)}

    def take(pred) -> None:
        for t in list(right):
            s = next((s for s in left if pred(s, t)), None)
            if s is not None:
                left.remove(s)
                right.remove(t)
                rows.append(_new(s, t, source, target, injected))

    take(lambda s, t: s.chain == t.chain and s.role == t.role)
    take(lambda s, t: (s.source.ids.vendor, s.source.ids.device) == (t.source.ids.vendor, t.source.ids.device))
    take(lambda s, t: s.role == t.role and s.source.ids.class_code is not None
         and s.source.ids.class_code >> 8 == (t.source.ids.class_code or 0) >> 8)
    for t in right:
        rows.append(_new(None, t, source, target, injected))
    for s in left:
        rows.append(DeviceRow(GONE, s, None, (f"no function of the target takes its place; Windows keeps "
                                              f"{s.instance_path} as a ghost with its settings",)))
    order = {id(t): i for i, t in enumerate(target.devices)}
    rows.sort(key=lambda r: (order.get(id(r.target), 10_000), src_index.get(id(r.source), 0)))
    return rows


def _new(s: WinDevice | None, t: WinDevice, source: WindowsView, target: WindowsView,
         injected: tuple[str, ...] = ()) -> DeviceRow:
    reasons = _why_new(s, t, source, target) if s is not None else ["no function of the source was there"]
    driver = "present" if _installed(t.driver, injected) else "missing"
    if t.driver.entry is None:
        reasons.append("no inbox or VMware Tools driver matches its ids")
    elif not _installed(t.driver, injected):
        reasons.append(f"only {t.driver.entry.service} ({t.driver.entry.origin}) drives it: not on a Windows that ran "
                       f"on VMware unless it is injected before the move (as virt-v2v does)")
    return DeviceRow(NEW, s, t, tuple(reasons), driver)


def _why_new(s: WinDevice, t: WinDevice, source: WindowsView, target: WindowsView) -> list[str]:
    out: list[str] = []
    a, b = s.source.ids, t.source.ids
    fields = [(n, x, y) for n, x, y in (("VEN", a.vendor, b.vendor), ("DEV", a.device, b.device),
                                       ("SUBSYS", int(a.subsys, 16), int(b.subsys, 16)),
                                       ("REV", a.revision, b.revision)) if x != y]
    if fields:
        out.append("device id changes: " + ", ".join(
            f"{n} {x:0{8 if n == 'SUBSYS' else 2 if n == 'REV' else 4}X} → {y:0{8 if n == 'SUBSYS' else 2 if n == 'REV' else 4}X}"
            for n, x, y in fields))
    if s.form != t.form:
        why = target.machine.root.why if t.form == "location" else source.machine.root.why
        out.append(f"instance form changes from {s.form} to {t.form} ({why.split(';')[0]})")
        unknown = s if s.form == "serial" and s.serial is None else t if t.form == "serial" and t.serial is None else None
        if unknown is not None and unknown.source.serial is not None:
            out.append(f"[inferred] {unknown.source.serial.why}; no real listing shows this device's id")
    elif s.form == "serial" and s.serial != t.serial:
        out.append(f"serial number changes {s.instance} → {t.instance} (the MAC it is made of changed)")
    elif s.form == "location":
        if s.location != t.location:
            out.append(f"position changes: location {s.location} → {t.location}")
        elif not fields:
            out.extend(_parent_change(s, t, source, target))
    return out or ["its instance path differs for a reason the model does not name"]


def _parent_change(s: WinDevice, t: WinDevice, source: WindowsView, target: WindowsView) -> list[str]:
    sp, tp = _parent(s, source), _parent(t, target)
    if sp is None and tp is None:
        r1, r2 = source.machine.root, target.machine.root
        if (r1.hid, r1.uid) == (r2.hid, r2.uid):
            return []
        return [f"the root bridge's identity changes (ACPI {r1.hid} _UID {r1.uid or 'none'} → {r2.hid} "
                f"_UID {r2.uid or 'none'}): new parent prefix"]
    if sp is None or tp is None:
        return ["its bridge changes (one side has none)"]
    if sp.key == tp.key:
        return []
    if sp.device_id != tp.device_id:
        return [f"the bridge above it ({tp.where}) changes ids {sp.device_id.removeprefix('PCI')} → "
                f"{tp.device_id.removeprefix('PCI')}: new parent prefix"]
    return [f"the bridge above it ({tp.where}) is itself new: new parent prefix"] + \
        [f"  because {r}" for r in _why_new(sp, tp, source, target)][:1]


def _parent(d: WinDevice, view: WindowsView) -> WinDevice | None:
    if d.source.parent is None:
        return None
    try:
        return view.device(d.source.parent)
    except KeyError:
        return None


def _boot(source: WindowsView, target: WindowsView, rows: list[DeviceRow], injected: tuple[str, ...] = ()) -> BootVerdict:
    db = target.windows.boot_database
    if not source.boot_chain:
        return BootVerdict(None, (), "cannot tell: the source states no boot disk controller")
    src_boot = source.device(source.boot_chain[0])
    chain = target.boot_chain
    lead = ""
    if not chain:
        # the target guest showed no disk (a Linux probe cannot see disks on every controller Windows can):
        # the boot controller is the function that takes the source's boot controller's place
        paired = next((r.target for r in rows if r.source is src_boot and r.target is not None), None)
        if paired is None:
            return BootVerdict(None, (), "cannot tell: the target shows no boot disk and nothing takes the place of "
                                         f"the source's boot controller ({src_boot.where})")
        chain = _chain(paired, target)
        lead = f"(the target names no boot disk; its boot controller is taken as {paired.where}, where the source boots from) "
    boot_service = src_boot.driver.entry.service if src_boot.driver.entry else None
    status = {id(r.target): r for r in rows if r.target is not None}
    steps: list[BootStep] = []
    for key in chain:
        d = target.device(key)
        row = status.get(id(d))
        what = "controller" if key == chain[0] else "bridge"
        if row is not None and row.status == SAME:
            steps.append(BootStep(key, d.where, True, f"{what} keeps its instance {d.instance_path}: Windows starts "
                                                      f"the driver it had"))
            continue
        entry = d.driver.entry
        same_chip = (d.source.ids.vendor, d.source.ids.device) == (src_boot.source.ids.vendor, src_boot.source.ids.device)
        catalogued = entry is not None and _installed(d.driver, injected) and entry.boot and entry.service == boot_service
        if what == "controller" and same_chip and not catalogued:
            steps.append(BootStep(key, d.where, True, f"{what} is new but the same chip "
                                                      f"({d.source.ids.vendor:04X}:{d.source.ids.device:04X}) the source "
                                                      f"booted from: its boot-start driver "
                                                      f"({boot_service or 'installed on the source'}) matches "
                                                      f"PCI\\VEN_{d.source.ids.vendor:04X}&DEV_{d.source.ids.device:04X} in "
                                                      f"the {db} [inferred]"))
            continue
        if entry is None or not _installed(d.driver, injected):
            steps.append(BootStep(key, d.where, False, f"{what} is new and no installed driver matches its ids in the "
                                                       f"{db}: 0x7B INACCESSIBLE_BOOT_DEVICE"))
        elif entry.always_boot:
            steps.append(BootStep(key, d.where, True, f"{what} is new; {d.driver.matched_id} maps to {entry.service} "
                                                      f"in the {db}, boot start on every installation"))
        elif entry.boot and entry.origin in injected:
            steps.append(BootStep(key, d.where, True, f"{what} is new; {d.driver.matched_id} maps to {entry.service} "
                                                      f"({entry.origin}, injected as boot start) in the {db}"))
        elif entry.boot and entry.service == boot_service:
            steps.append(BootStep(key, d.where, True, f"{what} is new; {d.driver.matched_id} maps to {entry.service} "
                                                      f"in the {db}, the boot-start service the source booted from"))
        elif entry.boot:
            steps.append(BootStep(key, d.where, False, f"{what} is new; {entry.service} ({entry.origin}) matches "
                                                       f"{d.driver.matched_id} but is not boot start on this installation "
                                                       f"(the source booted from {boot_service or 'another driver'}): 0x7B "
                                                       f"unless {entry.service} is made boot start before the move"))
        else:
            steps.append(BootStep(key, d.where, False, f"{what} is new and {entry.service} is no boot driver: 0x7B"))
    boots = all(s.ok for s in steps)
    summary = ("boots: " + ("the boot chain keeps its instances" if all("keeps" in s.rule for s in steps)
                            else "every new device on the boot chain maps to a boot-start service")) if boots \
        else "does not boot: " + next(s.rule for s in steps if not s.ok)
    return BootVerdict(boots, tuple(steps), lead + summary)


def _chain(d: WinDevice, view: WindowsView) -> tuple[str, ...]:
    out = []
    cur: WinDevice | None = d
    while cur is not None:
        out.append(cur.source.key)
        cur = _parent(cur, view)
    return tuple(out)


def _nics(rows: list[DeviceRow]) -> tuple[NicLoss, ...]:
    out = []
    for r in rows:
        if r.source is None or r.source.role != "nic" or r.status == SAME:
            continue
        why = ("it is new on the target" if r.status == NEW else "it is gone on the target")
        out.append(NicLoss(r.source, r.target, f"{why}: its settings (static IP, DNS, VLAN, connection name) stay "
                                               f"with the ghost {r.source.instance_path}; the new adapter starts "
                                               f"with DHCP"))
    return tuple(out)
