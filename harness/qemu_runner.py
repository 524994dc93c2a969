"""Boot one compiled machine under QEMU and collect the guest's probe document.

QEMU starts paused (``-S``) with a QMP monitor on a unix socket in a private
temp dir and the guest console on its stdout. The runner connects QMP,
resumes the guest, reads console lines into the frame reader until the probe
document is complete, asks QMP for QEMU's own view (``query-pci``), and quits.

Whatever happens (QEMU refuses the command line, crashes, the guest hangs or
prints garbage, the user presses Ctrl-C) the QEMU process group is killed and
the temp dir removed before the call returns or raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient
from qemu.qmp.error import QMPError

from guestcompat.detection.frame import FrameReader
from guestcompat.harness.console_log import KeptLines
from guestcompat.emulation.compiler import CompiledMachine
from guestcompat.emulation.qemuopts import opts
from guestcompat.harness.artefacts import build_all, substitute
from guestcompat.errors import ProbeError, RunError

CONSOLE_TAIL = 25
QMP_APPEAR_TIMEOUT = 15.0
QUIT_TIMEOUT = 5.0
CONSOLE_LINE_LIMIT = 1 << 20
SHUTDOWN_DRAIN = 1.0


@dataclass(frozen=True)
class BootImage:
    """What the runner boots: a kernel, an initramfs and their command line."""

    kernel: Path
    initrd: Path
    cmdline: tuple[str, ...]


@dataclass
class BootResult:
    document: dict[str, Any]
    console: list[str]
    query_pci: list[dict[str, Any]]
    seconds_to_document: float          # from `cont` (guest start) to the END line
    argv: list[str]
    events: list[str] = field(default_factory=list)
    seconds_from_launch: float = 0.0    # from spawning QEMU to the END line (what a user waits)


def make_run_dir(prefix: str) -> Path:
    """A private run directory in TMPDIR; a full or read-only TMPDIR is a RunError naming it."""
    try:
        return Path(tempfile.mkdtemp(prefix=prefix))
    except OSError as exc:
        raise RunError(f"cannot create the run directory in {tempfile.gettempdir()}: {exc.strerror} "
                       f"(TMPDIR names where runs keep their QMP socket)") from None


def launch_argv(compiled: CompiledMachine, image: BootImage, qmp_path: Path,
                artefacts: dict[str, Path] | None = None) -> list[str]:
    """The full QEMU argv: the compiled machine (its artefact placeholders replaced by the built
    files' paths) plus how this run boots and talks to it."""
    return [
        *substitute(compiled.argv, artefacts or {}),
        "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", " ".join(image.cmdline),
        "-chardev", "stdio,id=console,signal=off", *compiled.arch.console_args("console"),
        "-chardev", opts("socket", id="qmp", path=str(qmp_path), server=True, wait=False),  # TMPDIR may hold a ','
        "-mon", "chardev=qmp,mode=control",
        "-S", "-no-shutdown", "-no-reboot",
    ]


def boot(compiled: CompiledMachine, image: BootImage, *, timeout: float = 120.0,
         on_console: Callable[[str], None] | None = None) -> BootResult:
    """Synchronous entry point (the CLI and tests call this)."""
    return asyncio.run(boot_async(compiled, image, timeout=timeout, on_console=on_console))


async def boot_async(compiled: CompiledMachine, image: BootImage, *, timeout: float = 120.0,
                     on_console: Callable[[str], None] | None = None) -> BootResult:
    # The pid in the name tells whose run a stray directory was.
    workdir = make_run_dir(f"guestcompat-run-{os.getpid()}-")
    qmp_path = workdir / "qmp.sock"
    console: KeptLines = KeptLines()
    tail: deque[str] = deque(maxlen=CONSOLE_TAIL)
    proc: asyncio.subprocess.Process | None = None
    qmp = QMPClient(f"guestcompat-{os.getpid()}")
    events: list[str] = []
    quit_sent = False
    launched = time.monotonic()
    argv = list(compiled.argv)
    try:
        argv = launch_argv(compiled, image, qmp_path, await asyncio.to_thread(build_all, compiled.artefacts))
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True, limit=CONSOLE_LINE_LIMIT)
        except FileNotFoundError:
            raise RunError(f"QEMU binary {argv[0]!r} not found (run `make setup`)", argv=argv) from None
        stderr_task = asyncio.create_task(proc.stderr.read())
        await _connect_qmp(qmp, qmp_path, proc, stderr_task, argv)
        shutdown = asyncio.Event()
        qmp_events = asyncio.create_task(_collect_events(qmp, events, shutdown))
        started = time.monotonic()
        await qmp.execute("cont")
        reader = FrameReader()
        try:
            await asyncio.wait_for(_read_until_document_or_shutdown(proc, reader, console, tail, on_console, shutdown),
                                   timeout)
        except asyncio.TimeoutError:
            raise RunError(f"the guest did not deliver its fingerprint within {timeout:.0f} s "
                           f"(events: {', '.join(events) or 'none'})",
                           argv=argv, console_tail=list(tail)) from None
        except ProbeError as exc:
            raise RunError(f"the guest's fingerprint is unreadable: {exc}", argv=argv,
                           console_tail=list(tail)) from None
        seconds = time.monotonic() - started
        from_launch = time.monotonic() - launched
        if reader.document is None and shutdown.is_set():
            raise RunError("the guest powered off before it delivered its fingerprint", argv=argv,
                           console_tail=list(tail))
        if reader.document is None:
            stderr = (await _finish(proc, stderr_task)).strip()
            what = f"QEMU exited with code {proc.returncode}" if proc.returncode is not None else "the console closed"
            detail = f": {stderr.splitlines()[-1]}" if stderr else ""
            if reader.started:
                try:
                    reader.finish()
                except ProbeError as exc:
                    detail += f"; {exc}"
            raise RunError(f"{what} before the guest delivered its fingerprint{detail} "
                           f"(events: {', '.join(events) or 'none'})", argv=argv, console_tail=list(tail))
        query_pci = await qmp.execute("query-pci")
        with contextlib.suppress(QMPError, OSError, EOFError):
            quit_sent = True
            await qmp.execute("quit")
        qmp_events.cancel()
        return BootResult(reader.document, console, list(query_pci), seconds, argv, events, from_launch)
    finally:
        with contextlib.suppress(Exception):
            await qmp.disconnect()
        if proc is not None:
            await _kill(proc, QUIT_TIMEOUT if quit_sent else 0.0)
        shutil.rmtree(workdir, ignore_errors=True)


