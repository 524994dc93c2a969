"""Every form of capture we read: one sniffer and one reader each, shared by ``import capture`` and ``replay``.

A file (or each command's output in a file holding several, paste.py) is
offered to every form's sniffer; the most confident one above
:data:`THRESHOLD` reads it.  A command line shown before the output (``$
lspci -nn``) settles ties.  A file no form claims is refused naming the forms
accepted and the closest one; readers report what they could not read (each
problem names the file and the line) instead of failing, except when a file
yields no fact at all.

Forms (``FORMS``): lspci in all its output modes, lshw ``-businfo``, ``-short`` and its
class sections, dmidecode (whole, ``-t``, ``-q``, ``-s KEYWORD`` answers), the kernel's DMI
banner, ``ip link``/``ip a``, ``ls -l /sys/class/net``, kernel log excerpts (with or without
timestamps), ``hostnamectl``, ``inxi``, ``hwinfo``, systemd's device units, ``/dev/disk/by-path`` and
``uname -a``.  A section no form claims is retried without up to three lines of prose at its
start (a sentence, a heading, a ``/*`` wrapper) and two at its end.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from guestcompat.errors import ProfileError
from guestcompat.profiles.importers import (dmesg_text, dmidecode_s_text, dmidecode_text, hostnamectl_text, hwinfo_text,
                                            inxi_text, lshw_short_text, lshw_text, netnames_text, units_text)
from guestcompat.profiles.importers.facts import FROM_NAME, CaptureFacts, Provenance, merge
from guestcompat.profiles.importers.lspci_text import _HEADER, _MM, _NUMERIC, detect_form, parse_lspci
from guestcompat.profiles.importers.paste import Section, join_wrapped, sections

THRESHOLD = 50


@dataclass(frozen=True)
class Form:
    """One capture form: ``sniff(text, section) -> 0..100`` and ``read(text, label) -> CaptureFacts``."""

    name: str
    family: str                    # what it describes: pci, identity, nics, kernel
    commands: tuple[str, ...]      # command words that announce it (``lspci``)
    sniff: Callable[[str, Section], int]
    read: Callable[[str, str], CaptureFacts]
    needs: str                     # what a text of this form shows (for the "closest form" message)
    #: a reader that needs the section itself (the command shown before it), instead of ``read``
    read_section: Callable[[Section, str], CaptureFacts] | None = None


# ---------------------------------------------------------------------------
# lspci

_LSPCI_FORM_NAMES = {"vmm": "lspci -vmm/-nnmmv", "mm": "lspci -mm/-nnmm", "numeric": "lspci -n",
                     "plain": "lspci/-nn/-v/-vvv", "tree": "lspci -t/-tv"}


def _sniff_lspci(text: str, section: Section) -> int:
    form = detect_form(text)
    if form == "unknown":
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        heads = sum(1 for ln in lines if _HEADER.match(ln.strip()) or _MM.match(ln.strip())
                    or _NUMERIC.match(ln.strip()))
        if heads >= 2:
            return 55                           # a leading line of chatter before the listing
        tree = [ln.strip() for ln in lines if re.match(r"^(?:-\[[0-9a-f]{4}:[0-9a-f]{2}\]-|[+\\]-[0-9a-f]{2}\.[0-7])",
                                                       ln.strip())]
        if len(tree) >= 3 and any(t.startswith("-[") for t in tree):
            return 60                           # an lspci -t tree after a few lines of prose
        led = [ln.strip() for ln in lines if _LEAD_ADDR.match(ln.strip())]
        shaped = [ln for ln in led if re.search(r'[\["]|\w: ', ln[8:])]
        if len(shaped) >= 2:
            return 55                           # lspci lines a wrap cut short
        return 30 if led else 0                 # PCI addresses without an lspci line shape: the closest form
    return 90


_DETAIL = re.compile(r"^\s*[A-Z][\w /().+-]*:(\s|$)")
_LEAD_ADDR = re.compile(r"^(?:[0-9a-f]{4}:)?[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7] ", re.IGNORECASE)


def _lenient_form(lines: list[str]) -> str:
    """The lspci mode from the first listing line even when a wrap cut it short (to pick the joiner)."""
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("Slot:"):
            return "vmm"
        if stripped[:2] in ("-[", "+-", "\\-"):
            return "tree"
        if _LEAD_ADDR.match(stripped):
            rest = stripped[_LEAD_ADDR.match(stripped).end():]
            return "mm" if rest.startswith('"') else "plain"
    return "plain"


def _mm_continues(previous: str, line: str) -> bool:
    return not _LEAD_ADDR.match(line.strip()) and not line.startswith("#")


def _lspci_continues(previous: str, line: str) -> bool:
    stripped = line.strip()
    header = _HEADER.match(previous.strip()) or _NUMERIC.match(previous.strip())
    unbalanced = previous.count("(") > previous.count(")") or previous.count("[") > previous.count("]")
    if header and (unbalanced or len(previous) >= 60) and not _DETAIL.match(line) \
            and not _LEAD_ADDR.match(stripped):
        return True                 # "… [15ad:07b0] (rev" / " 01)": a long header wrapped
    if line[:1] in " \t" or stripped.startswith("#"):
        return False
    return not (_HEADER.match(stripped) or _MM.match(stripped) or _NUMERIC.match(stripped)
                or stripped.startswith("Slot:"))


def _vmm_continues(previous: str, line: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z ]*:\s", line) is None and not line.startswith("#")


def _tree_continues(previous: str, line: str) -> bool:
    return line.strip()[:1] not in ("|", "+", "\\", "-", "#") and not line.startswith(" ")


def _read_lspci(text: str, label: str) -> CaptureFacts:
    lines = [ln for ln in text.splitlines()]
    start = next((i for i, ln in enumerate(lines) if detect_form(ln) != "unknown" or _LEAD_ADDR.match(ln.strip())
                  or ln.strip().startswith("Slot:") or re.match(r"^-\[[0-9a-f]{4}:[0-9a-f]{2}\]-", ln.strip())), 0)
    problems: list[str] = []
    if any(ln.strip() and not ln.startswith("#") for ln in lines[:start]):
        problems.append(f"{label}: lines 1-{start} before the listing skipped")
    lines = lines[start:]
    form = _lenient_form(lines)
    continues = {"vmm": _vmm_continues, "tree": _tree_continues, "mm": _mm_continues}.get(form, _lspci_continues)
    lines, joined = join_wrapped(lines, continues)
    if joined:
        problems.append(f"{label}: {len(joined)} wrapped line(s) joined back (first at line {start + joined[0] + 1})")
    text = "\n".join(lines) + "\n"
    inferred: dict[str, tuple[str, ...]] = {}
    devices, errors, form = parse_lspci(text, label, inferred=inferred)
    errors = list(errors)
    if form == "tree" and not any(d.device_name for d in devices):
        errors = [e for e in errors if not e.endswith("has no name")]
        errors.append(f"{label}: lspci -t shows addresses only (no names or ids): only the placement is known; "
                      f"use lspci -tv or -nn for the devices")
    errors = _truncation(text, devices, errors, label, form)
    provenance = tuple(Provenance(f"pci[{address}] {' '.join(fields)}", FROM_NAME,
                                  f"{_LSPCI_FORM_NAMES[form]} prints names; ids from pci.ids")
                       for address, fields in inferred.items())
    return CaptureFacts(sources=((label, _LSPCI_FORM_NAMES[form]),), pci=devices, pci_form=_LSPCI_FORM_NAMES[form],
                        pci_inferred=inferred, provenance=provenance, problems=tuple(problems + errors))


def _truncation(text: str, devices, errors: list[str], label: str, form: str) -> list[str]:
    """A capture cut short leaves its last device incomplete: say which one, in those words."""
    if not devices:
        return errors
    last = devices[-1]
    lines = [ln for ln in text.splitlines() if ln.strip()]
    cut = None
    if form == "vmm" and (last.device_name is None or last.vendor_name is None):
        cut = f"the record of {last.slot} has no {'Vendor' if last.vendor_name is None else 'Device'} line"
    elif form in ("plain", "numeric", "mm") and last.vendor is None:
        cut = f"its last device line ({last.slot}: {lines[-1].strip()[:60]!r}) is incomplete"
    elif form == "plain" and last.device_name and "(rev" not in lines[-1] and lines[-1].startswith(last.slot) \
            and sum("(rev " in ln for ln in lines) >= len(devices) - 1 >= 2:
        cut = f"its last device line ({last.slot}) ends before the revision the others show"
    if cut:
        errors.append(f"{label}: truncated? {cut}: the capture looks cut off there")
    return errors


# ---------------------------------------------------------------------------
# the others


def _dmidecode_continues(previous: str, line: str) -> bool:
    stripped = line.strip()
    return (line[:1] not in " \t" and previous[:1] in " \t" and not stripped.startswith("Handle 0x")
            and stripped not in dmidecode_text.TITLES and not re.fullmatch(r"[A-Z][\w -]* Information", stripped))


def _read_dmidecode(text: str, label: str) -> CaptureFacts:
    lines, joined = join_wrapped(text.splitlines(), _dmidecode_continues)
    read = dmidecode_text.read_dmidecode("\n".join(lines) + "\n", label)
    problems = list(read.problems)
    if joined:
        problems.append(f"{label}: {len(joined)} wrapped dmidecode line(s) joined back")
    last = read.dmi.structures[-1] if read.dmi.structures else None
    if last is not None and last.type in (0, 1, 2, 3) and not last.fields:
        problems.append(f"{label}: truncated? the last structure (handle 0x{last.handle:04X}, {last.title or 'no title'})"
                        f" has no field: the capture looks cut off there")
    form = "dmidecode" if not read.inferred else "dmidecode (re-indented)"
    return CaptureFacts(sources=((label, form),), dmi=read.dmi if read.dmi.structures else None, dmi_form=form,
                        provenance=tuple(Provenance("dmidecode layout", "read", i) for i in read.inferred),
                        problems=tuple(problems))


def _read_banner(text: str, label: str) -> CaptureFacts:
    read = dmidecode_text.read_banner(text, label)
    return CaptureFacts(sources=((label, "DMI banner"),), dmi=read.dmi, dmi_form="DMI banner",
                        provenance=tuple(Provenance("smbios.system.manufacturer", FROM_NAME, i) for i in read.inferred),
                        problems=read.problems)


def _sniff_dmesg(text: str, section: Section) -> int:
    return dmesg_text.looks_like_dmesg(text, section.kernel_log)


FORMS: tuple[Form, ...] = (
    Form("lspci", "pci", ("lspci",), _sniff_lspci, _read_lspci,
         "BB:DD.F device lines, Slot: records, quoted -mm records or a -[DDDD:BB]- tree"),
    Form("lshw -businfo", "pci", ("lshw",), lambda t, s: lshw_text.looks_like_businfo(t),
         lshw_text.read_businfo, "a 'Bus info  Device  Class  Description' table"),
    Form("lshw", "pci", ("lshw",), lambda t, s: lshw_text.looks_like_sections(t), lshw_text.read_sections,
         "'*-network' nodes with 'bus info: pci@…' attributes"),
    Form("dmidecode", "identity", ("dmidecode",), lambda t, s: dmidecode_text.looks_like_dmidecode(t),
         _read_dmidecode, "'Handle 0x…, DMI type N' records or 'System Information' sections"),
    Form("DMI banner", "identity", (), lambda t, s: dmidecode_text.looks_like_banner(t)
         if len([ln for ln in t.splitlines() if ln.strip()]) <= 3 else 0,
         _read_banner, "a 'DMI: <vendor> <product>/<board>, BIOS <version> <date>' line"),
    Form("ip link", "nics", ("ip", "ifconfig"), lambda t, s: netnames_text.looks_like_ip(t), netnames_text.read_ip,
         "'2: ens192: <BROADCAST,…> mtu …' lines"),
    Form("ls -l /sys/class/net", "nics", ("ls",), lambda t, s: netnames_text.looks_like_sysfs(t),
         netnames_text.read_sysfs, "'ens192 -> ../../devices/pci0000:00/…/net/ens192' links"),
    Form("dmesg", "kernel", ("dmesg", "journalctl", "grep"), _sniff_dmesg, dmesg_text.read_dmesg,
         "kernel lines ('Hypervisor detected:', 'DMI:', 'pci 0000:…: [vvvv:dddd]')"),
    Form("dmidecode -s", "identity", ("dmidecode",), dmidecode_s_text.sniff, lambda t, label: CaptureFacts(),
         "a 'dmidecode -s KEYWORD' command line and its one-line answer",
         read_section=lambda part, label: dmidecode_s_text.read_answer(dmidecode_s_text.keyword_of(part) or "",
                                                                         part.text, label)),
    Form("hostnamectl", "identity", ("hostnamectl",), lambda t, s: hostnamectl_text.looks_like_hostnamectl(t),
         hostnamectl_text.read_hostnamectl, "'Hardware Vendor:', 'Hardware Model:', 'Firmware Version:' lines"),
    Form("inxi", "identity", ("inxi",), lambda t, s: inxi_text.looks_like_inxi(t), inxi_text.read_inxi,
         "'Machine:', 'System:', 'Network:' sections of key: value pairs"),
    Form("systemctl device units", "nics", ("systemctl",), lambda t, s: units_text.looks_like_units(t),
         units_text.read_units, "'sys-devices-pci0000:00-…-net-ens160.device loaded active plugged' lines"),
    Form("ls -l /dev/disk/by-path", "disks", ("ls", "ll", "tree"), lambda t, s: units_text.looks_like_bypath(t),
         units_text.read_bypath, "'pci-0000:03:00.0-scsi-0:0:0:0 -> ../../sda' links"),
    Form("lshw -short", "nics", ("lshw",), lambda t, s: lshw_short_text.looks_like_short(t),
         lshw_short_text.read_short, "'H/W path  Device  Class  Description' rows ('/0/100/15/0  ens160  network …')"),
    Form("hwinfo", "pci", ("hwinfo",), lambda t, s: hwinfo_text.looks_like_hwinfo(t), hwinfo_text.read_hwinfo,
         "'24: PCI 300.0: 0200 Ethernet controller' entries with 'SysFS BusID:' and 'Vendor: pci 0x…' lines"),
    Form("uname -a", "kernel", ("uname",), lambda t, s: hostnamectl_text.looks_like_uname(t),
         hostnamectl_text.read_uname, "a 'Linux <host> <release> … x86_64 GNU/Linux' line"),
)


def forms_accepted() -> str:
    return ", ".join(f.name for f in FORMS)


def _score(form: Form, section: Section) -> int:
    try:
        score = form.sniff(section.text, section)
    except Exception:  # noqa: BLE001 - a sniffer that chokes on junk simply does not claim it
        return 0
    if section.command and score:
        word = section.command.split()[0].rsplit("/", 1)[-1]
        score += 15 if word in form.commands else 0
    return score


def identify(section: Section) -> tuple[Form | None, list[tuple[int, Form]]]:
    """The form that reads ``section`` (None if none is confident enough) and every form's score."""
    scored = sorted(((_score(f, section), f) for f in FORMS), key=lambda p: -p[0])
    best = scored[0]
    return (best[1] if best[0] >= THRESHOLD else None), scored


