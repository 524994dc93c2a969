"""Replay a capture: rebuild the source VM from what its guest saw, boot it, and score the likeness.

``guestcompat replay`` takes what a user captured inside the real VM (the
capture script's JSON, or ``lspci -nnmmv`` and/or ``dmidecode`` text),
imports it as a profile (profiles/importers/capture.py), compiles and boots
it, and compares what the *booted* guest's own tools saw with what the
*source* guest's tools saw.  Both sides are compared in the same terms (the
same tools' output, parsed the same way), category by category:

* placement: a function of the source's class (base class and subclass) at
  each source PCI address, and its physical slot;
* ids: vendor, device, subsystem, class, revision, prog-if of each function
  present at its address;
* identity: every dmidecode field of the BIOS, system, baseboard, chassis
  and OEM-strings structures, and the SMBIOS version;
* detection: each detection model's verdict (detection/models.py) that
  names a hypervisor from the captured facts alone, and the real tools'
  answers (systemd-detect-virt, virt-what) the source ran;
* names: the predictable name (``ens192``) of each source NIC.

A score is matched/compared per category; it never stands alone: every
deviation is listed, and a category the capture cannot speak about is
shown as "not compared", not as 100%.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from guestcompat.detection import models
from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.detection.netnames import PciLocation, name_at
from guestcompat.detection.tools import Dmidecode, GuestTools, LspciDevice, ToolRun
from guestcompat.errors import ProfileError

_PCI_ADDRESS = re.compile(r"^(?:[0-9a-f]{4}:)?[0-9a-f]{2}:[01][0-9a-f]\.[0-7]\Z", re.IGNORECASE)
CATEGORIES = ("placement", "ids", "identity", "detection", "names")
_DMI_TYPES = {0: "BIOS", 1: "System", 2: "Base Board", 3: "Chassis"}
_ID_FIELDS = (("vendor", 4), ("device", 4), ("subsystem_vendor", 4), ("subsystem_device", 4), ("class_id", 4),
              ("revision", 2), ("prog_if", 2))


@dataclass(frozen=True)
class Deviation:
    """One fact of the source the replayed guest does not reproduce."""

    category: str
    subject: str
    wanted: str
    observed: str

    @property
    def text(self) -> str:
        return f"{self.subject}: source {self.wanted}, replay {self.observed}"


@dataclass(frozen=True)
class CategoryScore:
    category: str
    compared: int
    matched: int

    @property
    def score(self) -> float | None:
        """Fraction of the compared facts reproduced; None when the capture held none of this category."""
        return self.matched / self.compared if self.compared else None

    def line(self) -> str:
        if not self.compared:
            return f"{self.category:<10} not compared (the capture holds no such facts)"
        return f"{self.category:<10} {100 * self.matched / self.compared:5.1f}%  {self.matched}/{self.compared}"


@dataclass(frozen=True)
class Comparison:
    scores: tuple[CategoryScore, ...]
    deviations: tuple[Deviation, ...]

    def below(self, minimum: float) -> tuple[CategoryScore, ...]:
        """Categories scoring under ``minimum`` (0..1)."""
        return tuple(s for s in self.scores if s.score is not None and s.score < minimum)


class _Tally:
    def __init__(self) -> None:
        self.compared = {c: 0 for c in CATEGORIES}
        self.matched = {c: 0 for c in CATEGORIES}
        self.deviations: list[Deviation] = []

    def check(self, category: str, subject: str, wanted: Any, observed: Any) -> bool:
        self.compared[category] += 1
        if wanted == observed:
            self.matched[category] += 1
            return True
        self.deviations.append(Deviation(category, subject, _show(wanted), _show(observed)))
        return False

    def result(self) -> Comparison:
        return Comparison(tuple(CategoryScore(c, self.compared[c], self.matched[c]) for c in CATEGORIES),
                          tuple(self.deviations))


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, tuple):
        return ", ".join(map(str, value)) or "nothing"
    return repr(value) if isinstance(value, str) else str(value)


def _hex(value: int | None, width: int) -> str | None:
    return None if value is None else f"{value:0{width}x}"


def _label(d: LspciDevice) -> str:
    if d.vendor is None or d.device is None:     # ids the capture did not show (inferred ones are not scored)
        return d.device_name or "no ids shown"
    return f"{_hex(d.vendor, 4)}:{_hex(d.device, 4)} {d.device_name or ''}".rstrip()


def compare(source: Fingerprint, replay: Fingerprint, source_nics: dict[str, str] | None = None) -> Comparison:
    """Score how faithfully ``replay`` (a booted guest) reproduces ``source`` (a capture).

    ``source_nics``: PCI address -> NIC name the source listed (ip link, /sys/class/net, lshw)."""
    tally = _Tally()
    src_pci = {d.address: d for d in (source.tools.lspci if source.tools else ()) if _PCI_ADDRESS.match(d.address)}
    rep_pci = {d.address: d for d in (replay.tools.lspci if replay.tools else ())}
    for address, d in sorted(src_pci.items()):
        there = rep_pci.get(address)
        want_class = _hex(d.class_id, 4)
        got_class = None if there is None else _hex(there.class_id, 4)
        what = f"a class {want_class} function"
        if want_class is None:      # a listing without classes (lshw, lspci -t): a function at the address
            want_class, got_class, what = "present", None if there is None else "present", "a function"
        if not tally.check("placement", f"PCI {address} ({_label(d)}): {what}", want_class, got_class):
            elsewhere = [a for a, r in rep_pci.items() if (r.vendor, r.device) == (d.vendor, d.device)]
            if elsewhere:
                last = tally.deviations[-1]
                tally.deviations[-1] = Deviation(last.category, last.subject, last.wanted,
                                                 f"{last.observed} (these ids are at {', '.join(sorted(elsewhere))})")
            continue
        if d.physical_slot is not None:
            tally.check("placement", f"physical slot of {address} ({_label(d)})", d.physical_slot,
                        there.physical_slot)
        for attr, width in _ID_FIELDS:
            want = getattr(d, attr)
            if want is not None:
                tally.check("ids", f"{attr.replace('_', ' ')} of {address} ({_label(d)})", _hex(want, width),
                            _hex(getattr(there, attr), width))
    _identity(tally, source.tools.dmidecode if source.tools else None,
              replay.tools.dmidecode if replay.tools else None)
    _detection(tally, source, replay)
    _names(tally, source, replay, src_pci, source_nics or {})
    return tally.result()


def _identity(tally: _Tally, src: Dmidecode | None, rep: Dmidecode | None) -> None:
    if src is None:
        return
    if src.smbios_version:
        tally.check("identity", "SMBIOS version", src.smbios_version, rep.smbios_version if rep else None)
    for number, title in _DMI_TYPES.items():
        structure = src.first(number)
        if structure is None:
            continue
        other = rep.first(number) if rep else None
        for key, value in sorted(structure.fields.items()):
            tally.check("identity", f"dmidecode {title} {key}", value, other.fields.get(key) if other else None)
    want_oem = tuple(v for s in src.of_type(11) for k, v in sorted(s.fields.items()) if k.startswith("String "))
    if want_oem:
        got = tuple(v for s in rep.of_type(11) for k, v in sorted(s.fields.items())
                    if k.startswith("String ")) if rep else ()
        tally.check("identity", "dmidecode OEM strings", want_oem, got)


def _detection(tally: _Tally, source: Fingerprint, replay: Fingerprint) -> None:
    want, got = models.evaluate(source), models.evaluate(replay)
    for name, verdict in want.items():
        # A capture is partial (no CPUID, maybe no DMI): a detector that says nothing or "none" on it may
        # only lack facts; one that already names the hypervisor from the captured facts alone is a
        # finding the replay must reproduce.
        if verdict.result in (None, "", "none"):
            continue
        tally.check("detection", f"{name} model verdict", verdict.result, got[name].result)
    if source.hypervisor_lines:
        tally.check("detection", "the kernel's 'Hypervisor detected'", models.kernel_says(source),
                    models.kernel_says(replay))
    st, rt = source.tools, replay.tools
    if st is not None:
        if "systemd-detect-virt" in st.runs:
            tally.check("detection", "systemd-detect-virt (the tool)", st.detect_virt, rt.detect_virt if rt else None)
        if "virt-what" in st.runs:
            tally.check("detection", "virt-what (the tool)", st.virt_what, rt.virt_what if rt else None)


def _nic_names(fp: Fingerprint) -> dict[str, str]:
    """PCI address → the predictable name the guest gives the NIC there."""
    if fp.tools is None:
        return {}
    names = {}
    for nic in fp.net:
        entry = fp.tools.net_names.get(nic.name)
        if nic.pci and entry and entry.predictable:
            names[nic.pci[5:] if nic.pci.startswith("0000:") else nic.pci] = entry.predictable
    return names


def lspci_name(d: LspciDevice, present: dict[str, LspciDevice], fp: Fingerprint) -> str:
    """systemd's net_id name (detection/netnames.py) for what lspci shows: ``ens<slot>`` with a
    physical slot, else the path name; the multifunction bit from the fingerprint's config space
    when it was read, else from the other functions lspci lists at the same bus:device."""
    function = fp.pci_function(d.address)
    read = function.multifunction if function is not None else None
    slot = int(d.physical_slot) if d.physical_slot and d.physical_slot.isdigit() else None
    return name_at(PciLocation.parse(d.slot), slot, _locations(present.values()), read)


def _locations(devices: Iterable[LspciDevice]) -> list[PciLocation]:
    found = []
    for d in devices:
        with contextlib.suppress(ValueError):  # not an address lspci prints for a PCI function: no sibling
            found.append(PciLocation.parse(d.slot))
    return found


def _names(tally: _Tally, source: Fingerprint, replay: Fingerprint, src_pci: dict[str, LspciDevice],
           listed: dict[str, str]) -> None:
    """A side that ran net_id is taken at its word; one that did not (an lspci text capture) gets the
    name net_id derives from what lspci shows (physical slot, else bus path)."""
    observed_src, observed_rep = _nic_names(source), _nic_names(replay)
    rep_pci = {d.address: d for d in (replay.tools.lspci if replay.tools else ())}
    rep_ran_net_id = bool(replay.tools and replay.tools.net_names)
    for address, name in sorted(listed.items()):
        if address not in src_pci:      # a NIC the capture names but whose function it does not list
            got = observed_rep.get(address)
            if got is None and not rep_ran_net_id and address in rep_pci:
                got = lspci_name(rep_pci[address], rep_pci, replay)
            tally.check("names", f"NIC name of {address}", name, got)
    # A name predicted from lspci needs the physical slots lspci shows with -v/-vmm; a listing without
    # any (plain, -nn, -mm, lshw, dmesg) cannot say whether the NIC was ens192 or enp11s0.
    shows_slots = any(d.physical_slot for d in src_pci.values())
    for address, d in sorted(src_pci.items()):
        if (d.class_id is None or d.class_id >> 8 != 0x02) and address not in listed:
            continue
        if address not in listed and address not in observed_src and not shows_slots:
            continue
        want = listed.get(address) or observed_src.get(address) or lspci_name(d, src_pci, source)
        got = observed_rep.get(address)
        if got is None and not rep_ran_net_id and address in rep_pci:
            got = lspci_name(rep_pci[address], rep_pci, replay)
        tally.check("names", f"NIC name of {address} ({_label(d)})", want, got)


# ---------------------------------------------------------------------------
# loading captures and running the replay


@dataclass(frozen=True)
class SourceCapture:
    """What was captured in the source VM, typed, plus the tool texts the importer reads."""

    fingerprint: Fingerprint
    lspci: str | None
    dmidecode: str | None
    label: str
    #: every fact of a text capture, with provenance (profiles/importers/forms.py); None for a capture JSON
    facts: Any = None


def load_sources(paths: tuple[Path, ...]) -> SourceCapture:
    """One capture JSON (the capture script's output), or text files in any form forms.py reads."""
    from guestcompat.detection.capture_script import load_capture_document
    from guestcompat.profiles.importers.forms import read_capture_file, read_files

    if not paths:
        raise ProfileError("replay needs a capture: the JSON `gc-capture.sh` printed, or lspci/dmidecode text")
    for path in paths:
        text = read_capture_file(path)
        if text.lstrip().startswith("{") or "@@GUESTCOMPAT-BEGIN" in text:
            if len(paths) > 1:
                raise ProfileError(f"{path}: a capture JSON is replayed alone (it already holds lspci and dmidecode)")
            fp = Fingerprint.from_document(load_capture_document(text, str(path)))
            runs = fp.tools.runs if fp.tools else {}
            lspci_run, dmi_run = runs.get("lspci"), runs.get("dmidecode")
            return SourceCapture(fp, lspci_run.stdout if lspci_run and lspci_run.ok else None,
                                 dmi_run.stdout if dmi_run and dmi_run.ok else None, path.name)
    facts = read_files(paths)
    return SourceCapture(source_fingerprint(facts), None, None, ", ".join(p.name for p in paths), facts)


def source_fingerprint(facts: Any) -> Fingerprint:
    """The source side of the comparison: only what the capture *read* (inferred ids left out)."""
    from guestcompat.profiles.importers.redacted import without_redacted

    fp = models.fingerprint_from_captures(None, None)
    dmi, _redacted = without_redacted(facts.dmi)     # a redacted value is no fact to score
    tools = dataclasses.replace(fp.tools or GuestTools(runs={}), lspci=facts.read_pci(), dmidecode=dmi)
    if getattr(facts, "detect_virt", None):   # hostnamectl's Virtualization line: systemd-detect-virt's answer
        tools = dataclasses.replace(tools, runs={**tools.runs, "systemd-detect-virt": ToolRun(0, facts.detect_virt, "")},
                                    detect_virt=facts.detect_virt)
    lines = (f"Hypervisor detected: {facts.kernel.hypervisor}",) if facts.kernel and facts.kernel.hypervisor else ()
    return dataclasses.replace(fp, tools=tools, hypervisor_lines=lines)


@dataclass(frozen=True)
class ReplayResult:
    source: SourceCapture
    profile_toml: str
    notes: tuple[str, ...]
    outcome: Any          # harness.run.RunOutcome
    comparison: Comparison
    seconds: float
    inferred: tuple[str, ...] = ()     # facts the import inferred or defaulted (not scored)


def replay(source: SourceCapture, target: Any, *, disk_image: Path | None = None, timeout: float = 240.0,
           progress: Callable[[str], None] | None = None) -> ReplayResult:
    """Import ``source`` into a throwaway profile, boot it on ``target`` and compare."""
    from guestcompat.emulation.compiler import compile_profile
    from guestcompat.harness.run import run_compiled
    from guestcompat.profiles.importers.capture import import_capture, import_facts
    from guestcompat.profiles.loader import load_mapping

    say = progress or (lambda _m: None)
    name = "replay/capture"
    if source.facts is not None:
        imported = import_facts(name, source.facts, label=source.label, source=source.label)
    else:
        imported = import_capture(name, lspci=source.lspci, dmidecode=source.dmidecode, lspci_source=source.label,
                                  label=source.label)
    data, profile = dict(imported.data), imported.profile
    if disk_image is not None:
        data["disks"] = [_disk(data, disk_image)]
        profile = load_mapping(data, name, origin=f"{source.label} with --image {disk_image}")
    text = tomli_w.dumps(data)
    start = time.monotonic()
    say("compiling the imported profile")
    compiled = compile_profile(profile, target)
    outcome = run_compiled(compiled, timeout=timeout, progress=progress)
    say("comparing with the capture")
    # a NIC address the capture did not show (lshw -short's tree path read through VMware's layout) is
    # inferred: listed, not scored
    guessed = {p.key for p in source.facts.provenance if p.how != "read"} if source.facts is not None else set()
    nics = ({n.pci: n.name for n in source.facts.nics if n.pci and f"nic {n.name} at {n.pci}" not in guessed}
            if source.facts is not None else {})
    return ReplayResult(source, text, tuple(imported.notes), outcome,
                        compare(source.fingerprint, outcome.fingerprint, source_nics=nics),
                        time.monotonic() - start, tuple(imported.inferred))


def _disk(profile: Mapping[str, Any], image: Path) -> dict[str, Any]:
    """``image`` as unit 0 of the profile's first storage controller (catalogue role "storage")."""
    from guestcompat.profiles.catalog import load_catalog

    catalog = load_catalog()
    controllers = [d for d in profile.get("pci", {}).get("devices", [])
                   if catalog.kinds[d["kind"]].disk_bus is not None and "substitute" not in d]
    if not controllers:
        raise ProfileError(f"--image {image}: the capture shows no storage controller QEMU presents to attach it to")
    if not image.is_file():
        raise ProfileError(f"--image {image}: no such file")
    return {"name": "disk0", "controller": controllers[0]["name"], "unit": 0, "image": str(image.resolve())}
