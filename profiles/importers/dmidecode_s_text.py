"""``dmidecode -s KEYWORD`` answers, pasted as command/answer pairs.

How-tos and scripts ask dmidecode one string at a time::

    # dmidecode -s system-product-name
    VMware Virtual Platform
    # dmidecode -s system-serial-number
    VMware-56 4d fd 28 89 33 f8 e2-64 74 01 59 92 3b 58 0e

paste.py splits the file at each command line; a section whose command is
``dmidecode -s KEYWORD`` (``--string``) is one field of one structure, the
keyword telling which (dmidecode(8)'s list).  The comment lines an old
dmidecode prints before the answer (``# SMBIOS implementations newer than …``)
are skipped.
"""

from __future__ import annotations

import re

from guestcompat.detection.tools import DmiStructure, Dmidecode
from guestcompat.profiles.importers.facts import CaptureFacts
from guestcompat.profiles.importers.paste import Section

#: dmidecode -s keyword -> (structure type, title, field)
KEYWORDS = {
    "bios-vendor": (0, "Vendor"), "bios-version": (0, "Version"), "bios-release-date": (0, "Release Date"),
    "bios-revision": (0, "BIOS Revision"), "firmware-revision": (0, "Firmware Revision"),
    "system-manufacturer": (1, "Manufacturer"), "system-product-name": (1, "Product Name"),
    "system-version": (1, "Version"), "system-serial-number": (1, "Serial Number"), "system-uuid": (1, "UUID"),
    "system-sku-number": (1, "SKU Number"), "system-family": (1, "Family"),
    "baseboard-manufacturer": (2, "Manufacturer"), "baseboard-product-name": (2, "Product Name"),
    "baseboard-version": (2, "Version"), "baseboard-serial-number": (2, "Serial Number"),
    "baseboard-asset-tag": (2, "Asset Tag"), "chassis-manufacturer": (3, "Manufacturer"),
    "chassis-type": (3, "Type"), "chassis-version": (3, "Version"), "chassis-serial-number": (3, "Serial Number"),
    "chassis-asset-tag": (3, "Asset Tag"), "processor-family": (4, "Family"),
    "processor-manufacturer": (4, "Manufacturer"), "processor-version": (4, "Version"),
    "processor-frequency": (4, "Current Speed"),
}
TITLES = {0: "BIOS Information", 1: "System Information", 2: "Base Board Information", 3: "Chassis Information",
          4: "Processor Information"}
_COMMAND = re.compile(r"\bdmidecode\s+(?:-q\s+)?(?:-s|--string)[\s=]+(?P<keyword>[a-z-]+)")


def _answer(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def sniff(text: str, section: Section) -> int:
    match = _COMMAND.search(section.command or "")
    if not match or match["keyword"] not in KEYWORDS:
        return 0
    return 96 if 1 <= len(_answer(text)) <= 2 else 0


def read_answer(keyword: str, text: str, label: str) -> CaptureFacts:
    dmi_type, field = KEYWORDS[keyword]
    lines = _answer(text)
    problems = [f"{label}: dmidecode -s {keyword} printed {len(lines)} lines; the first is taken"] if len(lines) > 1 else []
    structure = DmiStructure(0x4000 + dmi_type, dmi_type, 0, TITLES[dmi_type], {field: lines[0]})
    return CaptureFacts(sources=((label, f"dmidecode -s {keyword}"),), dmi=Dmidecode(None, (structure,)),
                        dmi_form="dmidecode -s", problems=tuple(problems))


def keyword_of(section: Section) -> str | None:
    match = _COMMAND.search(section.command or "")
    return match["keyword"] if match and match["keyword"] in KEYWORDS else None
