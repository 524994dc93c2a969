"""A QEMU's guest console (its stdout) as a stream one can wait on, more than once.

``qemu_runner`` reads the console until the one probe document has arrived.
A migration check needs more from each QEMU: the source's first document and
then /init's ready line; the destination's second document.  The reader task
keeps every line (and a tail of non-frame lines for error messages) and hands
lines to whoever waits; a wait ends with the awaited line or document, or a
RunError when the console closes, the guest powers off (``stopped``) or the
time is up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

from guestcompat.detection.frame import FrameReader
from guestcompat.harness.console_log import KeptLines
from guestcompat.errors import ProbeError, RunError

CONSOLE_TAIL = 25
LINE_LIMIT = 1 << 20
STOP_DRAIN = 1.0
"""Seconds the reader may still deliver lines that raced a power-off."""


class GuestConsole:
    """Lines of ``stream`` (a QEMU's stdout), read by a background task started here."""

    def __init__(self, stream: asyncio.StreamReader, label: str,
                 on_console: Callable[[str], None] | None = None, stopped: asyncio.Event | None = None) -> None:
        self.label = label
        self.lines: KeptLines = KeptLines()
        self.tail: deque[str] = deque(maxlen=CONSOLE_TAIL)
        self.stopped = stopped or asyncio.Event()
        """Set by the owner when the guest can print no more (SHUTDOWN, QEMU exited)."""
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._on_console = on_console
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        try:
            while True:
                try:
                    raw = await stream.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    raw = await stream.read(LINE_LIMIT)
                    self.tail.append(f"<{len(raw)} bytes without a line break dropped>")
                    continue
                if not raw:
                    return
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                self.lines.keep(line)
                if not line.startswith("@@"):
                    self.tail.append(line)
                if self._on_console:
                    self._on_console(line)
                self._queue.put_nowait(line)
        finally:
            self._queue.put_nowait(None)

    async def _next(self, deadline: float) -> str | None:
        """The next line; None when the console closed or the guest stopped (after a short drain)."""
        loop = asyncio.get_running_loop()
        if not self._queue.empty():
            return self._queue.get_nowait()
        getter = asyncio.create_task(self._queue.get())
        stopper = asyncio.create_task(self.stopped.wait())
        try:
            done, _ = await asyncio.wait({getter, stopper}, timeout=max(0.0, deadline - loop.time()),
                                         return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                return getter.result()
            if stopper in done:
                with contextlib.suppress(asyncio.TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(getter), STOP_DRAIN)
                return None
            raise asyncio.TimeoutError
        finally:
            getter.cancel()
            stopper.cancel()

    async def document(self, timeout: float, what: str) -> dict[str, Any]:
        """The next framed probe document on this console."""
        reader = FrameReader()
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                line = await self._next(deadline)
                if line is None:
                    detail = ""
                    if reader.started:
                        try:
                            reader.finish()
                        except ProbeError as exc:
                            detail = f": {exc}"
                    raise RunError(f"the {self.label} console ended before {what} arrived{detail}",
                                   console_tail=list(self.tail))
                if reader.feed(line) is not None:
                    assert reader.document is not None
                    return reader.document
        except asyncio.TimeoutError:
            raise RunError(f"{what} did not arrive on the {self.label} console within {timeout:.0f} s",
                           console_tail=list(self.tail)) from None
        except ProbeError as exc:
            raise RunError(f"{what} is unreadable: {exc}", console_tail=list(self.tail)) from None

    async def line(self, predicate: Callable[[str], bool], timeout: float, what: str) -> str:
        """The next console line for which ``predicate`` is true."""
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                line = await self._next(deadline)
                if line is None:
                    raise RunError(f"the {self.label} console ended before {what}", console_tail=list(self.tail))
                if predicate(line):
                    return line
        except asyncio.TimeoutError:
            raise RunError(f"no {what} on the {self.label} console within {timeout:.0f} s",
                           console_tail=list(self.tail)) from None

    def close(self) -> None:
        self._task.cancel()
