"""One running QEMU that stays up across several steps: its process, QMP monitor, events and console.

``qemu_runner.boot_async`` owns a QEMU for one boot-read-quit.  A migration
check drives two QEMUs through several steps (boot, migrate, trigger, read),
so each is an object the orchestrator keeps and always ``close()``s: that
kills the QEMU's whole process group (also a wrapper's children) and stops
its reader tasks, on every path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient
from qemu.qmp.error import QMPError

from guestcompat.errors import RunError
from guestcompat.harness.guest_console import LINE_LIMIT, GuestConsole
from guestcompat.harness.qemu_runner import QUIT_TIMEOUT, _connect_qmp, _kill


class QemuInstance:
    """A QEMU started by :meth:`start`; ``label`` (``source``/``destination``) names it in errors."""

    def __init__(self, label: str, argv: list[str], proc: asyncio.subprocess.Process, qmp: QMPClient,
                 console: GuestConsole, stderr_task: asyncio.Task) -> None:
        self.label = label
        self.argv = argv
        self.proc = proc
        self.qmp = qmp
        self.console = console
        self.events: list[str] = []
        self._stderr_task = stderr_task
        self._events_task = asyncio.create_task(self._collect_events())
        self._exit_task = asyncio.create_task(self._watch_exit())
        self._quit_sent = False

    @classmethod
    async def start(cls, label: str, argv: list[str], qmp_path: Path, *, stdin_pipe: bool = False,
                    on_console: Callable[[str], None] | None = None) -> "QemuInstance":
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE if stdin_pipe else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
                limit=LINE_LIMIT)
        except (FileNotFoundError, PermissionError) as exc:
            raise RunError(f"{label} QEMU binary {argv[0]!r} cannot be started: {exc.strerror}", argv=argv) from None
        assert proc.stdout is not None and proc.stderr is not None
        stderr_task = asyncio.create_task(proc.stderr.read())
        qmp = QMPClient(f"guestcompat-{label}-{os.getpid()}")
        try:
            await _connect_qmp(qmp, qmp_path, proc, stderr_task, argv)
        except RunError as exc:
            await _kill(proc, 0.0)
            raise RunError(f"{label}: {exc.args[0]}", argv=argv) from None
        except BaseException:
            await _kill(proc, 0.0)
            raise
        return cls(label, argv, proc, qmp, GuestConsole(proc.stdout, label, on_console), stderr_task)

    async def _collect_events(self) -> None:
        with contextlib.suppress(Exception):
            async for event in self.qmp.events:
                self.events.append(event["event"])
                if event["event"] == "SHUTDOWN":
                    self.console.stopped.set()

    async def _watch_exit(self) -> None:
        await self.proc.wait()
        self.console.stopped.set()

    @property
    def exited(self) -> bool:
        return self.proc.returncode is not None

    async def exit_reason(self) -> str:
        """``exited with code N: <last stderr line>`` (the process must have exited)."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.proc.wait(), QUIT_TIMEOUT)
        code = self.proc.returncode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        stderr = ""
        if self._stderr_task.done():
            stderr = self._stderr_task.result().decode(errors="replace").strip()
        return how + (f": {stderr.splitlines()[-1]}" if stderr else "")

    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """A QMP command; a QEMU that died meanwhile is a RunError saying so, not a socket error."""
        try:
            return await self.qmp.execute(command, arguments)
        except (QMPError, OSError, EOFError) as exc:
            if self.exited or (await _exits_soon(self.proc)):
                raise RunError(f"the {self.label} QEMU {await self.exit_reason()}", argv=self.argv,
                               console_tail=list(self.console.tail)) from None
            raise RunError(f"{self.label} QEMU: {command} failed: {exc}", argv=self.argv,
                           console_tail=list(self.console.tail)) from None

    async def send_line(self, text: str) -> None:
        """Write ``text`` and a newline to the guest console's input (the QEMU's stdin)."""
        assert self.proc.stdin is not None, f"{self.label} QEMU was started without a console input"
        try:
            self.proc.stdin.write(text.encode() + b"\n")
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise RunError(f"the {self.label} QEMU {await self.exit_reason()}", argv=self.argv,
                           console_tail=list(self.console.tail)) from None

    async def close(self) -> None:
        """Quit (if still answering), then kill the process group; stop every task. Never raises."""
        if not self.exited:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.qmp.execute("quit"), QUIT_TIMEOUT)
                self._quit_sent = True
        with contextlib.suppress(Exception):
            await self.qmp.disconnect()
        await _kill(self.proc, QUIT_TIMEOUT if self._quit_sent else 0.0)
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.console.close()
        for task in (self._events_task, self._exit_task, self._stderr_task):
            task.cancel()
        await asyncio.gather(self._events_task, self._exit_task, self._stderr_task, return_exceptions=True)


async def _exits_soon(proc: asyncio.subprocess.Process, grace: float = 0.5) -> bool:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(proc.wait(), grace)
    return proc.returncode is not None
