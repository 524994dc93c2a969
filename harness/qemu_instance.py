"""One running QEMU that stays up across several steps: its process and its guest console.

``qemu_runner.boot_async`` uses a QEMU for one boot-read-quit.  A migration
check drives two QEMUs through several steps (boot, migrate, trigger, read),
so each is an ``async with QemuInstance(...)`` the orchestrator keeps open:
the process, its directory, QMP monitor and events belong to a
:class:`~guestcompat.qemu_process.QemuProcess` (which kills the QEMU's whole
process group and removes its directory on every path); this adds the
console one can wait on more than once (harness/guest_console.py) and the
console input.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from guestcompat.harness.guest_console import LINE_LIMIT, GuestConsole
from guestcompat.qemu_process import QemuProcess


class QemuInstance:
    """A QEMU started on entering; ``label`` (``source``/``destination``) names it in errors."""

    def __init__(self, label: str, argv: list[str], *, stdin_pipe: bool = False,
                 on_console: Callable[[str], None] | None = None) -> None:
        self.label = label
        self.process = QemuProcess(argv, label=label, purpose=f"migrate-{label}", console=True,
                                   console_input=stdin_pipe, line_limit=LINE_LIMIT)
        self._on_console = on_console
        self.console: GuestConsole | None = None

    async def __aenter__(self) -> "QemuInstance":
        await self.process.__aenter__()
        self.console = GuestConsole(self.process.stdout, self.label, self._on_console, stopped=self.process.stopped)
        self.process.console_tail = lambda: list(self.console.tail) if self.console else []
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        try:
            await self.process.__aexit__(exc_type, exc, tb)
        finally:
            if self.console is not None:
                self.console.close()

    @property
    def argv(self) -> list[str]:
        return self.process.argv

    @property
    def dir(self) -> Path:
        """The QEMU's private directory (a migration socket goes there)."""
        assert self.process.dir is not None
        return self.process.dir

    @property
    def pid(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid

    @property
    def events(self) -> list[str]:
        return self.process.events

    @property
    def exited(self) -> bool:
        return self.process.exited

    async def wait_exited(self, grace: float) -> bool:
        return await self.process.wait_exited(grace)

    async def exit_reason(self) -> str:
        """``exited with code N: <last stderr line>`` (the process must have exited)."""
        return await self.process.exit_reason()

    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """A QMP command; a QEMU that died meanwhile is a RunError saying so, not a socket error."""
        return await self.process.execute(command, arguments)

    async def send_line(self, text: str) -> None:
        """Write ``text`` and a newline to the guest console's input (the QEMU's stdin)."""
        try:
            self.process.stdin.write(text.encode() + b"\n")
            await self.process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise self.process.error(f"the {self.label} QEMU {await self.exit_reason()}") from None
