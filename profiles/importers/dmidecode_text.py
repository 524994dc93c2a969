"""``dmidecode`` text as people paste it, and the kernel's one-line DMI banner, read into ``Dmidecode``.

detection/tools.py parses dmidecode's own output, which indents fields with
one tab and list items with two.  A paste from a web page, a mail or a
terminal that expanded tabs has spaces instead, and the strict parser then
finds no field at all: an ESXi guest's complete dmidecode imported with an
empty identity, no ``VMware-`` serial, and booted to a guest every tool
called ``qemu`` (the hypervisor bit stayed on; see capture.py).  This module
re-indents such text by the structure of each record (the first indented
level is a field, a deeper one a list item) before parsing, fills in the
``Handle`` lines ``dmidecode -q`` leaves out, and reads the kernel's banner

    DMI: VMware, Inc. VMware Virtual Platform/440BX Desktop Reference Platform, BIOS 6.00 11/12/2020
    Hardware name: VMware, Inc. VMware7,1/440BX Desktop Reference Platform, BIOS VMW71.00V.… 05/15/2020

(``dmi_setup`` in the kernel: ``<sys_vendor> <product_name>/<board_name>, BIOS <version> <date>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from guestcompat.detection.tools import DmiStructure, Dmidecode, parse_dmidecode

#: dmidecode's structure titles by type (what ``-q`` prints without a Handle line)
TITLES = {"BIOS Information": 0, "System Information": 1, "Base Board Information": 2, "Chassis Information": 3,
          "Processor Information": 4, "Memory Controller Information": 5, "Memory Module Information": 6,
          "Cache Information": 7, "Port Connector Information": 8, "System Slot Information": 9,
          "On Board Device Information": 10, "OEM Strings": 11, "System Configuration Options": 12,
          "BIOS Language Information": 13, "System Event Log": 15, "Physical Memory Array": 16,
          "Memory Device": 17, "Memory Array Mapped Address": 19, "Memory Device Mapped Address": 20,
          "System Boot Information": 32, "Inactive": 126, "End Of Table": 127}
_HANDLE = re.compile(r"^Handle 0x[0-9A-Fa-f]{4}, DMI type \d+, \d+ bytes$")
_BANNER = re.compile(r"(?:^|\s)(?P<tag>DMI|Hardware name): (?P<rest>.+?)\s*$")
_BANNER_TAIL = re.compile(r"^(?P<sys>.*?)/(?P<board>.*?)(?:, BIOS (?P<bios>.*?)(?: (?P<date>\d\d/\d\d/\d{4}))?)?$")
#: system vendors whose name has a space (the banner separates vendor and product by a space only)
KNOWN_VENDORS = ("VMware, Inc.", "innotek GmbH", "Microsoft Corporation", "Red Hat", "Amazon EC2", "Xen",
                 "QEMU", "Parallels Software International Inc.", "Dell Inc.", "HP", "Hewlett-Packard",
                 "LENOVO", "Supermicro", "Nutanix", "Google", "OpenStack Foundation", "oVirt")


@dataclass(frozen=True)
class DmiRead:
    """A dmidecode reading: the structures, what went wrong, and what was inferred rather than read."""

    dmi: Dmidecode
    problems: tuple[str, ...]
    inferred: tuple[str, ...] = ()


def looks_like_dmidecode(text: str) -> int:
    """How sure (0-100) that ``text`` is dmidecode output (whole, ``-t``, ``-q``)."""
    score = 0
    if re.search(r"^\s*Handle 0x[0-9A-Fa-f]{4}, DMI type \d+", text, re.MULTILINE):
        score = 90
    elif re.search(r"^\s*SMBIOS \d+\.\d+(?:\.\d+)? present", text, re.MULTILINE):
        score = 70
    titles = sum(1 for t in TITLES if re.search(rf"^\s*{re.escape(t)}\s*$", text, re.MULTILINE))
    if titles and re.search(r"^\s+(Manufacturer|Vendor|Product Name|Serial Number|UUID): ", text, re.MULTILINE):
        score = max(score, 60 + min(titles, 3) * 10)
    return score


def looks_like_banner(text: str) -> int:
    return 80 if any(_banner_parts(line) for line in text.splitlines()) else 0


def reindent(text: str) -> tuple[str, bool]:
    """dmidecode text with tab indentation, whatever the paste did to it; True if anything changed.

    Within one structure (from its title to the next blank line or Handle), the
    smallest indentation is a field and anything deeper is a list item."""
    lines = text.expandtabs(8).splitlines()
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        indents = [len(ln) - len(ln.lstrip(" ")) for ln in block if ln.strip()]
        nonzero = [i for i in indents if i > 0]
        field = min(nonzero) if nonzero else 0
        for ln in block:
            width = len(ln) - len(ln.lstrip(" "))
            body = ln.strip()
            if not body:
                out.append("")
            elif width == 0 or not nonzero:
                out.append(body)
            else:
                out.append(("\t" if width <= field else "\t\t") + body)
        block.clear()

    expect_title = False
    for ln in lines:
        stripped = ln.strip()
        if not stripped:
            flush()
            out.append("")
            continue
        if _HANDLE.match(stripped) or expect_title or (stripped in TITLES and not block):
            flush()
            out.append(stripped)
            expect_title = bool(_HANDLE.match(stripped))
            continue
        block.append(ln)
    flush()
    result = "\n".join(out) + "\n"
    original = text if text.endswith("\n") else text + "\n"
    return result, result != original


def _add_handles(text: str) -> tuple[str, bool]:
    """``dmidecode -q`` prints titles without Handle lines: give each known title one."""
    out: list[str] = []
    added = False
    previous = ""
    number = 0x1000
    for ln in text.splitlines():
        if ln in TITLES and not _HANDLE.match(previous.strip()):
            out.append(f"Handle 0x{number:04X}, DMI type {TITLES[ln]}, 0 bytes")
            number += 1
            added = True
        out.append(ln)
        if ln.strip():
            previous = ln
    return "\n".join(out) + "\n", added


def read_dmidecode(text: str, source: str = "<dmidecode>") -> DmiRead:
    """Structures of a dmidecode text (whole, partial ``-t``, ``-q``, re-indented by a paste)."""
    fixed, changed = reindent(text)
    fixed, handles = _add_handles(fixed)
    dmi, errors = parse_dmidecode(fixed)
    problems = [f"{source}: {e}" for e in errors]
    inferred = []
    if changed:
        inferred.append(f"{source}: dmidecode text re-indented (tabs had become spaces or were lost in the paste)")
    if handles:
        inferred.append(f"{source}: structure types taken from their titles (dmidecode -q prints no Handle lines)")
    if not dmi.structures:
        problems.append(f"{source}: dmidecode output with no structure (Handle … / BIOS Information … records)")
    return DmiRead(dmi, tuple(problems), tuple(inferred))


def _banner_parts(line: str) -> dict[str, str] | None:
    match = _BANNER.search(line)
    if not match:
        return None
    tail = _BANNER_TAIL.match(match["rest"])
    if not tail or not tail["sys"]:
        return None
    system = tail["sys"]
    vendor = next((v for v in KNOWN_VENDORS if system.startswith(v + " ")), None)
    if vendor is None:
        vendor, _, product = system.partition(" ")
        guessed = True
    else:
        product = system[len(vendor) + 1:]
        guessed = False
    if not product:
        return None
    parts = {"vendor": vendor, "product": product, "board": tail["board"], "guessed": "yes" if guessed else ""}
    if tail["bios"]:
        parts["bios_version"] = tail["bios"]
    if tail["date"]:
        parts["bios_date"] = tail["date"]
    return parts


def read_banner(text: str, source: str = "<dmesg>") -> DmiRead:
    """The kernel's ``DMI:`` / ``Hardware name:`` line as the type 0/1/2 fields it holds."""
    seen: list[dict[str, str]] = []
    for line in text.splitlines():
        parts = _banner_parts(line)
        if parts and parts not in seen:
            seen.append(parts)
    if not seen:
        return DmiRead(Dmidecode(None, ()), (f"{source}: no 'DMI:' or 'Hardware name:' line",))
    problems = []
    if len(seen) > 1:
        problems.append(f"{source}: {len(seen)} different DMI banners; the first is used")
    parts = seen[0]
    bios = {k: parts[p] for k, p in (("Version", "bios_version"), ("Release Date", "bios_date")) if p in parts}
    structures = [
        DmiStructure(0x1001, 1, 0, "System Information", {"Manufacturer": parts["vendor"],
                                                          "Product Name": parts["product"]}),
        DmiStructure(0x1002, 2, 0, "Base Board Information", {"Product Name": parts["board"]}),
    ]
    if bios:
        structures.insert(0, DmiStructure(0x1000, 0, 0, "BIOS Information", bios))
    inferred = []
    if parts["guessed"]:
        inferred.append(f"{source}: the banner does not separate vendor and product; "
                        f"vendor {parts['vendor']!r} is a guess (first word)")
    return DmiRead(Dmidecode(None, tuple(structures)), tuple(problems), tuple(inferred))