def _without_prose(part: Section) -> tuple[Section, Form, int] | None:
    """The section with up to three lines of prose dropped from its start (a sentence, a heading, a
    ``/*`` wrapper) and two from its end, when that lets a form read it."""
    lines = part.text.splitlines()
    if len(lines) > 5000:       # prose wraps a pasted output, not a log of thousands of lines
        return None
    for head in range(0, min(3, len(lines) - 1) + 1):
        for tail in range(0, min(2, len(lines) - head - 1) + 1):
            if head == tail == 0:
                continue
            body = lines[head:len(lines) - tail]
            if not body or any(_looks_like_output(ln) for ln in lines[:head] + lines[len(lines) - tail:]):
                continue
            trimmed = Section("\n".join(body) + "\n", part.first_line + head, part.command, part.kernel_log)
            form, _ = identify(trimmed)
            if form is not None:
                return trimmed, form, head + tail
    return None


def _looks_like_output(line: str) -> bool:
    """A line a tool prints (an address, a key: value field, a table row), never prose to drop."""
    stripped = line.strip()
    return bool(_LEAD_ADDR.match(stripped) or re.match(r"^[\w /()-]{2,30}: \S", stripped)
                or re.match(r"^(?:Handle 0x|/0/|sys-devices-|pci-0000:)", stripped))


