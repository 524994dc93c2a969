"""Render a matrix: live progress, the summary table, JUnit XML and JSON.

JUnit: one ``testsuite`` (``guestcompat.matrix``), one ``testcase`` per cell
(classname = profile, name = target, and for a cell run on a libvirt host
``<properties>`` with ``host`` (its URI), ``host_name`` (the host's own name) and ``qemu_build``
(the emulator and the version it reports)); a mismatch is a ``failure`` whose text
is the mismatch lines, an error an ``error``, a skipped cell ``skipped`` with
its reason. Built with xml.etree, so profile names and guest output are
escaped by the library.
"""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from guestcompat.harness.matrix import CellResult, MatrixResult
from guestcompat.harness.matrix_plan import Cell

VERDICT_STYLE = {"pass": "green", "mismatch": "red", "error": "red bold", "skipped": "yellow"}
FORMAT = "guestcompat-matrix"
VERSION = 1


_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    """Guest console lines can carry control characters XML 1.0 cannot hold: shown as U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def _name(cell: Cell) -> str:
    return f"{cell.profile} {cell.label}"


def _on(result: CellResult) -> str:
    return f" on {result.host}" if result.host else ""


class PlainReporter:
    """One line per event on stderr: CI logs keep the whole history."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.total = 0
        self.done = 0

    def planned(self, total: int) -> None:
        self.total = total
        print(f"matrix: {total} cells", file=self.stream, flush=True)

    def started(self, cell: Cell) -> None:
        print(f"{_name(cell)}: started", file=self.stream, flush=True)

    def message(self, cell: Cell, text: str) -> None:
        print(f"{_name(cell)}: {text}", file=self.stream, flush=True)

    def finished(self, result: CellResult) -> None:
        self.done += 1
        detail = f" ({result.reason.splitlines()[0]})" if result.reason else ""
        print(f"[{self.done}/{self.total}] {_name(result.cell)}: {result.verdict}{_on(result)} {result.seconds:.1f} s"
              f"{detail}",
              file=self.stream, flush=True)


class LiveReporter:
    """A rich progress display: an overall bar and one spinner line per running cell."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True)
        self.overall = None
        self.running: dict[Cell, Any] = {}

    def __enter__(self) -> "LiveReporter":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def planned(self, total: int) -> None:
        self.overall = self.progress.add_task("matrix", total=total)

    def started(self, cell: Cell) -> None:
        self.running[cell] = self.progress.add_task(escape(_name(cell)), total=None)

    def message(self, cell: Cell, text: str) -> None:
        task = self.running.get(cell, self.overall)   # before its run starts: image building, on the bar's line
        if task is not None:
            self.progress.update(task, description=escape(f"{_name(cell)}: {text}"))

    def finished(self, result: CellResult) -> None:
        task = self.running.pop(result.cell, None)
        if task is not None:
            self.progress.remove_task(task)
        style = VERDICT_STYLE[result.verdict]
        self.progress.console.print(f"[{style}]{result.verdict:>8}[/] {escape(_name(result.cell) + _on(result))} "
                                    f"{result.seconds:.1f} s")
        self.progress.advance(self.overall)


def summary_table(matrix: MatrixResult) -> Table:
    if matrix.hosts and not matrix.jobs:  # each host's own capacity
        jobs = f"{len(matrix.hosts)} libvirt hosts ({' + '.join(str(h.jobs) for h in matrix.host_info)} jobs)"
    elif matrix.hosts:
        jobs = f"{len(matrix.hosts)} libvirt hosts x {matrix.jobs} jobs"
    else:
        jobs = f"{matrix.jobs} jobs ({matrix.mode})"
    table = Table(title=f"matrix: {len(matrix.results)} cells, {jobs}, "
                        f"wall {matrix.wall_seconds:.1f} s, runs {matrix.run_seconds:.1f} s")
    columns = [("profile", "left"), ("target", "left"), ("verdict", "left"), ("passed", "right"),
               ("deviations", "right"), ("mismatches", "right"), ("seconds", "right"), ("note", "left")]
    if matrix.hosts:
        columns.insert(2, ("host", "left"))
    for column, justify in columns:
        table.add_column(column, justify=justify)
    for r in matrix.results:
        counts = [str(r.counts[k]) if r.counts else "" for k in ("pass", "deviation", "fail")]
        note = r.reason.splitlines()[0] if r.reason else (r.mismatches[0] if r.mismatches else "")
        host = [escape((r.host or "") + (f" ({r.host_name})" if r.host_name else ""))] if matrix.hosts else []
        table.add_row(escape(r.cell.profile), escape(r.cell.label), *host,
                      f"[{VERDICT_STYLE[r.verdict]}]{r.verdict}[/]", *counts,
                      f"{r.seconds:.1f}" if r.verdict != "skipped" else "", escape(note))
    return table


def to_json(matrix: MatrixResult) -> dict[str, Any]:
    verdicts = [r.verdict for r in matrix.results]
    return {"format": FORMAT, "version": VERSION, "jobs": matrix.jobs, "mode": matrix.mode,
            "hosts": list(matrix.hosts), "host_info": [h.to_json() for h in matrix.host_info],
            "wall_seconds": round(matrix.wall_seconds, 3), "run_seconds": round(matrix.run_seconds, 3),
            "exit_code": matrix.exit_code(),
            "totals": {v: verdicts.count(v) for v in ("pass", "mismatch", "error", "skipped")},
            "cells": [r.to_json() for r in matrix.results]}


def json_text(matrix: MatrixResult) -> str:
    return json.dumps(to_json(matrix), indent=2, sort_keys=True) + "\n"


def to_junit(matrix: MatrixResult) -> ET.ElementTree:
    verdicts = [r.verdict for r in matrix.results]
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", {
        "name": "guestcompat.matrix", "tests": str(len(verdicts)), "failures": str(verdicts.count("mismatch")),
        "errors": str(verdicts.count("error")), "skipped": str(verdicts.count("skipped")),
        "time": f"{matrix.wall_seconds:.3f}"})
    for r in matrix.results:
        case = ET.SubElement(suite, "testcase", {"classname": r.cell.profile, "name": r.cell.label,
                                                 "time": f"{r.seconds:.3f}"})
        if r.host:  # the form pytest's record_property writes, which CI viewers show
            props = ET.SubElement(case, "properties")
            for name, value in (("host", r.host), ("host_name", r.host_name), ("qemu_build", r.qemu_build)):
                if value:
                    ET.SubElement(props, "property", {"name": name, "value": _xml(value)})
        if r.verdict == "mismatch":
            failure = ET.SubElement(case, "failure", {
                "message": _xml(f"{len(r.mismatches)} mismatches: {r.mismatches[0] if r.mismatches else ''}"),
                "type": "mismatch"})
            failure.text = _xml("\n".join(r.mismatches))
        elif r.verdict == "error":
            error = ET.SubElement(case, "error", {"message": _xml(r.reason.splitlines()[0] if r.reason else "error"),
                                                  "type": "error"})
            error.text = _xml(r.reason)
        elif r.verdict == "skipped":
            ET.SubElement(case, "skipped", {"message": _xml(r.reason)})
        if r.counts:
            out = ET.SubElement(case, "system-out")
            out.text = (f"{r.counts.get('pass', 0)} passed, {r.counts.get('deviation', 0)} known deviations, "
                        f"{r.counts.get('fail', 0)} mismatches")
    return ET.ElementTree(suites)


def junit_bytes(matrix: MatrixResult) -> bytes:
    tree = to_junit(matrix)
    ET.indent(tree)
    return ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True)
