"""The fidelity report as people and programs read it.

Deviations are grouped by their reason: one reason ("QEMU has no VMCI
device") usually explains several properties, and a reviewer wants to read
it once, with the properties it covers listed under it.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from guestcompat.emulation.compiler import CompiledMachine
from guestcompat.emulation.fidelity import Fidelity, fmt


def binary_placeholder(compiled: CompiledMachine) -> str:
    """The QEMU binary as compile output shows it: a build alias (``--qemu patched``) stays symbolic
    (``@qemu-patched/qemu-system-x86_64``), since its cache path depends on the machine."""
    from guestcompat.images.qemu_builds import is_alias, is_stock

    alias = compiled.target.qemu_binary
    if is_alias(alias) and not is_stock(alias):
        return f"@qemu-{alias}/{Path(compiled.argv[0]).name}"
    return compiled.argv[0]


def display(compiled: CompiledMachine, arg: str) -> str:
    """*arg* as compile output shows it: machine-dependent paths (a cached firmware build's directory)
    as their placeholders, so golden files do not depend on the cache path."""
    for path, placeholder in compiled.display_paths:
        arg = arg.replace(path, placeholder)
    return arg


def argv_lines(compiled: CompiledMachine) -> list[str]:
    """The argv one option per line (option and value together): readable in a diff."""
    argv = [display(compiled, arg) for arg in compiled.argv]
    lines = [shlex.quote(binary_placeholder(compiled))]
    i = 1
    while i < len(argv):
        if argv[i].startswith("-") and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            lines.append(f"{argv[i]} {shlex.quote(argv[i + 1])}")
            i += 2
        else:
            lines.append(argv[i])
            i += 1
    return lines


def artefact_lines(compiled: CompiledMachine) -> list[str]:
    """One line per auxiliary file the argv refers to (its source is in ``--format json``)."""
    return [f"{a.placeholder}: {a.description or a.kind}, built at run time from "
            f"{len(a.source.splitlines())} lines of {a.kind} source" for a in compiled.artefacts]


def fidelity_lines(compiled: CompiledMachine) -> list[str]:
    report = compiled.report
    counts = report.counts()
    lines = [f"fidelity of {compiled.profile.name} on {compiled.target}: "
             f"{counts['exact']} exact, {counts['approximate']} approximate, {counts['unsupported']} unsupported"]
    if compiled.firmware:
        lines.append(f"firmware: {compiled.firmware}")
    groups: dict[tuple[str, str], list] = {}
    for expectation in report.deviations():
        groups.setdefault((expectation.fidelity.value, expectation.reason or ""), []).append(expectation)
    for status in (Fidelity.APPROXIMATE.value, Fidelity.UNSUPPORTED.value):
        for (group_status, reason), members in groups.items():
            if group_status != status:
                continue
            lines.append("")
            lines.append(f"{status}: {reason}")
            for e in members:
                lines.append(f"    {e.selector}: wanted {fmt(e.wanted)}, presented {fmt(e.presented)}")
    predicted = predicted_placements(compiled)
    if predicted:
        lines.append("")
        lines.append("predicted placements (the source assigns them at first power-on: the addresses, slots and NIC "
                     "names below follow VMware's rule, not a read fact):")
        lines.extend(f"    {name} at {address}: {basis}" for name, address, basis in predicted)
    return lines


def predicted_placements(compiled: CompiledMachine) -> list[tuple[str, str, str]]:
    """(device, address, rule) of every device the profile places by prediction (``placement = "predicted"``)."""
    pci = getattr(compiled.profile, "pci", None)
    return [(d.name, str(d.address), d.placement_basis or "") for d in (pci.devices if pci else ())
            if d.placement == "predicted"]


def blocked_lines(compiled: CompiledMachine) -> list[str]:
    """The blocked features that apply (profiles/catalog/blocked.toml), with what each means for a run."""
    if not compiled.blocked:
        return []
    meaning = {"gap": "predicted in the fidelity report; run checks the guest shows exactly that",
               "no-run": "run refuses to boot this profile"}
    lines = [f"blocked on {compiled.target}:"]
    for b in compiled.blocked:
        what = f"{b.feature}" + (f" ({b.requires})" if b.requires else "") + (f", device {b.device}" if b.device else "")
        lines.append(f"    {what}: {b.message(compiled.profile, compiled.target.arch)} [{meaning[b.effect]}]")
    return lines


def to_json(compiled: CompiledMachine) -> dict[str, Any]:
    document = _document(compiled)
    predicted = predicted_placements(compiled)
    if predicted:   # only then: documents of profiles without predictions stay as they were
        document["fidelity"]["predicted_placements"] = [{"device": n, "address": a, "basis": b}
                                                        for n, a, b in predicted]
    return document


def _document(compiled: CompiledMachine) -> dict[str, Any]:
    return {
        "profile": compiled.profile.name,
        "lineage": list(compiled.profile.lineage),
        "target": {"arch": compiled.target.arch, "machine": compiled.target.machine, "accel": compiled.target.accel},
        "argv": list(compiled.argv),
        "firmware": compiled.firmware or None,
        "modaliases": list(compiled.modaliases),
        "artefacts": [{"name": a.name, "kind": a.kind, "description": a.description, "placeholder": a.placeholder,
                       "source": a.source} for a in compiled.artefacts],
        "blocked": [{"feature": b.feature, "effect": b.effect, "requires": b.requires, "device": b.device,
                     "reason": b.message(compiled.profile, compiled.target.arch)} for b in compiled.blocked],
        "fidelity": {"counts": compiled.report.counts(), "expectations": compiled.report.to_json()},
    }
