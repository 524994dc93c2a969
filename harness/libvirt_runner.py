"""Boot one compiled machine through libvirt and collect the guest's probe document.

The domain is rendered by emulation/libvirt_xml.py with the run's files
(kernel, initrd, console log, sparse disk files), defined, started paused,
resumed, and its console file is read into the frame reader while it runs.
Whatever happens (libvirt refuses the XML, QEMU fails, the guest hangs,
SIGINT/SIGTERM arrive as KeyboardInterrupt) the domain is destroyed and
undefined, and the run dir and the embedded root are removed before the
call returns or raises.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from guestcompat.harness.libvirt_embed import connect, libvirt  # first: it sets up libvirt's logging

import libvirt_qemu  # noqa: E402

from guestcompat.detection.frame import FrameReader
from guestcompat.emulation.compiler import CompiledMachine
from guestcompat.emulation.libvirt_xml import RunFiles, render
from guestcompat.errors import ProbeError, RunError
from guestcompat.harness.artefacts import build_all
from guestcompat.harness.libvirt_validate import explain
from guestcompat.harness.qemu_runner import CONSOLE_TAIL, BootImage, BootResult, make_run_dir

POLL = 0.05


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Cleanup must finish even when the user presses Ctrl-C twice: hold SIGINT/SIGTERM meanwhile."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _cleanup(dom: libvirt.virDomain | None) -> None:
    if dom is None:
        return
    with contextlib.suppress(libvirt.libvirtError):
        if dom.isActive():
            dom.destroy()
    with contextlib.suppress(libvirt.libvirtError):
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)


def boot_libvirt(compiled: CompiledMachine, image: BootImage, *, uri: str | None = None,
                 timeout: float = 120.0, cancel: threading.Event | None = None) -> BootResult:
    """Boot through libvirt (``uri``, or a fresh embedded driver) and return what the guest printed.

    ``cancel``: set by another thread (a matrix host worker told to stop) to end the run early
    with a RunError; the domain is destroyed and undefined as on every other path.
    """
    workdir = make_run_dir(f"guestcompat-lvrun-{os.getpid()}-")
    launched = time.monotonic()
    dom: libvirt.virDomain | None = None
    tail: deque[str] = deque(maxlen=CONSOLE_TAIL)
    try:
        artefacts = {k: str(v) for k, v in build_all(compiled.artefacts).items()}
        console = workdir / "console.log"
        files = RunFiles(str(image.kernel), str(image.initrd), " ".join(image.cmdline), str(console),
                         str(workdir), artefacts, name=f"guestcompat-{os.getpid()}-{workdir.name[-8:]}")
        domain = render(compiled, files)
        for disk in domain.disks:
            with open(disk.path, "wb") as fh:
                fh.truncate(disk.size)
        with connect(uri) as conn:
            try:
                try:
                    dom = conn.conn.defineXML(domain.xml)
                except libvirt.libvirtError as exc:
                    raise RunError(explain(compiled, exc.get_error_message())) from None
                try:
                    dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
                except libvirt.libvirtError as exc:
                    raise RunError(explain(compiled, exc.get_error_message(),
                                           "libvirt could not start the domain of")) from None
                started = time.monotonic()
                dom.resume()
                reader, lines = _read_console(dom, console, tail, timeout, cancel)
                seconds = time.monotonic() - started
                from_launch = time.monotonic() - launched
                query_pci: list = []
                with contextlib.suppress(libvirt.libvirtError):
                    reply = libvirt_qemu.qemuMonitorCommand(dom, json.dumps({"execute": "query-pci"}), 0)
                    query_pci = list(json.loads(reply)["return"])
                assert reader.document is not None
                return BootResult(reader.document, lines, query_pci, seconds, [f"libvirt:{conn.uri}"], [],
                                  from_launch)
            finally:
                with _signals_deferred():
                    _cleanup(dom)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _read_console(dom: libvirt.virDomain, path: Path, tail: deque[str], timeout: float,
                  cancel: threading.Event | None = None) -> tuple[FrameReader, list[str]]:
    reader = FrameReader()
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    buffered = b""
    offset = 0
    while True:
        active = dom.isActive()
        with contextlib.suppress(FileNotFoundError):
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
                offset += len(chunk)
                buffered += chunk
        *complete, buffered = buffered.split(b"\n")
        for raw in complete:
            line = raw.decode("utf-8", errors="replace").rstrip("\r")
            lines.append(line)
            if not line.startswith("@@"):
                tail.append(line)
            try:
                reader.feed(line)
            except ProbeError as exc:
                raise RunError(f"the guest's fingerprint is unreadable: {exc}", console_tail=list(tail)) from None
            if reader.document is not None:
                return reader, lines
        if not active:
            raise RunError("the guest powered off (or QEMU exited) before it delivered its fingerprint",
                           console_tail=list(tail))
        if time.monotonic() > deadline:
            raise RunError(f"the guest did not deliver its fingerprint within {timeout:.0f} s",
                           console_tail=list(tail))
        if cancel is not None and cancel.is_set():
            raise RunError("the run was cancelled before the guest delivered its fingerprint",
                           console_tail=list(tail))
        time.sleep(POLL)
