"""Boot one compiled machine under QEMU and collect the guest's probe document.

QEMU starts paused (``-S``) under a :class:`~guestcompat.qemu_process.QemuProcess`
(private temp dir, QMP monitor, process group) with the guest console on its stdout. The runner connects QMP,
resumes the guest, reads console lines into the frame reader until the probe
document is complete, asks QMP for QEMU's own view (``query-pci``), keeps the
guest's VGA screen as a PNG (harness/screenshot.py; also when the boot fails,
and the error names the file), and quits.

Whatever happens (QEMU refuses the command line, crashes, the guest hangs or
prints garbage, the user presses Ctrl-C) the process owner kills the QEMU
process group and removes the temp dir before the call returns or raises.
"""

from __future__ import annotations

import asyncio
import json
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guestcompat.detection.frame import FrameReader
from guestcompat.harness.console_log import KeptLines
from guestcompat.emulation.compiler import CompiledMachine
from guestcompat.harness import screenshot as screens
from guestcompat.harness.artefacts import build_all, substitute
from guestcompat.errors import ProbeError, RunError
from guestcompat.qemu_process import QUIT_TIMEOUT, QemuProcess

CONSOLE_TAIL = 25
CONSOLE_LINE_LIMIT = 1 << 20
SHUTDOWN_DRAIN = 1.0


@dataclass(frozen=True)
class BootImage:
    """What the runner boots: a kernel, an initramfs and their command line; ``kernel=None``: no
    kernel on the command line, the machine's firmware boots from its disks (what a VM does)."""

    kernel: Path | None
    initrd: Path | None
    cmdline: tuple[str, ...]

    @classmethod
    def firmware(cls) -> "BootImage":
        return cls(None, None, ())


@dataclass
class BootResult:
    document: dict[str, Any]
    console: list[str]
    query_pci: list[dict[str, Any]]
    seconds_to_document: float          # from `cont` (guest start) to the END line
    argv: list[str]
    events: list[str] = field(default_factory=list)
    seconds_from_launch: float = 0.0    # from spawning QEMU to the END line (what a user waits)
    host: str | None = None             # libvirt runs: the host's name (virConnectGetHostname)
    qemu_build: str | None = None       # libvirt runs: the emulator and the version it reports
    marks: dict[str, float] = field(default_factory=dict)
    guestinfo: dict[str, str] | None = None
    tools_version: str | None = None
    """What the guest's tools.set.version told vmport (``x-tools-version``), with ``x-rpc`` only."""
    """The backdoor RPC channel's guestinfo store after the fingerprint (QMP ``qom-get`` of vmport's
    ``x-guestinfo``): host keys plus what the guest wrote; None when the machine has no ``x-rpc``."""
    """time.monotonic() at each step of the boot (``launch``, ``artefacts`` built, ``qmp`` connected,
    ``cont`` sent, ``document`` complete, ``query_pci`` answered, ``closed``: QEMU gone): what
    bench/boot.py --breakdown splits the host's share of a boot with."""
    screenshot: Path | None = None      # the guest's VGA screen when the document was complete (PNG)
    no_screenshot: str = ""             # why there is none (no display device, ...)


def launch_argv(compiled: CompiledMachine, image: BootImage, artefacts: dict[str, Path] | None = None) -> list[str]:
    """The QEMU argv: the compiled machine (its artefact placeholders replaced by the built files'
    paths) plus how this run boots it and reads its console (the QMP monitor is the
    :class:`~guestcompat.qemu_process.QemuProcess`'s)."""
    kernel = [] if image.kernel is None else [
        "-kernel", str(image.kernel), *(["-initrd", str(image.initrd)] if image.initrd else []),
        "-append", " ".join(image.cmdline)]
    return [
        *substitute(compiled.argv, artefacts or {}),
        *kernel,
        "-chardev", "stdio,id=console,signal=off", *compiled.arch.console_args("console"),
        "-S", "-no-shutdown", "-no-reboot",
    ]


def boot(compiled: CompiledMachine, image: BootImage, *, timeout: float = 120.0,
         on_console: Callable[[str], None] | None = None, screenshot: Path | None = None) -> BootResult:
    """Synchronous entry point (the CLI and tests call this)."""
    return asyncio.run(boot_async(compiled, image, timeout=timeout, on_console=on_console, screenshot=screenshot))


async def boot_async(compiled: CompiledMachine, image: BootImage, *, timeout: float = 120.0,
                     on_console: Callable[[str], None] | None = None,
                     screenshot: Path | None = None) -> BootResult:
    """Boot and read the document. ``screenshot``: where the guest's VGA screen is kept (PNG) at the
    end or at a failure  [default: a new file in screenshot.screens_dir()]."""
    launched = time.monotonic()
    marks = {"launch": launched}
    argv = launch_argv(compiled, image, await asyncio.to_thread(build_all, compiled.artefacts))
    marks["artefacts"] = time.monotonic()
    console: KeptLines = KeptLines()
    tail: deque[str] = deque(maxlen=CONSOLE_TAIL)
    async with QemuProcess(argv, console=True, line_limit=CONSOLE_LINE_LIMIT) as qemu:
        argv = qemu.argv
        qemu.console_tail = lambda: list(tail)
        started = marks["qmp"] = time.monotonic()
        await qemu.execute("cont")
        marks["cont"] = time.monotonic()
        try:
            result = await _boot_body(qemu, compiled, argv, timeout, on_console, console, tail, started,
                                      launched, marks)
        except RunError as exc:
            if exc.screenshot is None:
                exc.screenshot, exc.no_screenshot = await screens.take(qemu, screenshot)
            raise
        result.screenshot, result.no_screenshot = await screens.take(qemu, screenshot)
        if "vmport.x-rpc=on" in argv:
            result.guestinfo, result.tools_version = await read_guestinfo(qemu)
    marks["closed"] = time.monotonic()
    return result


