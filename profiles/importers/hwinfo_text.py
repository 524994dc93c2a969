"""``hwinfo`` (openSUSE's hardware probe; ``hwinfo``, ``--netcard``, ``--display``, ``--pci``…).

Each PCI entry is a block::

    24: PCI 300.0: 0200 Ethernet controller
      SysFS BusID: 0000:03:00.0
      Vendor: pci 0x14e4 "Broadcom"
      Device: pci 0x170c "BCM4401-B0 100Base-TX"
      SubVendor: pci 0x1028 "Dell"
      SubDevice: pci 0x01af "Inspiron 6400"
      Revision: 0x02
      Driver: "b44"
      Device File: eth0
      HW Address: 00:19:b9:6e:e2:1e

which holds what ``lspci -nnv`` does (ids, class, revision, address) plus
the NIC's name and MAC: read as read facts.  Non-PCI entries (USB, monitor,
disk) are skipped.
"""

from __future__ import annotations

import re

from guestcompat.detection.tools import LspciDevice
from guestcompat.profiles.importers.facts import CaptureFacts, NicFact

_HEAD = re.compile(r"^\d+: PCI [0-9a-f.:]+: (?P<cls>[0-9a-f]{4}) (?P<name>\S.*)$", re.IGNORECASE)
_FIELD = re.compile(r"^\s+(?P<key>[A-Z][\w ]*?): (?P<value>.*)$")
_ID = re.compile(r"^pci 0x(?P<id>[0-9a-f]{4})(?: \"(?P<name>.*)\")?", re.IGNORECASE)
_BUS = re.compile(r"^(?:0000:)?(?P<addr>[0-9a-f]{2}:[01][0-9a-f]\.[0-7])$", re.IGNORECASE)


def looks_like_hwinfo(text: str) -> int:
    heads = sum(1 for ln in text.splitlines() if _HEAD.match(ln.strip()))
    busids = len(re.findall(r"^\s+SysFS BusID: ", text, re.MULTILINE))
    return min(93, 65 + 8 * heads) if heads and busids else 0


def read_hwinfo(text: str, label: str) -> CaptureFacts:
    devices: list[LspciDevice] = []
    nics: list[NicFact] = []
    block: dict[str, str] = {}
    head = None

    def close() -> None:
        bus = _BUS.match(block.get("SysFS BusID", ""))
        if head is None or bus is None:
            return
        ids = {k: _ID.match(block.get(k, "")) for k in ("Vendor", "Device", "SubVendor", "SubDevice")}
        revision = re.match(r"0x([0-9a-f]{1,2})$", block.get("Revision", ""), re.IGNORECASE)
        address = bus["addr"].lower()
        devices.append(LspciDevice(
            slot=address, class_id=int(head["cls"], 16), class_name=head["name"].rstrip(),
            vendor=int(ids["Vendor"]["id"], 16) if ids["Vendor"] else None,
            vendor_name=ids["Vendor"]["name"] if ids["Vendor"] else None,
            device=int(ids["Device"]["id"], 16) if ids["Device"] else None,
            device_name=ids["Device"]["name"] if ids["Device"] else None,
            subsystem_vendor=int(ids["SubVendor"]["id"], 16) if ids["SubVendor"] else None,
            subsystem_device=int(ids["SubDevice"]["id"], 16) if ids["SubDevice"] else None,
            revision=int(revision[1], 16) if revision else None))
        if head["cls"].startswith("02") and block.get("Device File"):
            mac = block.get("HW Address", "").strip().lower()
            nics.append(NicFact(block["Device File"].split()[0], mac if re.fullmatch(r"(?:[0-9a-f]{2}:){5}[0-9a-f]{2}",
                                                                                     mac) else None,
                                address, driver=block.get("Driver", "").strip('"').split('"')[0] or None))

    for line in text.splitlines():
        match = _HEAD.match(line.strip())
        if match or re.match(r"^\d+: ", line.strip()):
            close()
            head, block = match, {}
            continue
        field = _FIELD.match(line)
        if field:
            block.setdefault(field["key"], field["value"].strip())
    close()
    return CaptureFacts(sources=((label, "hwinfo"),), pci=tuple(devices), pci_form="hwinfo" if devices else None,
                        nics=tuple(nics))