def read_text(text: str, label: str) -> CaptureFacts:
    """Every fact one file holds (one or several commands' outputs)."""
    parts = sections(text)
    if not parts:
        raise ProfileError(f"{label}: empty: no capture text (accepted: {forms_accepted()})")
    readings: list[CaptureFacts] = []
    skipped: list[str] = []
    closest: tuple[int, Form, Section] | None = None
    for part in parts:
        where = label if len(parts) == 1 else f"{label} line {part.first_line}"
        form, scored = identify(part)
        prose: tuple[str, ...] = ()
        if form is None:
            trimmed = _without_prose(part)
            if trimmed is not None:
                part, form, dropped = trimmed
                prose = (f"{where}: {dropped} line(s) of prose before or after the output skipped",)
        if form is None:
            if closest is None or scored[0][0] > closest[0]:
                closest = (scored[0][0], scored[0][1], part)
            skipped.append(where)
            continue
        reading = form.read_section(part, where) if form.read_section else form.read(part.text, where)
        readings.append(replace(reading, problems=prose + reading.problems) if prose else reading)
    readings = [r for r in readings if not r.empty] or readings
    if not readings or all(r.empty for r in readings):
        hint = ""
        if closest is not None and closest[0] > 0:
            hint = (f"; closest: {closest[1].name} (it shows {closest[1].needs}; this text "
                    f"{'has too little of that' if closest[0] else 'has none'})")
        elif readings:
            hint = "; " + "; ".join(p for r in readings for p in r.problems)[:400]
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        raise ProfileError(f"{label}: not a capture this tool reads (first line {first[:60]!r}). "
                           f"Accepted forms: {forms_accepted()}{hint}")
    facts = merge(readings, label)
    if skipped and len(parts) > 1:
        facts = CaptureFacts(**{**facts.__dict__, "problems": facts.problems + tuple(
            f"{w}: text no form reads, skipped" for w in skipped)})
    return facts


