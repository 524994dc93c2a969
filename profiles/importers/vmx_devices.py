"""The .vmx devices that are neither NICs nor storage: USB, sound, VMCI, SVGA, serial, parallel, floppy.

Each present device becomes the catalogue kind the guest sees (VMware's
UHCI/EHCI/xHCI, ES1371 or HD audio, VMCI), at the address its slot number
(read or predicted, vmx_placement.py) implies; a kind QEMU cannot present
gets the catalogue's ``nearest`` substitute or an omission with its reason,
exactly as the capture importer does.  What the profile model cannot hold
(ISA serial/parallel ports, floppy drives: the model states PCI and VIO
devices only) is reported by name with that reason.  Nothing is dropped
silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from guestcompat.profiles.catalog import Catalog

#: sound.virtualDev -> catalogue kind (VMware writes es1371, hdaudio; sb16 on hardware 3/4)
SOUND_KINDS = {"es1371": "es1371", "hdaudio": "vmware-hda"}
DEFAULT_SOUND = "es1371"
#: families handled here, with the catalogue kind of each (sound: by virtualDev)
USB_KINDS = {"usb": "vmware-uhci", "ehci": "vmware-ehci", "usb_xhci": "vmware-xhci"}
#: ISA and other devices outside the profile model: family -> what it is
OUTSIDE_MODEL = {"serial": "serial port (ISA COM)", "parallel": "parallel port (ISA LPT)",
                 "floppy": "floppy drive (ISA FDC)"}
#: hardware 3-6: the PIIX4's own USB function, and VMCI as hardware 7+ has it (vmware/base)
_PIIX4_UHCI = ("00:07.2", "QEMU's piix4-usb-uhci at 00:07.2 needs a function 0 at 00:07.0 (the PIIX4 ISA bridge) "
                          "for the guest to scan the device; QEMU 7.2 cannot present PIIX4 ISA on pc")
_VMCI = ("00:07.7", "stock QEMU has no VMCI device; guestcompat's patched build has one (vmware-vmci), but a guest "
                    "scans 00:07.7 only with a function 0 at 00:07.0, the PIIX4 layout that EFI profiles cannot "
                    "have (OVMF)")


def substitute_for(kind: str, catalog: Catalog) -> dict[str, Any] | None:
    """What stands for ``kind`` where QEMU cannot present it (the capture importer's rule)."""
    entry = catalog.kinds[kind]
    model, nearest = entry.qemu, entry.nearest
    if nearest is not None:  # no model, or one only guestcompat's builds have (lsi53c1030)
        return {"kind": nearest.kind, "reason": nearest.reason}
    if model is None:
        return {"reason": f"QEMU has no model of the {entry.summary} (no model of the same vendor and class "
                          f"either): omitted, the guest will not see it"}
    if model.needs_identity:
        return {"reason": f"stock QEMU cannot show the {entry.summary}'s ids; guestcompat's patched QEMU "
                          f"presents it on {model.driver}"}
    return None


def other_device(vmx: Mapping[str, str], family: str, prefix: str, hw: int, devices: list[dict[str, Any]],
                 notes: list[str], catalog: Catalog, address: Callable[[str], str | None]) -> None:
    """Add the device ``prefix`` (family ``family``) to ``devices``, or say in ``notes`` why not.

    ``address(prefix)`` is the importer's slot-number reading (None: reported there)."""
    if family in OUTSIDE_MODEL:
        backing = vmx.get(f"{prefix}.filetype") or vmx.get(f"{prefix}.filename") or ""
        notes.append(f"{prefix}: {OUTSIDE_MODEL[family]}{f' ({backing[:40]})' if backing else ''}: profiles state PCI "
                     f"and VIO devices only; not reproduced")
        return
    if family == "svga":
        return   # every VMware layout has SVGA II at 00:0f.0 (vmware/chipset); svga.present = FALSE is noted by the caller
    if family == "vmci":   # hardware 6 (hardware 7+ has it in vmware/base)
        devices.append({"name": prefix, "kind": "vmci", "address": _VMCI[0], "substitute": {"reason": _VMCI[1]}})
        return
    if family == "usb" and hw < 7:
        devices.append({"name": prefix, "kind": "piix4-uhci", "address": _PIIX4_UHCI[0],
                        "substitute": {"reason": _PIIX4_UHCI[1]}})
        return
    if family == "sound":
        dev = (vmx.get(f"{prefix}.virtualdev") or DEFAULT_SOUND).strip().lower()
        kind = SOUND_KINDS.get(dev)
        if kind is None:
            notes.append(f"{prefix}: sound virtualDev {dev!r} has no device kind "
                         f"(known: {', '.join(sorted(SOUND_KINDS))}); not reproduced")
            return
    else:
        kind = USB_KINDS[family]
    at = address(prefix)
    if at is None:
        return
    entry: dict[str, Any] = {"name": prefix, "kind": kind, "address": at}
    substitute = substitute_for(kind, catalog)
    if substitute is not None:
        entry["substitute"] = substitute
    devices.append(entry)
