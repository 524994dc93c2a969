"""The one owner of a running QEMU: its private directory, its process group, its QMP monitor.

Every QEMU guestcompat starts itself (a probe run, both sides of a migration,
the capability probe, a paused QEMU asked whether it accepts some options) is
started by :class:`QemuProcess`, an async context manager, so that on every
path:

* it has a private 0700 directory ``$TMPDIR/guestcompat-<pid>-<purpose>-XXXXXXXX``
  (:func:`private_dir`; the pid says whose it is) holding its QMP socket and
  whatever the caller puts beside it (a migration socket);
* it runs in a new session, so its process group (a wrapper script and its
  children too) is killed as one, and with ``PR_SET_PDEATHSIG`` = SIGKILL, so
  a guestcompat killed by SIGKILL takes its QEMU with it instead of leaving
  it to init;
* the QMP connect notices a QEMU that exits (it refused an option) instead of
  waiting for a socket that never comes, and says what QEMU printed;
* QMP events are collected (``events``; ``shutdown`` is set by SHUTDOWN,
  ``stopped`` by SHUTDOWN or the process's exit) and the last stderr lines
  are kept for error messages;
* leaving the block quits QEMU over QMP (only after a clean body: an error or
  Ctrl-C kills at once), kills the process group, and removes the directory.

A guestcompat killed by SIGKILL cannot remove its directory: the first
:class:`QemuProcess` (or :func:`private_dir`) of any later guestcompat process
sweeps directories whose pid is dead (:func:`sweep_stale_dirs`), killing first
any process of this user that still names one in its argv (a wrapper's child,
which the parent-death signal does not reach).

The parent-death signal follows the *thread* that started QEMU: a QEMU must
not outlive the thread whose event loop started it (asyncio starts children
from the loop's thread; every caller runs its loop for the QEMU's lifetime).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import glob
import os
import re
import shutil
import signal
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient
from qemu.qmp.error import QMPError

from guestcompat.emulation.qemuopts import escape
from guestcompat.errors import QemuStartError, RunError

PREFIX = "guestcompat-"
"""Every private directory is ``PREFIX<pid>-<purpose>-…`` in the temp dir (the leak checks watch it)."""
QMP_APPEAR_TIMEOUT = 15.0
QUIT_TIMEOUT = 5.0
STDERR_TAIL = 50
STDERR_DRAIN = 1.0
"""Seconds to wait, after QEMU exited, for the rest of its stderr (a wrapper's child may hold the pipe)."""
PR_SET_PDEATHSIG = 1

_DIR_NAME = re.compile(re.escape(PREFIX) + r"(\d+)-.")
_swept = False


def private_dir(purpose: str) -> Path:
    """A new 0700 directory ``guestcompat-<pid>-<purpose>-XXXXXXXX`` in the temp dir (the caller
    removes it). The first call of a process sweeps the stale ones first."""
    global _swept
    if not _swept:
        _swept = True
        sweep_stale_dirs()
    try:
        return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{purpose}-"))
    except OSError as exc:
        raise RunError(f"cannot create the run directory in {tempfile.gettempdir()}: {exc.strerror} "
                       f"(TMPDIR names where runs keep their QMP socket)") from None


def dir_pattern(pid: int | None = None) -> str:
    """The glob of the private directories of process ``pid`` (default: this one)."""
    return os.path.join(tempfile.gettempdir(), f"{PREFIX}{os.getpid() if pid is None else pid}-*")


def sweep_stale_dirs() -> list[Path]:
    """Remove the private directories of this user whose process is gone, after killing any
    process that still names one in its argv. Returns what was removed."""
    removed = []
    for name in os.listdir(tempfile.gettempdir()):
        match = _DIR_NAME.match(name)
        if not match or pid_alive(int(match[1])):
            continue
        path = Path(tempfile.gettempdir()) / name
        try:
            st = path.lstat()
        except OSError:
            continue
        if st.st_uid != os.getuid() or not path.is_dir() or path.is_symlink():
            continue
        for pid in processes_naming(str(path)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def processes_naming(text: str) -> list[int]:
    """Pids (not this process) whose argv contains ``text`` (also ``,,``-escaped, as in QEMU options)."""
    needles = {text.encode(), text.replace(",", ",,").encode()}
    found = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(cmdline, "rb") as fh:
                argv = fh.read()
        except OSError:
            continue
        pid = int(cmdline.split("/")[2])
        if pid != os.getpid() and any(n in argv for n in needles):
            found.append(pid)
    return found


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's counts as alive: not ours to judge)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive, and not ours to judge
    return True


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent(parent: int) -> Callable[[], None]:
    """The child-side hook: SIGKILL when the parent dies, and give up if it already has."""
    def hook() -> None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl: nobody would ever stop us
            os._exit(1)
    return hook


class QemuProcess:
    """``async with QemuProcess(argv) as qemu:`` — QEMU started from ``argv`` plus a QMP monitor.

    ``label`` (``source``, ``destination``) names the QEMU in errors; ``purpose`` names its
    directory; ``console``: QEMU's stdout is a pipe (``stdout``) rather than /dev/null;
    ``console_input``: its stdin is a pipe (``stdin``). ``argv`` (after entering) is the full
    command line, monitor included. ``console_tail`` may be set to a function giving the last
    console lines, which errors of :meth:`execute` then carry.
    """

    def __init__(self, argv: Sequence[str], *, label: str | None = None, purpose: str = "run",
                 console: bool = False, console_input: bool = False, line_limit: int = 1 << 16,
                 connect_timeout: float | None = None) -> None:
        self.label = label
        self.argv = list(argv)
        self.purpose = purpose
        self.dir: Path | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.qmp = QMPClient(f"guestcompat-{label or purpose}-{os.getpid()}")
        self.events: list[str] = []
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self.console_tail: Callable[[], list[str]] = list
        self._console = console
        self._console_input = console_input
        self._line_limit = line_limit
        self._connect_timeout = QMP_APPEAR_TIMEOUT if connect_timeout is None else connect_timeout
        self._tasks: list[asyncio.Task] = []
        self._stderr_done: asyncio.Task | None = None
        self._connected = False
        self._closed = False
        self.shutdown = asyncio.Event()
        """Set when QEMU reports SHUTDOWN (the guest powered off, or ``quit``)."""
        self.stopped = asyncio.Event()
        """Set when the guest can print no more: SHUTDOWN, or the process exited."""

    # -- names --------------------------------------------------------------------------------

    @property
    def who(self) -> str:
        return f"the {self.label} QEMU" if self.label else "QEMU"

    @property
    def qmp_path(self) -> Path:
        assert self.dir is not None, "the QEMU was not started"
        return self.dir / "qmp.sock"

    @property
    def stdout(self) -> asyncio.StreamReader:
        assert self.proc is not None and self.proc.stdout is not None, "QEMU was started without a console"
        return self.proc.stdout

    @property
    def stdin(self) -> asyncio.StreamWriter:
        assert self.proc is not None and self.proc.stdin is not None, f"{self.who} was started without a console input"
        return self.proc.stdin

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    @property
    def exited(self) -> bool:
        return self.returncode is not None

    # -- start --------------------------------------------------------------------------------

    async def __aenter__(self) -> "QemuProcess":
        self.dir = private_dir(self.purpose)
        try:
            await self._start()
        except BaseException:
            await self.close(quit=False)
            raise
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        await self.close(quit=exc_type is None)

    async def _start(self) -> None:
        self.argv += ["-chardev", f"socket,id=qmp,path={escape(str(self.qmp_path))},server=on,wait=off",
                      "-mon", "chardev=qmp,mode=control"]
        pipe, null = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=pipe if self._console_input else null, stdout=pipe if self._console else null,
                stderr=pipe, start_new_session=True, preexec_fn=_die_with_parent(os.getpid()),
                limit=self._line_limit)
        except FileNotFoundError:
            raise QemuStartError(f"{self._prefix()}QEMU binary {self.argv[0]!r} not found (run `make setup`)",
                                 argv=self.argv, spawned=False) from None
        except OSError as exc:
            raise QemuStartError(f"{self._prefix()}QEMU binary {self.argv[0]!r} cannot be started: "
                                 f"{exc.strerror or exc}", argv=self.argv, spawned=False) from None
        self._stderr_done = asyncio.create_task(self._read_stderr())
        self._tasks += [self._stderr_done, asyncio.create_task(self._watch_exit())]
        await self._connect()
        self._connected = True
        self._tasks.append(asyncio.create_task(self._collect_events()))

    def _prefix(self) -> str:
        return f"{self.label} " if self.label else ""

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._connect_timeout
        assert self.proc is not None and self._stderr_done is not None
        while not self.qmp_path.exists():
            if self.proc.returncode is not None or self._stderr_done.done():
                raise await self._refused()
            if loop.time() > deadline:
                raise QemuStartError(f"{self.who} did not open its QMP socket within {self._connect_timeout:.0f} s",
                                     argv=self.argv)
            await asyncio.sleep(0.01)
        try:
            while True:
                try:
                    await self.qmp.connect(str(self.qmp_path))
                    return
                except QMPError as exc:
                    # QEMU bind()s the socket (the path appears) a moment before it listen()s:
                    # a refusal in that window is not an error while QEMU still runs.
                    refused = isinstance(getattr(exc, "exc", None), ConnectionRefusedError)
                    if not refused or self.proc.returncode is not None or loop.time() > deadline:
                        raise
                    await asyncio.sleep(0.02)
        except QMPError as exc:
            # Usually QEMU created its sockets and then rejected a later option: say what it said.
            if await self.wait_exited(QUIT_TIMEOUT):
                raise await self._refused() from None
            raise QemuStartError(f"could not connect to {self.who}'s QMP monitor: {exc}", argv=self.argv) from None

    async def _refused(self) -> QemuStartError:
        await self.wait_exited(QUIT_TIMEOUT)
        await self._drain_stderr()
        stderr = "\n".join(self.stderr_tail).strip()
        return QemuStartError(f"{self.who} refused to start (exit code {self.returncode}): {stderr or 'no message'}",
                              argv=self.argv, returncode=self.returncode, stderr=tuple(self.stderr_tail))

    # -- background ---------------------------------------------------------------------------

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        partial = b""
        while chunk := await self.proc.stderr.read(1 << 16):
            *lines, partial = (partial + chunk).split(b"\n")
            self.stderr_tail.extend(ln.decode(errors="replace").rstrip("\r") for ln in lines)
            partial = partial[-(1 << 16):]
        if partial:
            self.stderr_tail.append(partial.decode(errors="replace"))

    async def _watch_exit(self) -> None:
        assert self.proc is not None
        await self.proc.wait()
        self.stopped.set()

    async def _collect_events(self) -> None:
        with contextlib.suppress(Exception):
            async for event in self.qmp.events:
                self.events.append(event["event"])
                if event["event"] == "SHUTDOWN":
                    self.shutdown.set()
                    self.stopped.set()

    async def _drain_stderr(self) -> None:
        if self._stderr_done is not None:
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(self._stderr_done), STDERR_DRAIN)

    # -- use ----------------------------------------------------------------------------------

    async def wait_exited(self, grace: float) -> bool:
        """Whether the process has exited, waiting at most ``grace`` seconds for it."""
        if self.proc is None:
            return False
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.proc.wait(), grace)
        return self.proc.returncode is not None

    async def exit_reason(self) -> str:
        """``exited with code N: <last stderr line>`` / ``was killed by signal N`` (waits briefly for the exit)."""
        await self.wait_exited(QUIT_TIMEOUT)
        await self._drain_stderr()
        code = self.returncode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        last = next((ln for ln in reversed(self.stderr_tail) if ln.strip()), "")
        return how + (f": {last.strip()}" if last else "")

    def error(self, message: str) -> RunError:
        """A RunError carrying this QEMU's argv and the console tail."""
        return RunError(message, argv=self.argv, console_tail=self.console_tail())

    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """A QMP command; a QEMU that died meanwhile is a RunError saying so, not a socket error."""
        try:
            return await self.qmp.execute(command, arguments)
        except (QMPError, OSError, EOFError) as exc:
            if await self.wait_exited(0.5):
                raise self.error(f"{self.who} {await self.exit_reason()}") from None
            raise self.error(f"{self.who}: {command} failed: {exc}") from None

    # -- stop ---------------------------------------------------------------------------------

    async def close(self, *, quit: bool = True) -> None:
        """``quit`` (if asked and QEMU still answers), kill the process group, stop the tasks, remove
        the directory. Never raises; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.proc is not None:
                grace = 0.0
                if quit and self._connected and self.proc.returncode is None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self.qmp.execute("quit"), QUIT_TIMEOUT)
                        grace = QUIT_TIMEOUT
                with contextlib.suppress(Exception):
                    await self.qmp.disconnect()
                if grace:
                    await self.wait_exited(grace)
                # Also after the leader exited: a wrapper's children stay in the group.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                await self._drain_stderr()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
