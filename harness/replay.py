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

import dataclasses
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guestcompat.detection import models
from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.detection.tools import Dmidecode, GuestTools, LspciDevice
from guestcompat.profiles.loader import extra_profile_dir
from guestcompat.profiles.importers.lspci_text import detect_form, parse_lspci
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
    return f"{_hex(d.vendor, 4)}:{_hex(d.device, 4)} {d.device_name or ''}".rstrip()


def compare(source: Fingerprint, replay: Fingerprint) -> Comparison:
    """Score how faithfully ``replay`` (a booted guest) reproduces ``source`` (a capture)."""
    tally = _Tally()
    src_pci = {d.address: d for d in (source.tools.lspci if source.tools else ()) if _PCI_ADDRESS.match(d.address)}
    rep_pci = {d.address: d for d in (replay.tools.lspci if replay.tools else ())}
    for address, d in sorted(src_pci.items()):
        there = rep_pci.get(address)
        want_class = _hex(d.class_id, 4)
        got_class = None if there is None else _hex(there.class_id, 4)
        if not tally.check("placement", f"PCI {address} ({_label(d)}): a class {want_class} function",
                           want_class, got_class):
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
    _names(tally, source, replay, src_pci)
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


def predicted_name(d: LspciDevice) -> str:
    """systemd's net_id name from what lspci shows: ``ens<slot>`` with a physical slot, else the path name."""
    bus, rest = d.address.split(":")[-2:]
    slot, function = rest.split(".")
    suffix = f"f{int(function)}" if function != "0" else ""
    if d.physical_slot and d.physical_slot.isdigit():
        return f"ens{d.physical_slot}{suffix}"
    return f"enp{int(bus, 16)}s{int(slot, 16)}{suffix}"


def _names(tally: _Tally, source: Fingerprint, replay: Fingerprint, src_pci: dict[str, LspciDevice]) -> None:
    """A side that ran net_id is taken at its word; one that did not (an lspci text capture) gets the
    name net_id derives from what lspci shows (physical slot, else bus path)."""
    observed_src, observed_rep = _nic_names(source), _nic_names(replay)
    rep_pci = {d.address: d for d in (replay.tools.lspci if replay.tools else ())}
    rep_ran_net_id = bool(replay.tools and replay.tools.net_names)
    for address, d in sorted(src_pci.items()):
        if d.class_id is None or d.class_id >> 8 != 0x02:
            continue
        want = observed_src.get(address) or predicted_name(d)
        got = observed_rep.get(address)
        if got is None and not rep_ran_net_id and address in rep_pci:
            got = predicted_name(rep_pci[address])
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


def load_sources(paths: tuple[Path, ...]) -> SourceCapture:
    """One capture JSON (the capture script's output), or lspci -nnmmv and/or dmidecode text files."""
    from guestcompat.detection.capture_script import load_capture_document

    if not paths:
        raise ProfileError("replay needs a capture: the JSON `gc-capture.sh` printed, or lspci/dmidecode text")
    lspci = dmidecode = None
    lspci_path = paths[0]
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            raise ProfileError(f"{path}: cannot read the capture: {exc.strerror}") from None
        if text.lstrip().startswith("{") or "@@GUESTCOMPAT-BEGIN" in text:
            if len(paths) > 1:
                raise ProfileError(f"{path}: a capture JSON is replayed alone (it already holds lspci and dmidecode)")
            fp = Fingerprint.from_document(load_capture_document(text, str(path)))
            runs = fp.tools.runs if fp.tools else {}
            lspci_run, dmi_run = runs.get("lspci"), runs.get("dmidecode")
            return SourceCapture(fp, lspci_run.stdout if lspci_run and lspci_run.ok else None,
                                 dmi_run.stdout if dmi_run and dmi_run.ok else None, path.name)
        if "Handle 0x" in text and "DMI type" in text:
            dmidecode = _once(dmidecode, text, path, "dmidecode")
        elif detect_form(text) != "unknown":
            lspci = _once(lspci, text, path, "lspci")
            lspci_path = path
        else:
            raise ProfileError(f"{path}: neither a capture JSON, `lspci -nnmmv` output (Slot: lines) nor "
                               f"`dmidecode` output (Handle 0x…, DMI type …)")
    fp = models.fingerprint_from_captures(lspci if lspci and detect_form(lspci) == "vmm" else None, dmidecode)
    if lspci and detect_form(lspci) != "vmm":   # -nn, -vvv, -tv: the same records, read by lspci_text
        devices, _errors, _form = parse_lspci(lspci, str(lspci_path))
        tools = fp.tools or GuestTools(runs={})
        fp = dataclasses.replace(fp, tools=dataclasses.replace(tools, lspci=devices))
    return SourceCapture(fp, lspci, dmidecode, ", ".join(p.name for p in paths))


def _once(current: str | None, text: str, path: Path, what: str) -> str:
    if current is not None:
        raise ProfileError(f"{path}: a second {what} capture; replay one VM at a time")
    return text


@dataclass(frozen=True)
class ReplayResult:
    source: SourceCapture
    profile_toml: str
    notes: tuple[str, ...]
    outcome: Any          # harness.run.RunOutcome
    comparison: Comparison
    seconds: float


def replay(source: SourceCapture, target: Any, *, disk_image: Path | None = None, timeout: float = 240.0,
           progress: Callable[[str], None] | None = None) -> ReplayResult:
    """Import ``source`` into a throwaway profile, boot it on ``target`` and compare."""
    import tomli_w

    from guestcompat.emulation.compiler import compile_profile
    from guestcompat.harness.run import run_compiled
    from guestcompat.profiles.importers.capture import import_capture
    from guestcompat.profiles.loader import load

    say = progress or (lambda _m: None)
    name = "replay/capture"
    imported = import_capture(source.label, lspci=source.lspci, dmidecode=source.dmidecode,
                              lspci_source=source.label)
    profile = imported.profile
    if disk_image is not None:
        _attach(profile, disk_image)
    text = tomli_w.dumps(profile)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="guestcompat-replay-") as tmp:
        (Path(tmp) / "replay").mkdir()
        (Path(tmp) / "replay" / "capture.toml").write_text(text)
        with extra_profile_dir(Path(tmp)):
            say("compiling the imported profile")
            compiled = compile_profile(load(name), target)
            outcome = run_compiled(compiled, timeout=timeout, progress=progress)
    say("comparing with the capture")
    return ReplayResult(source, text, tuple(imported.notes), outcome, compare(source.fingerprint, outcome.fingerprint),
                        time.monotonic() - start)


def _attach(profile: dict[str, Any], image: Path) -> None:
    """Put ``image`` on the profile's first storage controller (catalogue role "storage") as unit 0."""
    from guestcompat.profiles.catalog import load_catalog

    catalog = load_catalog()
    controllers = [d for d in profile.get("pci", {}).get("devices", [])
                   if catalog.kinds[d["kind"]].disk_bus is not None and "substitute" not in d]
    if not controllers:
        raise ProfileError(f"--image {image}: the capture shows no storage controller QEMU presents to attach it to")
    if not image.is_file():
        raise ProfileError(f"--image {image}: no such file")
    profile["disks"] = [{"name": "disk0", "controller": controllers[0]["name"], "unit": 0,
                         "image": str(image.resolve())}]
