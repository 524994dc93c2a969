"""What Windows activation notices when the hardware changes (reference windows-view.md §5).

XP and Server 2003 hash ten components; each matching one is a point, the
NIC's MAC three, and seven of twelve points keep the activation (Microsoft's
"Technical Details on Microsoft Product Activation", Lopatic's analysis).
Vista and later send make, model, BIOS name/version/date and the volume
serial with unpublished weights: the changed strings are listed and no
threshold is claimed. A component a side does not show is "not known", never
counted as equal.
"""

from __future__ import annotations

from dataclasses import dataclass

from guestcompat.detection.windows.view import WindowsView


@dataclass(frozen=True)
class ActivationChange:
    component: str
    source: str | None
    target: str | None


@dataclass(frozen=True)
class Activation:
    scheme: str                                # "xp-hash" | "vista+"
    changes: tuple[ActivationChange, ...]
    summary: str
    points: tuple[int, int] | None = None      # XP/2003: (lowest, highest) matching points of 12



def _ids_of_role(view: WindowsView, test) -> str | None:
    for d in view.devices:
        cc = d.source.ids.class_code
        if cc is not None and test(cc):
            return d.device_id
    return None


def activation(source: WindowsView, target: WindowsView) -> Activation:
    """What activation notices when ``source`` becomes ``target`` (the target's Windows version decides the scheme)."""
    a, b = source.machine.identity, target.machine.identity
    if target.windows.hash_activation:
        def first_mac(view: WindowsView) -> str | None:
            return next((d.source.mac for d in view.devices if d.role == "nic" and d.source.mac), None)
        comps = [
            ("NIC MAC address (3 votes)", first_mac(source), first_mac(target), 3),
            ("display adapter id", _ids_of_role(source, lambda c: c >> 16 == 0x03),
             _ids_of_role(target, lambda c: c >> 16 == 0x03), 1),
            ("SCSI host adapter id", _ids_of_role(source, lambda c: c >> 8 in (0x0100, 0x0107)),
             _ids_of_role(target, lambda c: c >> 8 in (0x0100, 0x0107)), 1),
            ("IDE controller id", _ids_of_role(source, lambda c: c >> 8 == 0x0101),
             _ids_of_role(target, lambda c: c >> 8 == 0x0101), 1),
            ("hard disk id", a.disks[0] if a.disks else None, b.disks[0] if b.disks else None, 1),
            ("processor model", a.cpu_model, b.cpu_model, 1),
            ("RAM size", f"{a.memory_mb} MB" if a.memory_mb else None, f"{b.memory_mb} MB" if b.memory_mb else None, 1),
        ]
        low = high = 2      # volume serial (kept by a block copy), CPU serial (none on modern CPUs)
        changes = [ActivationChange("CD-ROM id (not modelled: counted as changed at worst)", None, None)]
        high += 1
        for name, x, y, votes in comps:
            if x is not None and y is not None and x == y:
                low += votes
                high += votes
            elif x is None or y is None:
                high += votes
                changes.append(ActivationChange(f"{name} (not known on one side)", x, y))
            else:
                changes.append(ActivationChange(name, x, y))
        verdict = ("keeps its activation" if low >= 7 else "asks for re-activation" if high < 7
                   else "may ask for re-activation")
        return Activation("xp-hash", tuple(changes), f"{verdict}: {low}-{high} of 12 points match, 7 needed",
                          (low, high))
    fields = [("system manufacturer", a.system_manufacturer, b.system_manufacturer),
              ("system product", a.system_product, b.system_product),
              ("system serial", a.system_serial, b.system_serial),
              ("system UUID", _uuid(a.system_uuid), _uuid(b.system_uuid)),
              ("BIOS vendor", a.bios_vendor, b.bios_vendor), ("BIOS version", a.bios_version, b.bios_version),
              ("BIOS date", a.bios_date, b.bios_date),
              ("boot disk", a.disks[0] if a.disks else None, b.disks[0] if b.disks else None)]
    changes = tuple(ActivationChange(n, x, y) for n, x, y in fields if x != y and x is not None and y is not None)
    unknown = [n for n, x, y in fields if x is None or y is None]
    tail = f" ({', '.join(unknown)}: not shown on both sides)" if unknown else ""
    if not changes:
        summary = "make, model, BIOS and disk strings are unchanged: nothing activation sends changes" + tail
    else:
        summary = (f"{len(changes)} of the strings activation sends change: retail and MAK licences may ask for "
                   f"re-activation (weights not published); KMS clients re-activate on their own" + tail)
    return Activation("vista+", changes, summary)


def _uuid(value: str | None) -> str | None:
    return value.lower() if value else None
