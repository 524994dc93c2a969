"""Spread a matrix over libvirt hosts: one worker process per host, ``jobs_per_host`` boots in it.

Why a process per host: libvirt's embedded QEMU driver is one object per process and refuses a
second root ("Cannot open embedded driver at path B, already open with path A", libvirt's
qemuConnectOpen; measured here, also after the first connection is closed). Two local
``qemu:///embed?root=DIR`` hosts therefore cannot live in one process; a daemon URI
(``qemu+unix:///system?socket=…``, ``qemu+ssh://…``) could, but one shape for every URI keeps the
cleanup story the same. Inside the worker, each boot is a thread (libvirt connections are
thread-safe and the boot only waits on QEMU and a console file).

Before anything runs, each daemon host is asked for its capacity and what its QEMU can run
(harness/fleet.py); cells are placed round-robin in plan order over the hosts able to run them, so
a host's share is known before anything runs and an unreachable host turns exactly its own cells
into errors naming its URI while the others go on. A host that goes away mid-run fails the cell it
was running ("stopped answering") and the rest of its share ("cannot be reached"). The domain it
still runs is destroyed when it answers again: by the worker before it exits, if the host is back
by then, else by the next matrix that connects to it (harness/libvirt_owner.py), or at once by
``guestcompat fleet clean``. The worker sends ``started``/``finished`` events on a queue, so progress stays live. Stopping
(Ctrl-C, SIGTERM, or the matrix being cancelled) sets the worker's cancel event: every running
boot ends with an error and destroys and undefines its domain before the worker exits.

An embedded root reads this machine's files; a daemon's host shares no path with this machine:
the runner ships what a cell needs through libvirt's storage API (harness/libvirt_storage.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Sequence

from guestcompat.errors import GuestcompatError, HostLostError
from guestcompat.harness.fleet import HostInfo, need, place, probe
from guestcompat.harness.matrix import CELL_GRACE, CellResult, Reporter, outcome_result
from guestcompat.harness.matrix_plan import Cell, PlannedCell
from guestcompat.images.build import GuestImage

EVENT_POLL = 0.5
STOP_GRACE = 60.0
"""Seconds a stopped worker gets to destroy and undefine its domains before it is killed."""

Work = tuple[int, Cell, object, GuestImage]
"""(plan index, cell, CompiledMachine, image) as sent to a host worker."""


def _error(cell: Cell, uri: str | None, reason: str, seconds: float = 0.0) -> CellResult:
    return CellResult(cell, "error", seconds, reason=reason, host=uri)


def host_worker(uri: str, work: list[Work], jobs: int, timeout: float, events) -> None:
    """Body of one host's worker process: reachability check, then ``jobs`` boots at a time."""
    from guestcompat.harness import libvirt_owner as owner
    from guestcompat.harness.libvirt_embed import connect, embed_uri_root, keep_capabilities
    from guestcompat.harness.run import run_with_image_libvirt

    cancel = threading.Event()
    lost = threading.Event()  # the host went away during a run: the domain may still be there
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: cancel.set())
    try:
        with connect(uri) as conn:
            swept = owner.sweep(conn.conn)  # what runs from this machine that are gone left there
        if swept:
            events.put(("swept", uri, swept, "left by guestcompat runs that are gone"))
    except GuestcompatError as exc:
        for index, cell, _compiled, _image in work:
            events.put(("finished", index, _error(cell, uri, f"libvirt host {uri} cannot be reached: {exc}")))
        events.put(("done", uri))
        return

    def one(item: Work) -> None:
        index, cell, compiled, image = item
        if cancel.is_set():
            events.put(("finished", index, _error(cell, uri, f"not run: the matrix was stopped (host {uri})")))
            return
        events.put(("started", index))
        began = time.monotonic()
        try:
            outcome = run_with_image_libvirt(compiled, image, uri=uri, timeout=timeout, cancel=cancel)
            result = outcome_result(cell, outcome, time.monotonic() - began)
            result = dataclasses.replace(result, host=uri, host_name=outcome.boot.host,
                                         qemu_build=outcome.boot.qemu_build)
        except HostLostError as exc:
            lost.set()
            result = _error(cell, uri, f"on libvirt host {uri}: {exc}", time.monotonic() - began)
        except GuestcompatError as exc:
            result = _error(cell, uri, f"on libvirt host {uri}: {exc}", time.monotonic() - began)
        except Exception as exc:  # one run's bug must not take the host's other cells down
            result = _error(cell, uri, f"on libvirt host {uri}: internal error: {type(exc).__name__}: {exc}",
                            time.monotonic() - began)
        events.put(("finished", index, result))

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="cell") as pool:
        futures = [pool.submit(one, item) for item in work]
        while not all(f.done() for f in futures):
            time.sleep(0.1)  # the main thread stays free for the signal handlers
    if lost.is_set():
        _remove_own_if_back(uri, events)
    root = embed_uri_root(uri)
    if root is not None:  # multiprocessing children skip atexit: keep what libvirt probed here now
        keep_capabilities(root)
    events.put(("done", uri))