#: a VM's whole capture (dmidecode, lspci -vvv, a boot's kernel log, …) is well under 1 MiB; a journal
#: of months is not a capture, and reading it whole would only cost memory
MAX_CAPTURE_BYTES = 16 * 1024 * 1024
#: at most this many files in one capture
MAX_CAPTURE_FILES = 64


def read_capture_file(path: Path) -> str:
    """The text of one capture file, refused past :data:`MAX_CAPTURE_BYTES` without reading more."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CAPTURE_BYTES + 1)
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the capture: {exc.strerror}") from None
    if len(data) > MAX_CAPTURE_BYTES:
        raise ProfileError(f"{path}: larger than {MAX_CAPTURE_BYTES // (1024 * 1024)} MiB: not one VM's capture "
                           f"(cut the outputs it needs: lspci, dmidecode, the boot's kernel log)")
    return data.decode("utf-8", errors="replace")


def read_files(paths: tuple[Path, ...]) -> CaptureFacts:
    """One VM's facts from text files (each may hold several outputs)."""
    if len(paths) > MAX_CAPTURE_FILES:
        raise ProfileError(f"{len(paths)} capture files: one VM's capture is at most {MAX_CAPTURE_FILES} files")
    readings = []
    for path in paths:
        readings.append(read_text(read_capture_file(path), path.name))
    label = ", ".join(p.name for p in paths)
    return merge(readings, label)


# Windows-side captures (issue 23): pnputil, Get-PnpDevice, Win32_PnPEntity, devcon, reg export, setupapi.dev.log,
# systeminfo, wmic, Get-NetAdapter; profiles/importers/windows_import.py reads them.
from guestcompat.profiles.importers.windows_import import WINDOWS_FORM  # noqa: E402 - registered last, like a plug-in

FORMS = FORMS + (WINDOWS_FORM,)
