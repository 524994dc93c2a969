"""The Windows verdict as text (people), JSON (tools) and JUnit XML (CI).

Pure functions of a :class:`~.verdict.WindowsVerdict`. The text groups runs
of bridges with the same outcome (VMware's 32 root ports are one line), and
says per changed device what Windows filed it under before and after, why it
is new and which driver it gets.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from guestcompat.detection.windows.verdict import GONE, NEW, SAME, DeviceRow, WindowsVerdict
from guestcompat.detection.windows.view import WinDevice, WindowsView

FORMAT = "guestcompat-windows-verdict"
VERSION = 1
_MARK = {SAME: "=", NEW: "+", GONE: "-"}


def _root(view: WindowsView) -> str:
    r = view.machine.root
    return f"root ACPI {r.hid} _UID {r.uid if r.uid is not None else 'none'}, serial-number ids: {'yes' if r.pcie_native else 'no (no PCIe config access)'}"


def _label(d: WinDevice) -> str:
    return d.source.label or d.device_id


def _groups(rows: tuple[DeviceRow, ...]) -> list[list[DeviceRow]]:
    """Consecutive bridges with the same outcome, ids and kind of reason become one group."""
    def shape(row: DeviceRow) -> tuple | None:
        if row.device.role != "bridge":
            return None
        return (row.status, row.device.device_id, tuple(r.split(":")[0] for r in row.reasons))

    out: list[list[DeviceRow]] = []
    for row in rows:
        if out and shape(row) is not None and shape(row) == shape(out[-1][-1]):
            out[-1].append(row)
        else:
            out.append([row])
    return out


def render_text(v: WindowsVerdict, *, verbose: bool = False) -> list[str]:
    lines = [f"{v.target.windows.title}: what Windows sees after the move",
             f"  source: {v.source.machine.label} ({_root(v.source)})",
             f"  target: {v.target.machine.label} ({_root(v.target)})", "",
             "PCI functions (= same instance, + new, - gone):"]
    for group in _groups(v.rows):
        row = group[0]
        d = row.device
        where = d.where if len(group) == 1 else f"{d.where} … {group[-1].device.where} ({len(group)} functions)"
        lines.append(f"  {_MARK[row.status]} {where:<12} {_label(d)}: {row.label}")
        if row.status == SAME and not verbose:
            continue
        if row.source is not None and row.status != SAME:
            lines.append(f"      was {row.source.instance_path}")
        if row.target is not None:
            lines.append(f"      {'is ' if row.status == SAME else 'now'} {row.target.instance_path}")
        for reason in row.reasons:
            lines.append(f"      why {reason}")
        if row.target is not None and row.status != GONE:
            lines.append(f"      driver {row.target.driver.describe()}")
    lines += ["", f"boot ({v.target.windows.boot_database}): {v.boot.summary}"]
    for step in v.boot.steps:
        lines.append(f"  {'✓' if step.ok else '✗'} {step.where}: {step.rule}")
    lines += ["", f"NICs that lose their configuration: {len(v.nics) or 'none'}"]
    for nic in v.nics:
        lines.append(f"  {nic.source.where} {_label(nic.source)}: {nic.why}")
    scheme = "XP/2003 hardware hash" if v.activation.scheme == "xp-hash" else "Vista and later"
    lines += ["", f"activation ({scheme}): {v.activation.summary}"]
    for change in v.activation.changes:
        lines.append(f"  {change.component}: {change.source!r} → {change.target!r}")
    if v.notes:
        lines += ["", "notes:"] + [f"  {n}" for n in v.notes]
    lines += ["", summary(v)]
    return lines


def render_view(view: WindowsView) -> list[str]:
    """One machine as Windows names it: per function its instance path, ids, driver; the boot chain."""
    lines = [f"{view.windows.title} on {view.machine.label}", f"  {_root(view)}", ""]
    for d in view.devices:
        lines.append(f"  {d.where:<8} {_label(d)}")
        lines.append(f"      instance   {d.instance_path}")
        if d.form == "location":
            lines.append(f"      parent     {d.parent_path}")
        lines.append(f"      hardware   {' '.join(d.hardware_ids)}")
        lines.append(f"      compatible {' '.join(d.compatible_ids)}")
        lines.append(f"      driver     {d.driver.describe()}")
        for note in d.notes:
            lines.append(f"      note       {note}")
    chain = " <- ".join(view.device(k).where for k in view.boot_chain) if view.boot_chain else "none (no boot disk)"
    lines += ["", f"boot chain (controller first): {chain}"]
    if view.notes:
        lines += ["notes:"] + [f"  {n}" for n in view.notes]
    lines.append("‹…› is a parent prefix Windows computes from the parent's instance path with an unpublished hash: "
                 "equal exactly when that path is equal")
    return lines


def view_json(view: WindowsView) -> dict[str, Any]:
    return {"windows": view.windows.name, **_view(view), "devices": [_device(d) for d in view.devices]}


def summary(v: WindowsVerdict) -> str:
    boot = {True: "BOOTS", False: "DOES NOT BOOT (0x7B)", None: "boot cannot be told"}[v.boot.boots]
    return (f"{boot}: {v.count(SAME)} same, {v.count(NEW)} new ({v.count(NEW, 'present')} driver present, "
            f"{v.count(NEW, 'missing')} driver missing), {v.count(GONE)} gone; "
            f"{len(v.nics)} NIC(s) lose their settings")


def _device(d: WinDevice | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {"key": d.source.key, "address": d.source.address, "label": d.source.label, "role": d.role,
            "instance_path": d.instance_path, "form": d.form, "location": d.location,
            "serial": None if d.serial is None else f"{d.serial:016X}", "parent_path": d.parent_path,
            "hardware_ids": list(d.hardware_ids), "compatible_ids": list(d.compatible_ids),
            "driver": None if d.driver.entry is None else {
                "service": d.driver.entry.service, "origin": d.driver.entry.origin,
                "matched_id": d.driver.matched_id, "title": d.driver.entry.title},
            "notes": list(d.notes)}


def _view(view: WindowsView) -> dict[str, Any]:
    r = view.machine.root
    return {"label": view.machine.label, "root": {"hid": r.hid, "uid": r.uid, "pcie_native": r.pcie_native,
                                                  "why": r.why},
            "boot_chain": list(view.boot_chain), "notes": list(view.notes)}


def to_json(v: WindowsVerdict, fail_on: str = "boot") -> str:
    doc = {
        "format": FORMAT, "version": VERSION, "windows": v.target.windows.name,
        "source": _view(v.source), "target": _view(v.target),
        "devices": [{"status": r.status, "driver": r.driver, "reasons": list(r.reasons),
                     "source": _device(r.source), "target": _device(r.target)} for r in v.rows],
        "boot": {"boots": v.boot.boots, "summary": v.boot.summary, "database": v.target.windows.boot_database,
                 "steps": [{"key": s.key, "where": s.where, "ok": s.ok, "rule": s.rule} for s in v.boot.steps]},
        "nics_losing_settings": [{"source": _device(n.source)["instance_path"], "where": n.source.where,
                                  "target": n.target.instance_path if n.target else None, "why": n.why}
                                 for n in v.nics],
        "activation": {"scheme": v.activation.scheme, "summary": v.activation.summary,
                       "points": list(v.activation.points) if v.activation.points else None,
                       "changes": [{"component": c.component, "source": c.source, "target": c.target}
                                   for c in v.activation.changes]},
        "notes": list(v.notes),
        "summary": summary(v),
        "exit_code": v.exit_code(fail_on),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _clean(text: str) -> str:
    """XML 1.0 cannot hold most control characters: U+FFFD instead (as matrix_report does)."""
    return "".join(ch if ch in "\t\n\r" or ord(ch) >= 0x20 else "\ufffd" for ch in text)


def to_junit(v: WindowsVerdict, fail_on: str = "boot") -> bytes:
    """One test case for boot and one per PCI function; what fails follows the CI gate (``fail_on``): a boot
    failure and a function without a driver always, a NIC that loses its settings with ``nic``, any change
    with ``any``."""
    suite = ET.Element("testsuite", name="guestcompat.windows")
    cases = 0
    failures = 0
    classname = _clean(f"{v.source.machine.label} -> {v.target.machine.label}")
    boot = ET.SubElement(suite, "testcase", classname=classname, name="boot")
    cases += 1
    if v.boot.boots is False:
        ET.SubElement(boot, "failure", message=_clean(v.boot.summary)).text = _clean(
            "\n".join(s.rule for s in v.boot.steps))
        failures += 1
    elif v.boot.boots is None:
        ET.SubElement(boot, "skipped", message=_clean(v.boot.summary))
    for row in v.rows:
        d = row.device
        case = ET.SubElement(suite, "testcase", classname=classname, name=_clean(f"{d.where} {_label(d)}"))
        cases += 1
        text = "\n".join([row.label] + list(row.reasons))
        nic_lost = row.source is not None and row.source.role == "nic" and row.status != SAME
        if row.status == NEW and row.driver == "missing":
            ET.SubElement(case, "failure", message=_clean(f"new, no driver: {d.device_id}")).text = _clean(text)
            failures += 1
        elif (nic_lost and fail_on in ("nic", "any")) or (row.status != SAME and fail_on == "any"):
            ET.SubElement(case, "failure", message=_clean(f"{row.label}: {d.device_id}")).text = _clean(text)
            failures += 1
        elif row.status != SAME:
            ET.SubElement(case, "system-out").text = _clean(text)
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)