async def _boot_body(qemu: QemuProcess, compiled: CompiledMachine, argv: list[str], timeout: float,
                     on_console: Callable[[str], None] | None, console: KeptLines, tail: deque[str],
                     started: float, launched: float, marks: dict[str, float]) -> BootResult:
    reader = FrameReader()
    events = qemu.events
    try:
        await asyncio.wait_for(_read_until_document_or_shutdown(qemu.stdout, reader, console, tail, on_console,
                                                                qemu.shutdown), timeout)
    except asyncio.TimeoutError:
        if not console:
            raise RunError(f"the guest printed nothing on its serial console within {timeout:.0f} s: it stopped "
                           f"before Linux started (a firmware message, a boot loader prompt, a stop screen) or "
                           f"its kernel boots 'quiet' and hung; its VGA screen shows where it is (events: "
                           f"{', '.join(events) or 'none'})", argv=argv) from None
        raise RunError(f"the guest did not deliver its fingerprint within {timeout:.0f} s "
                       f"(events: {', '.join(events) or 'none'})",
                       argv=argv, console_tail=list(tail)) from None
    except ProbeError as exc:
        raise RunError(f"the guest's fingerprint is unreadable: {exc}", argv=argv,
                       console_tail=list(tail)) from None
    seconds = time.monotonic() - started
    from_launch = time.monotonic() - launched
    marks["document"] = launched + from_launch
    if reader.document is None and qemu.shutdown.is_set():
        raise RunError("the guest powered off before it delivered its fingerprint", argv=argv,
                       console_tail=list(tail))
    if reader.document is None:
        if await qemu.wait_exited(QUIT_TIMEOUT):
            what = f"QEMU {await qemu.exit_reason()}"
        else:
            what = "the console closed"
        detail = ""
        if reader.started:
            try:
                reader.finish()
            except ProbeError as exc:
                detail += f"; {exc}"
        raise RunError(f"{what} before the guest delivered its fingerprint{detail} "
                       f"(events: {', '.join(events) or 'none'})", argv=argv, console_tail=list(tail))
    query_pci = await qemu.execute("query-pci")
    marks["query_pci"] = time.monotonic()
    return BootResult(reader.document, console, list(query_pci), seconds, argv, list(events), from_launch,
                      marks=marks)


#: The guestinfo store's JSON is bounded by QEMU (2 MiB of keys and values, escaped).
GUESTINFO_JSON_LIMIT = 16 * 1024 * 1024


async def read_guestinfo(qemu: Any) -> tuple[dict[str, str], str]:
    """vmport's guestinfo store over QMP: the vmport device is found by its QOM type among the
    machine's unattached children (QEMU names it ``device[N]``, N varying with the machine)."""
    children = await qemu.execute("qom-list", {"path": "/machine/unattached"})
    paths = [f"/machine/unattached/{c['name']}" for c in children if c.get("type") == "child<vmport>"]
    if len(paths) != 1:
        raise RunError(f"x-rpc is on but QEMU shows {len(paths)} vmport devices")
    text = await qemu.execute("qom-get", {"path": paths[0], "property": "x-guestinfo"})
    if not isinstance(text, str) or len(text) > GUESTINFO_JSON_LIMIT:
        raise RunError("vmport's x-guestinfo is not a bounded JSON string")
    store = json.loads(text)
    if not isinstance(store, dict) or not all(isinstance(v, str) for v in store.values()):
        raise RunError("vmport's x-guestinfo is not a JSON object of strings")
    version = await qemu.execute("qom-get", {"path": paths[0], "property": "x-tools-version"})
    return store, str(version)[:64]


async def _read_until_document_or_shutdown(stream: asyncio.StreamReader, reader: FrameReader, console: KeptLines,
                                           tail: deque[str], on_console: Callable[[str], None] | None,
                                           shutdown: asyncio.Event) -> None:
    """Read the console until the document is complete, the console closes, or the guest powers off.

    After a power-off the console may still hold the last lines (they raced the
    SHUTDOWN event), so the reader gets a moment to drain them.
    """
    reading = asyncio.create_task(_read_console(stream, reader, console, tail, on_console))
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


async def _read_console(stream: asyncio.StreamReader, reader: FrameReader, console: KeptLines,
                        tail: deque[str], on_console: Callable[[str], None] | None) -> None:
    while True:
        try:
            raw = await stream.readline()
        except (ValueError, asyncio.LimitOverrunError):
            # A "line" longer than the limit is garbage, not a frame line: drop what is buffered.
            raw = await stream.read(CONSOLE_LINE_LIMIT)
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
