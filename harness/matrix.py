"""Run a planned matrix in parallel, one result per cell.

Images are built (or found in the cache) once, up front and one after the
other, before any guest starts: concurrent runs then only boot. Two ways to
run the boots side by side:

* ``async`` (default): every run is an asyncio task in this process, at most
  ``jobs`` at a time. QEMU does the work in its own process; the harness only
  reads consoles and compares, so one event loop keeps up with many guests.
* ``process``: a process pool of ``jobs`` workers, each calling
  :func:`run_profile`. Costs an interpreter start and imports per worker;
  measured with bench/matrix.py (docs/design.md has the numbers).

A crashed, hung or unreadable run is an error for its cell only. Every run's
QEMU process group and temp dir are cleaned up by the runner, also when the
matrix is interrupted (the tasks are cancelled and unwind).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from guestcompat.errors import GuestcompatError
from guestcompat.harness.compare import Status
from guestcompat.harness.matrix_plan import Cell, PlannedCell
from guestcompat.harness.run import RunOutcome, image_for, run_profile, run_with_image_async
from guestcompat.images.build import GuestImage

MODES = ("async", "process")
HOSTS_MODE = "libvirt"
"""The mode a matrix spread over libvirt hosts reports (harness/matrix_hosts.py)."""
CELL_GRACE = 30.0
"""Seconds a cell may take beyond the boot timeout (compile, compare, QEMU's exit) before it is cancelled."""


@dataclass(frozen=True)
class CellResult:
    """The outcome of one cell: ``verdict`` is pass, mismatch, error or skipped."""

    cell: Cell
    verdict: str
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    reason: str = ""
    """Why it was skipped, or the error message."""
    mismatches: tuple[str, ...] = ()
    """One line per failed check (what the guest saw instead of what the profile asks)."""
    seconds_to_fingerprint: float | None = None
    host: str | None = None
    """The libvirt URI the cell ran on (``matrix --libvirt``); None for direct QEMU runs and for cells
    never sent to a host (skipped, or an error before any boot)."""
    host_name: str | None = None
    """The host's own name (``virConnectGetHostname``) when the cell ran there."""
    qemu_build: str | None = None
    """The emulator that ran the cell on a libvirt host and the version it reports over QMP."""

    def to_json(self) -> dict:
        return {"profile": self.cell.profile, "target": str(self.cell.target), "arch": self.cell.target.arch,
                "machine": self.cell.target.machine, "accel": self.cell.target.accel,
                "qemu_binary": self.cell.target.qemu_binary, "verdict": self.verdict,
                "seconds": round(self.seconds, 3), "seconds_to_fingerprint": self.seconds_to_fingerprint,
                "counts": dict(self.counts), "reason": self.reason, "mismatches": list(self.mismatches),
                "host": self.host, "host_name": self.host_name, "qemu_build": self.qemu_build}


@dataclass(frozen=True)
class MatrixResult:
    results: tuple[CellResult, ...]
    wall_seconds: float
    jobs: int
    mode: str
    hosts: tuple[str, ...] = ()
    """libvirt URIs the cells were spread over (``mode == "libvirt"``; ``jobs`` is then per host, 0 when
    each host's own capacity decided: ``host_info``)."""
    host_info: tuple = ()
    """harness/fleet.py HostInfo per host: its capacity, name and numbers."""

    @property
    def run_seconds(self) -> float:
        """Sum of the cells' own times (what running them one after the other would roughly cost)."""
        return sum(r.seconds for r in self.results if r.verdict in ("pass", "mismatch", "error"))

    def exit_code(self) -> int:
        """0 all pass, 1 any mismatch, 2 any error (CI's convention, as for ``guestcompat run``)."""
        verdicts = {r.verdict for r in self.results}
        if "error" in verdicts:
            return 2
        return 1 if "mismatch" in verdicts else 0


class Reporter(Protocol):
    """Where the matrix tells what it is doing (a live display or plain lines)."""

    def planned(self, total: int) -> None: ...
    def started(self, cell: Cell) -> None: ...
    def message(self, cell: Cell, text: str) -> None: ...
    def finished(self, result: CellResult) -> None: ...


def outcome_result(cell: Cell, outcome: RunOutcome, seconds: float) -> CellResult:
    mismatches = tuple(c.line() + (f"  ({c.note})" if c.note else "")
                       for c in outcome.checks if c.status is Status.FAIL)
    return CellResult(cell, "pass" if outcome.passed else "mismatch", seconds, outcome.counts(),
                      mismatches=mismatches, seconds_to_fingerprint=round(outcome.boot.seconds_to_document, 3))


def default_jobs() -> int:
    return os.cpu_count() or 1


def run_matrix(planned: Sequence[PlannedCell], reporter: Reporter, *, jobs: int | None = None,
               timeout: float = 120.0, mode: str = "async", hosts: Sequence[str] = ()) -> MatrixResult:
    """Run every runnable cell (``jobs`` at a time) and return all cells' results in plan order.

    With ``hosts`` (libvirt URIs), the cells are spread over them and ``jobs`` is per host
    (harness/matrix_hosts.py); ``mode`` is then ignored and reported as ``libvirt``.
    """
    if hosts:
        if len(set(hosts)) != len(hosts):
            raise GuestcompatError(f"a libvirt host is given twice: {', '.join(hosts)}")
        mode = HOSTS_MODE
        if jobs is not None and jobs < 1:
            raise GuestcompatError(f"--jobs-per-host must be at least 1, not {jobs}")
    elif mode not in MODES:
        raise GuestcompatError(f"unknown matrix mode {mode!r} (known: {', '.join(MODES)})")
    else:
        jobs = jobs or default_jobs()
    if jobs is not None and jobs < 1:
        raise GuestcompatError(f"--jobs must be at least 1, not {jobs}")
    reporter.planned(len(planned))
    results: dict[int, CellResult] = {}
    images: dict[int, GuestImage] = {}
    for index, item in enumerate(planned):
        if item.skip_reason is not None:
            results[index] = CellResult(item.cell, "skipped", reason=item.skip_reason)
        elif item.error is not None or item.compiled is None:
            results[index] = CellResult(item.cell, "error", reason=item.error or "not compiled")
        else:
            try:
                images[index] = image_for(item.compiled, lambda msg, c=item.cell: reporter.message(c, msg))
            except GuestcompatError as exc:
                results[index] = CellResult(item.cell, "error", reason=f"guest image: {exc}")
    for result in results.values():
        reporter.finished(result)
    started = time.monotonic()
    host_info: tuple = ()
    if hosts:
        from guestcompat.harness.matrix_hosts import probe_hosts, run_hosts

        host_info = probe_hosts(planned, images, hosts, jobs)
        results.update(asyncio.run(run_hosts(planned, images, reporter, host_info, timeout)))
    else:
        assert jobs is not None
        runner = _run_async if mode == "async" else _run_processes
        results.update(asyncio.run(runner(planned, images, reporter, jobs, timeout)))
    wall = time.monotonic() - started
    return MatrixResult(tuple(results[i] for i in range(len(planned))), wall, jobs or 0, mode, tuple(hosts),
                        host_info)


async def _run_async(planned: Sequence[PlannedCell], images: dict[int, GuestImage], reporter: Reporter,
                     jobs: int, timeout: float) -> dict[int, CellResult]:
    gate = asyncio.Semaphore(jobs)

    async def one(index: int) -> tuple[int, CellResult]:
        item = planned[index]
        async with gate:
            reporter.started(item.cell)
            began = time.monotonic()
            try:
                outcome = await asyncio.wait_for(
                    run_with_image_async(item.compiled, images[index], timeout=timeout,
                                         progress=lambda msg: reporter.message(item.cell, msg)),
                    timeout + CELL_GRACE)
                result = outcome_result(item.cell, outcome, time.monotonic() - began)
            except asyncio.TimeoutError:
                result = CellResult(item.cell, "error", time.monotonic() - began,
                                    reason=f"the run did not finish within {timeout + CELL_GRACE:.0f} s")
            except GuestcompatError as exc:
                result = CellResult(item.cell, "error", time.monotonic() - began, reason=str(exc))
            except Exception as exc:  # an internal bug in one run must not take the others down
                result = CellResult(item.cell, "error", time.monotonic() - began,
                                    reason=f"internal error: {type(exc).__name__}: {exc}")
        reporter.finished(result)
        return index, result

    return dict(await asyncio.gather(*(one(i) for i in images)))


def _process_cell(cell: Cell, timeout: float) -> CellResult:
    """One run in a pool worker (module-level so it pickles); never raises."""
    began = time.monotonic()
    try:
        outcome = run_profile(cell.profile, cell.target, timeout=timeout)
        return outcome_result(cell, outcome, time.monotonic() - began)
    except GuestcompatError as exc:
        return CellResult(cell, "error", time.monotonic() - began, reason=str(exc))
    except Exception as exc:
        return CellResult(cell, "error", time.monotonic() - began,
                          reason=f"internal error: {type(exc).__name__}: {exc}")


async def _run_processes(planned: Sequence[PlannedCell], images: dict[int, GuestImage], reporter: Reporter,
                         jobs: int, timeout: float) -> dict[int, CellResult]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(jobs)
    # forkserver: workers do not inherit this process's event loop or threads.
    context = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        async def one(index: int) -> tuple[int, CellResult]:
            cell = planned[index].cell
            async with gate:
                reporter.started(cell)
                began = time.monotonic()
                try:
                    result = await loop.run_in_executor(pool, _process_cell, cell, timeout)
                except concurrent.futures.process.BrokenProcessPool as exc:
                    result = CellResult(cell, "error", time.monotonic() - began,
                                        reason=f"the worker process died: {exc}")
            reporter.finished(result)
            return index, result

        return dict(await asyncio.gather(*(one(i) for i in images)))
