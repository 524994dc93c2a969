"""``lshw -short``: the hardware tree as ``H/W path  Device  Class  Description`` rows.

Unlike ``lshw -businfo`` it shows no PCI address, only lshw's tree path:
``/0/100`` is the host bridge, ``/0/100/15`` the function at 00:15.0 (``15.1``:
function 1), ``/0/100/15/0`` device 0 on the bus behind that bridge.  On a
VMware VM the bus behind each bridge is fixed by the layout (00:11.0 → 02,
root port 00:dd.f → 3 + 8·(dd−0x15) + f; shared/reference/vmware-ground-truth.md
§2.2), so the path gives the address, marked *inferred from the hardware
version*.  A row naming a network interface (``ens160``) gives that NIC's
address; a disk row (``/dev/sda``) the controller it hangs on.
"""

from __future__ import annotations

import re

from guestcompat.profiles.importers.facts import FROM_HARDWARE, CaptureFacts, DiskFact, NicFact, Provenance

_HEAD = re.compile(r"^H/W path\s+Device\s+Class\s+Description\s*$")
_ROW = re.compile(r"^(?P<path>/[0-9a-f/.:]*)\s+(?:(?P<dev>(?:/dev/)?[\w.-]+)\s+)??"
                  r"(?P<cls>system|bus|memory|processor|bridge|network|storage|disk|volume|display|multimedia|"
                  r"input|communication|generic|power|printer|tape|processor)\b\s*(?P<desc>.*)$")


def secondary_bus(device: int, function: int) -> int | None:
    """The bus VMware's layout puts behind the bridge at 00:device.function (None: not a bridge there)."""
    if device == 0x01 and function == 0:
        return 0x01
    if device == 0x11 and function == 0:
        return 0x02
    if 0x15 <= device <= 0x18:
        return 3 + 8 * (device - 0x15) + function
    return None


def path_address(path: str) -> str | None:
    """``/0/100/15/0`` → ``03:00.0``; None for a path that is not a PCI function under the host bridge."""
    parts = path.strip("/").split("/")
    if len(parts) < 3 or parts[1] != "100":
        return None
    bus, out = 0, None
    for depth, part in enumerate(parts[2:4]):
        match = re.fullmatch(r"([0-9a-f]{1,2})(?:\.([0-7]))?", part)
        if not match:
            return out if depth else None
        device, function = int(match[1], 16), int(match[2] or 0)
        if device > 0x1f:
            return out if depth else None
        out = f"{bus:02x}:{device:02x}.{function}"
        next_bus = secondary_bus(device, function) if depth == 0 else None
        if next_bus is None:
            return out
        bus = next_bus
    return out


def looks_like_short(text: str) -> int:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    rows = sum(1 for ln in lines if _ROW.match(ln.strip()) and ln.strip().startswith("/0"))
    if any(_HEAD.match(ln.strip()) for ln in lines):
        return 92
    return min(88, 50 + 6 * rows) if rows >= 2 else 0


def read_short(text: str, label: str) -> CaptureFacts:
    nics: list[NicFact] = []
    disks: list[DiskFact] = []
    provenance: list[Provenance] = []
    for line in text.splitlines():
        match = _ROW.match(line.strip())
        if not match:
            continue
        path, dev, cls = match["path"], match["dev"], match["cls"]
        if cls == "network" and dev:
            address = path_address(path)
            if address:
                nics.append(NicFact(dev, pci=address))
                provenance.append(Provenance(f"nic {dev} at {address}", FROM_HARDWARE,
                                             f"lshw path {path}: VMware's layout numbers the bus behind each bridge"))
        elif cls == "disk" and dev and dev.startswith("/dev/"):
            controller = path_address("/".join(path.split("/")[:-1]))
            disks.append(DiskFact(dev[5:], controller, "scsi" if re.search(r"/\d+\.\d+\.\d+$", path) else None,
                                  path.rsplit("/", 1)[-1], match["desc"].strip() or None))
    return CaptureFacts(sources=((label, "lshw -short"),), nics=tuple(nics), disks=tuple(disks),
                        provenance=tuple(provenance))
