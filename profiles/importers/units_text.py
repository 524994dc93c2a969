"""Where NICs and disks hang, from the names Linux gives them by their sysfs path.

Two forms people paste name each device by the PCI address it sits behind:

* systemd's device units (``systemctl``, ``systemctl list-units --type=device``), one per sysfs
  device, the path spelled with ``-`` for ``/``::

      sys-devices-pci0000:00-0000:00:15.0-0000:03:00.0-net-ens160.device loaded active plugged VMXNET3 Ethernet Controller
      sys-devices-pci0000:00-0000:00:10.0-host2-target2:0:0-2:0:0:0-block-sda.device … VMware_Virtual_S

* udev's ``/dev/disk/by-path`` links (``ls -l``, ``ll``, ``tree``)::

      pci-0000:03:00.0-scsi-0:0:0:0 -> ../../sda
      pci-0000:02:03.0-ata-1.0 -> ../../sr0

Both give the NIC's name at its address (what systemd's naming turns into
``ens160``) and which controller and target each disk is on; neither gives
ids, so they add no PCI function of their own.  Partitions, iSCSI (``ip-…``)
and USB links are not the VM's hardware and are skipped.
"""

from __future__ import annotations

import re

from guestcompat.profiles.importers.facts import CaptureFacts, DiskFact, NicFact

_PCI = r"[0-9a-f]{4}:(?P<addr>[0-9a-f]{2}:[01][0-9a-f]\.[0-7])"
_UNIT = re.compile(r"\b(?P<unit>sys-devices-pci[0-9a-f]{4}:[0-9a-f]{2}-\S+?)\.device\b(?P<rest>.*)$", re.IGNORECASE)
_UNIT_PCI = re.compile(r"(?:^|-)" + _PCI + r"(?=-)", re.IGNORECASE)
_BYPATH = re.compile(r"\bpci-" + _PCI + r"-(?P<bus>scsi|ata|nvme|sas|usb|virtio-pci)-(?P<target>[\w:.]+?)"
                     r"(?P<part>-part\d+)?\s+->\s+\.\./\.\./(?P<dev>[\w]+)\s*$", re.IGNORECASE)


def looks_like_units(text: str) -> int:
    hits = sum(1 for ln in text.splitlines() if ".device" in ln and _UNIT.search(ln))
    return min(92, 60 + 8 * hits) if hits else 0


def looks_like_bypath(text: str) -> int:
    hits = sum(1 for ln in text.splitlines() if " -> " in ln and _BYPATH.search(ln))
    return min(92, 62 + 8 * hits) if hits else 0


def read_units(text: str, label: str) -> CaptureFacts:
    nics: dict[str, NicFact] = {}
    disks: dict[str, DiskFact] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        match = _UNIT.search(line) if ".device" in line else None
        if not match:
            continue
        unit = match["unit"]
        addresses = [m["addr"].lower() for m in _UNIT_PCI.finditer(unit)]
        if not addresses:
            continue
        address = addresses[-1]
        description = re.sub(r"^\s*loaded\s+\S+\s+\S+\s+", "", match["rest"]).strip().rstrip(">").strip() or None
        if (net := re.search(r"-net-(?P<name>[\w.]+)$", unit)):
            nics.setdefault(net["name"], NicFact(net["name"], pci=address))
        elif (block := re.search(r"-block-(?P<name>(?:sd|vd|hd)[a-z]+|sr\d+|nvme\d+n\d+)$", unit)):
            target = re.search(r"-(\d+:\d+:\d+:\d+)-block-", unit)
            bus = "scsi" if "-host" in unit and "-ata" not in unit else ("ata" if "-ata" in unit else None)
            disks.setdefault(block["name"], DiskFact(block["name"], address, bus, target[1] if target else None,
                                                     description))
        elif (nvme := re.search(r"-nvme-nvme\d+-(?P<name>nvme\d+n\d+)$", unit)):
            disks.setdefault(nvme["name"], DiskFact(nvme["name"], address, "nvme", None, description))
        elif description and description.endswith(">"):
            problems.append(f"{label}: line {number}: a unit cut by the pager ({unit[:60]}…)")
    if any(line.rstrip().endswith(">") for line in text.splitlines()):
        problems.append(f"{label}: lines cut at the terminal's width (systemctl's pager): descriptions are partial; "
                        f"`systemctl --no-pager --full` shows them whole")
    return CaptureFacts(sources=((label, "systemctl device units"),), nics=tuple(nics.values()),
                        disks=tuple(disks.values()), problems=tuple(problems))


def read_bypath(text: str, label: str) -> CaptureFacts:
    disks: dict[str, DiskFact] = {}
    for line in text.splitlines():
        match = _BYPATH.search(line) if " -> " in line else None
        if not match or match["part"]:
            continue
        disks.setdefault(match["dev"], DiskFact(match["dev"], match["addr"].lower(), match["bus"].lower(),
                                                match["target"]))
    return CaptureFacts(sources=((label, "ls -l /dev/disk/by-path"),), disks=tuple(disks.values()))