def _remove_own_if_back(uri: str, events) -> None:
    """The host went away during one of this worker's runs: if it answers again now, destroy the
    domains this worker left there (each run destroys its own domain, so all that has this
    worker's pid in its name is left over); if not, the next matrix on it sweeps them
    (harness/libvirt_owner.py) and ``fleet clean`` removes them at once."""
    from guestcompat.harness import libvirt_owner as owner
    from guestcompat.harness.libvirt_embed import connect

    try:
        with connect(uri) as conn:
            removed = owner.remove_own(conn.conn)
    except GuestcompatError:
        events.put(("swept", uri, [], "still unreachable: its leftover domains go at the next matrix on it "
                                      "or with guestcompat fleet clean"))
        return
    if removed:
        events.put(("swept", uri, removed, "left by this run while the host was away"))


def probe_hosts(planned: Sequence[PlannedCell], images: dict[int, GuestImage], hosts: Sequence[str],
                jobs_per_host: int | None) -> tuple[HostInfo, ...]:
    """Every host's capacity and what its QEMU cannot run (harness/fleet.py), in ``hosts`` order."""
    needs = {need(planned[i]) for i in images}
    memory = max((planned[i].compiled.profile.platform.memory_mb for i in images), default=0)
    return tuple(probe(uri, needs, memory, jobs_per_host) for uri in hosts)


async def run_hosts(planned: Sequence[PlannedCell], images: dict[int, GuestImage], reporter: Reporter,
                    hosts: Sequence[HostInfo], timeout: float) -> dict[int, CellResult]:
    """Run every cell of ``images`` on a host that can run it; returns results by plan index, one for
    every cell."""
    shares, unplaceable = place(sorted(images), planned, hosts)
    jobs = {h.uri: h.jobs for h in hosts}
    context = multiprocessing.get_context("forkserver")
    loop = asyncio.get_running_loop()
    results: dict[int, CellResult] = {}
    for index, why in unplaceable.items():
        results[index] = _error(planned[index].cell, None, why)
        reporter.finished(results[index])
    workers: list[multiprocessing.process.BaseProcess] = []

    async def drive(uri: str, indices: list[int]) -> None:
        events = context.Queue()
        work = [(i, planned[i].cell, planned[i].compiled, images[i]) for i in indices]
        jobs_per_host = jobs[uri]
        proc = context.Process(target=host_worker, args=(uri, work, jobs_per_host, timeout, events),
                               name=f"guestcompat-host-{len(workers)}")
        workers.append(proc)
        proc.start()
        # a host's cells run jobs_per_host at a time; beyond that, the worker itself must have hung
        deadline = time.monotonic() + (timeout + CELL_GRACE) * (len(work) // jobs_per_host + 1) + 60
        began: dict[int, float] = {}
        while True:
            try:
                event = await loop.run_in_executor(None, events.get, True, EVENT_POLL)
            except queue.Empty:
                if not proc.is_alive() or time.monotonic() > deadline:
                    why = (f"the worker process for libvirt host {uri} exited with code {proc.exitcode}"
                           if not proc.is_alive() else f"libvirt host {uri} did not finish its cells in time")
                    for i in indices:
                        if i not in results:
                            results[i] = _error(planned[i].cell, uri, why, time.monotonic() - began.get(i, time.monotonic()))
                            reporter.finished(results[i])
                    return
                continue
            if event[0] == "started":
                began[event[1]] = time.monotonic()
                reporter.started(planned[event[1]].cell)
            elif event[0] == "finished":
                results[event[1]] = event[2]
                reporter.finished(event[2])
            elif event[0] == "swept":
                _, _, names, why = event
                text = (f"libvirt host {uri}: destroyed and undefined {len(names)} domain(s) {why}: {', '.join(names)}"
                        if names else f"libvirt host {uri} {why}")
                reporter.message(planned[indices[0]].cell, text)
            elif event[0] == "done":
                return

    try:
        await asyncio.gather(*(drive(uri, indices) for uri, indices in shares.items() if indices))
    finally:
        for proc in workers:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: the worker cancels its boots, which clean up their domains
        for proc in workers:
            proc.join(STOP_GRACE)
            if proc.is_alive():
                with contextlib.suppress(OSError):
                    proc.kill()
                proc.join()
    return results