async def _connect_qmp(qmp: QMPClient, path: Path, proc: asyncio.subprocess.Process,
                       stderr_task: asyncio.Task, argv: list[str]) -> None:
    deadline = time.monotonic() + QMP_APPEAR_TIMEOUT
    while not path.exists():
        if proc.returncode is not None or stderr_task.done():
            await proc.wait()
            stderr = (await stderr_task).decode(errors="replace").strip()
            raise RunError(f"QEMU refused to start (exit code {proc.returncode}): {stderr or 'no message'}", argv=argv)
        if time.monotonic() > deadline:
            raise RunError(f"QEMU did not open its QMP socket within {QMP_APPEAR_TIMEOUT:.0f} s", argv=argv)
        await asyncio.sleep(0.01)
    try:
        while True:
            try:
                await qmp.connect(str(path))
                break
            except QMPError as exc:
                # QEMU bind()s the socket (the path appears) a moment before it listen()s:
                # a refusal in that window is not an error while QEMU still runs.
                refused = isinstance(getattr(exc, "exc", None), ConnectionRefusedError)
                if not refused or proc.returncode is not None or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.02)
    except QMPError as exc:
        # Usually QEMU created its sockets and then rejected a later option: say what it said.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), QUIT_TIMEOUT)
        if proc.returncode is not None:
            stderr = (await stderr_task).decode(errors="replace").strip()
            raise RunError(f"QEMU refused to start (exit code {proc.returncode}): {stderr or 'no message'}",
                           argv=argv) from None
        raise RunError(f"could not connect to QEMU's QMP monitor: {exc}", argv=argv) from None


async def _collect_events(qmp: QMPClient, events: list[str], shutdown: asyncio.Event) -> None:
    with contextlib.suppress(Exception):
        async for event in qmp.events:
            events.append(event["event"])
            if event["event"] == "SHUTDOWN":
                shutdown.set()


async def _read_until_document_or_shutdown(proc, reader, console, tail, on_console, shutdown: asyncio.Event) -> None:
    """Read the console until the document is complete, the console closes, or the guest powers off.

    After a power-off the console may still hold the last lines (they raced the
    SHUTDOWN event), so the reader gets a moment to drain them.
    """
    reading = asyncio.create_task(_read_console(proc, reader, console, tail, on_console))
    powered_off = asyncio.create_task(shutdown.wait())
    try:
        done, _ = await asyncio.wait({reading, powered_off}, return_when=asyncio.FIRST_COMPLETED)
        if reading not in done:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(reading), SHUTDOWN_DRAIN)
        if reading.done():
            reading.result()  # re-raise a ProbeError from the frame reader
    finally:
        for task in (reading, powered_off):
            task.cancel()


async def _read_console(proc: asyncio.subprocess.Process, reader: FrameReader, console: KeptLines,
                        tail: deque[str], on_console: Callable[[str], None] | None) -> None:
    assert proc.stdout is not None
    while True:
        try:
            raw = await proc.stdout.readline()
        except (ValueError, asyncio.LimitOverrunError):
            # A "line" longer than the limit is garbage, not a frame line: drop what is buffered.
            raw = await proc.stdout.read(CONSOLE_LINE_LIMIT)
            tail.append(f"<{len(raw)} bytes without a line break dropped>")
            continue
        if not raw:
            return
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        console.keep(line)
        if not line.startswith("@@"):
            tail.append(line)
        if on_console:
            on_console(line)
        reader.feed(line)
        if reader.document is not None:
            return


async def _finish(proc: asyncio.subprocess.Process, stderr_task: asyncio.Task) -> str:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(proc.wait(), QUIT_TIMEOUT)
    if not stderr_task.done():
        return ""
    return (await stderr_task).decode(errors="replace")


async def _kill(proc: asyncio.subprocess.Process, grace: float) -> None:
    """Give QEMU ``grace`` seconds to exit (after ``quit``), then kill its whole process group."""
    if proc.returncode is None and grace > 0:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), grace)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
