"""``hostnamectl`` (systemd's host summary) and ``uname -a``: identity and architecture without root.

People paste ``hostnamectl`` because it needs no root and names the
hypervisor; since systemd 249/251 it also shows what dmidecode would:

     Hardware Vendor: VMware, Inc.            -> SMBIOS system manufacturer (type 1)
      Hardware Model: VMware Virtual Platform -> SMBIOS system product name
    Firmware Version: 6.00                    -> BIOS version (type 0)
       Firmware Date: Thu 2020-11-12          -> BIOS release date (11/12/2020)
     Hardware Serial / Product UUID           -> serial / UUID, when shown (root)
        Architecture: x86-64                  -> the guest's architecture (arm64 is refused by the importer)

``Virtualization: vmware`` is systemd-detect-virt's answer (hostnamectl asks the
same code): replay scores it as that tool's answer; the profile does not state it.  A capture of
this form carries no PCI facts: the importer takes the identity it does carry.
"""

from __future__ import annotations

import re

from guestcompat.detection.tools import DmiStructure, Dmidecode
from guestcompat.profiles.importers.facts import READ, CaptureFacts, Provenance

_LINE = re.compile(r"^\s*(?P<key>[A-Z][A-Za-z_ ]{2,24}?):\s+(?P<value>\S.*)$")
KEYS = ("Static hostname", "Transient hostname", "Pretty hostname", "Icon name", "Chassis", "Deployment",
        "Location", "Machine ID", "Boot ID", "Product UUID", "AF_VSOCK CID", "Virtualization", "Operating System",
        "CPE OS Name", "OS Support End", "Kernel", "Architecture", "Hardware Vendor", "Hardware Model",
        "Hardware Serial", "Hardware Version", "Hardware SKU", "Firmware Version", "Firmware Date", "Firmware Age")
_DATE = re.compile(r"(?:\w{3} )?(?P<y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d)$")
_UNAME = re.compile(r"^Linux \S+ \S+ .*?\b(?P<arch>x86_64|aarch64|arm64|i[3-6]86|ppc64le|s390x|riscv64)\b")


def _fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match and match["key"] in KEYS:
            out.setdefault(match["key"], match["value"].rstrip())
    return out


def looks_like_hostnamectl(text: str) -> int:
    fields = _fields(text)
    if len(fields) < 3:
        return 0
    strong = sum(k in fields for k in ("Static hostname", "Icon name", "Machine ID", "Boot ID", "Hardware Vendor"))
    return 88 if strong >= 2 else 55


def read_hostnamectl(text: str, label: str) -> CaptureFacts:
    fields = _fields(text)
    system = {k: fields[h] for k, h in (("Manufacturer", "Hardware Vendor"), ("Product Name", "Hardware Model"),
                                        ("Version", "Hardware Version"), ("Serial Number", "Hardware Serial"),
                                        ("UUID", "Product UUID"), ("SKU Number", "Hardware SKU")) if h in fields}
    bios: dict[str, str] = {}
    if "Firmware Version" in fields:
        bios["Version"] = fields["Firmware Version"]
    date = _DATE.match(fields.get("Firmware Date", ""))
    if date:
        bios["Release Date"] = f"{date['m']}/{date['d']}/{date['y']}"
    structures = []
    if bios:
        structures.append(DmiStructure(0x2000, 0, 0, "BIOS Information", bios))
    if system:
        structures.append(DmiStructure(0x2001, 1, 0, "System Information", system))
    problems: list[str] = []
    if not structures:
        problems.append(f"{label}: hostnamectl shows no Hardware Vendor/Model or Firmware lines "
                        f"(systemd older than 249): no identity in it")
    provenance = tuple(Provenance(f"hostnamectl {key}", READ, f"{key}: {fields[key]}")
                       for key in ("Virtualization", "Chassis") if key in fields)
    arch = (fields["Architecture"], f"{label} (hostnamectl Architecture)") if "Architecture" in fields else None
    return CaptureFacts(sources=((label, "hostnamectl"),), dmi=Dmidecode(None, tuple(structures)) if structures else None,
                        dmi_form="hostnamectl" if structures else None, provenance=provenance,
                        problems=tuple(problems), arch=arch, detect_virt=fields.get("Virtualization"))


def looks_like_uname(text: str) -> int:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return 80 if len(lines) <= 2 and any(_UNAME.match(ln.strip()) for ln in lines) else 0


def read_uname(text: str, label: str) -> CaptureFacts:
    match = next((m for ln in text.splitlines() if (m := _UNAME.match(ln.strip()))), None)
    arch = (match["arch"], f"{label} (uname -a)") if match else None
    return CaptureFacts(sources=((label, "uname -a"),), arch=arch)
