"""VMware's own device limits, applied to .vmx-style settings before anything is built from them.

A descriptor naming ``ethernet499999`` is not a VM any VMware product runs:
it is a typo, a generator gone wrong or a hostile file, and importing it
used to build a profile of 500,000 NICs (91 s, 340 MB).  The limits are
VMware's (vSphere Configuration Maximums and the Workstation/Fusion
hardware pages, hardware versions up to 21), as indexes: a device VMware
cannot have is a clear error naming the key, never silently dropped and
never built.

Sources (see also profiles/catalog/vmware-placement.toml):
* vSphere 8 Configuration Maximums (configmax.broadcom.com), "Virtual Machine Maximums":
  10 virtual NICs, 4 SCSI adapters with up to 64 targets (PVSCSI; 15 for the LSI/BusLogic
  adapters), 4 SATA controllers with 30 devices, 4 NVMe controllers, 4 IDE devices on 2
  channels, 2 floppy drives, 32 serial ports, 3 parallel ports, 1 USB controller of each kind.
* libvirt's vmx parser (src/vmx/vmx.c, 9.0) reads scsi/sata 0-3, serial 0-3 and parallel 0-2 and
  ignores the rest silently; it reads NICs up to the highest ``ethernetN`` index it finds, unbounded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from guestcompat.errors import ProfileError


@dataclass(frozen=True)
class Limit:
    family: str
    controllers: int          # indexes 0 .. controllers-1
    units: int | None = None  # ``familyN:M`` units 0 .. units-1 (None: no units)
    what: str = ""


LIMITS: tuple[Limit, ...] = (
    Limit("ethernet", 10, None, "virtual NICs"),
    Limit("scsi", 4, 65, "SCSI adapters (targets 0-64 on PVSCSI, 0-15 on LSI/BusLogic)"),
    Limit("sata", 4, 30, "SATA controllers with 30 devices each"),
    Limit("nvme", 4, 64, "NVMe controllers"),
    Limit("ide", 2, 2, "IDE channels with 2 devices each"),
    Limit("floppy", 2, None, "floppy drives"),
    Limit("serial", 32, None, "serial ports"),
    Limit("parallel", 3, None, "parallel ports"),
    Limit("sound", 1, None, "sound cards"),
    Limit("vmci", 1, None, "VMCI devices"),
    Limit("usb", 1, 20, "UHCI USB controllers (20 devices)"),
    Limit("ehci", 1, 20, "EHCI USB controllers"),
    Limit("usb_xhci", 1, 20, "xHCI USB controllers"),
)
_BY_FAMILY = {limit.family: limit for limit in LIMITS}
_KEY = re.compile(r"^(ethernet|scsi|sata|nvme|ide|floppy|serial|parallel|sound|vmci|usb_xhci|usb|ehci)"
                  r"(\d*)(?::(\d+))?\.present$")
_TRUE = ("true", "yes", "1")


def check_device_limits(vmx: Mapping[str, str], source: str) -> None:
    """Raise ProfileError for the first present device VMware cannot have (index beyond its limit)."""
    for key, value in vmx.items():
        match = _KEY.match(key)
        if not match or value.strip().lower() not in _TRUE:
            continue
        limit = _BY_FAMILY[match[1]]
        index = (int(match[2]) if len(match[2]) <= 6 else 10 ** 6) if match[2] else 0
        if index >= limit.controllers:
            raise ProfileError(f"{source}: {key}: VMware allows at most {limit.controllers} {limit.what} "
                               f"({limit.family}0-{limit.family}{limit.controllers - 1}); not a VM VMware runs")
        if match[3] is not None:
            unit = int(match[3]) if len(match[3]) <= 6 else 10 ** 6
            if limit.units is None or unit >= limit.units:
                top = "no units" if limit.units is None else f"units 0-{limit.units - 1}"
                raise ProfileError(f"{source}: {key}: VMware's {limit.family} devices have {top}; "
                                   f"not a VM VMware runs")
