"""Boot one compiled machine through libvirt and collect the guest's probe document.

The domain is rendered by emulation/libvirt_xml.py with the run's files
(kernel, initrd, console, sparse disks: local files for an embedded driver,
volumes shipped through the storage API for a daemon's URI), defined, started
paused, resumed, and its console is read into the frame reader while it runs.
Whatever happens (libvirt refuses the XML, QEMU fails, the guest hangs,
SIGINT/SIGTERM arrive as KeyboardInterrupt) the domain is destroyed and
undefined, and the run dir and the embedded root are removed before the
call returns or raises.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import threading
import time
from collections import deque
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from guestcompat.harness.libvirt_embed import connect, embed_uri_root, libvirt  # first: it sets up libvirt's logging

import libvirt_qemu  # noqa: E402

from guestcompat.detection.frame import FrameReader
from guestcompat.emulation.compiler import CompiledMachine
from guestcompat.emulation.libvirt_xml import DiskFile, RunFiles, render
from guestcompat.errors import HostLostError, ProbeError, RunError
from guestcompat.harness import libvirt_storage as storage
from guestcompat.harness.artefacts import build_all
from guestcompat.harness.libvirt_owner import domain_name
from guestcompat.harness.libvirt_validate import explain
from guestcompat.harness.qemu_runner import CONSOLE_TAIL, BootImage, BootResult
from guestcompat.qemu_process import private_dir

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


def _refused_unless_lost(conn, exc: libvirt.libvirtError, tail: Sequence[str] = ()) -> None:
    """Raise HostLostError when the connection is dead: a host that went away while defining or
    starting the domain (its daemon killed) is a lost host, not a refused configuration."""
    alive = False
    with contextlib.suppress(libvirt.libvirtError):
        alive = conn.conn.isAlive() == 1
    if not alive:
        raise HostLostError(f"libvirt host {conn.uri} stopped answering during the run: {exc.get_error_message()}",
                            console_tail=list(tail)) from None


def _query(dom: libvirt.virDomain, command: str) -> object:
    with contextlib.suppress(libvirt.libvirtError, ValueError, KeyError):
        return json.loads(libvirt_qemu.qemuMonitorCommand(dom, json.dumps({"execute": command}), 0))["return"]
    return None


def _qemu_build(emulator: str, version: object) -> str:
    """``/usr/bin/qemu-system-x86_64 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)``: which QEMU ran the cell."""
    if not isinstance(version, dict):
        return emulator
    v = version.get("qemu", {})
    package = str(version.get("package", "")).strip()
    return f"{emulator} {v.get('major')}.{v.get('minor')}.{v.get('micro')}" + (f" ({package})" if package else "")


def boot_libvirt(compiled: CompiledMachine, image: BootImage, *, uri: str | None = None,
                 timeout: float = 120.0, cancel: threading.Event | None = None) -> BootResult:
    """Boot through libvirt (``uri``, or a fresh embedded driver) and return what the guest printed.

    An embedded driver runs in this process and reads this machine's files; any other URI is a
    host that may share no path with this one: the run's files go there through the storage API
    (harness/libvirt_storage.py) and the console comes back over libvirt (:class:`_RemoteFiles`).

    ``cancel``: set by another thread (a matrix host worker told to stop) to end the run early
    with a RunError; the domain is destroyed and undefined as on every other path.
    """
    remote = uri is not None and embed_uri_root(uri) is None
    workdir = private_dir("lvrun")
    launched = time.monotonic()
    dom: libvirt.virDomain | None = None
    tail: deque[str] = deque(maxlen=CONSOLE_TAIL)
    name = domain_name(workdir.name[-8:])  # says which machine and process started it (libvirt_owner)
    try:
        artefacts = build_all(compiled.artefacts)
        with connect(uri) as conn:
            files: _LocalFiles | _RemoteFiles = (_RemoteFiles(conn.conn, conn.uri, name) if remote
                                                 else _LocalFiles(workdir))
            try:
                try:
                    run_files = files.prepare(compiled, image, artefacts, name)
                    domain = render(compiled, run_files)
                    files.disks(domain.disks)
                    try:
                        dom = conn.conn.defineXML(domain.xml)
                    except libvirt.libvirtError as exc:
                        _refused_unless_lost(conn, exc)
                        raise RunError(explain(compiled, exc.get_error_message())) from None
                    try:
                        dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
                    except libvirt.libvirtError as exc:
                        _refused_unless_lost(conn, exc)
                        raise RunError(explain(compiled, exc.get_error_message(),
                                               "libvirt could not start the domain of")) from None
                    build = _qemu_build(compiled.argv[0], _query(dom, "query-version"))  # paused: still there
                    source = files.console(dom)
                    started = time.monotonic()
                    dom.resume()
                    reader, lines = _read_console(dom, source, tail, timeout, cancel)
                    seconds = time.monotonic() - started
                    from_launch = time.monotonic() - launched
                    query_pci = _query(dom, "query-pci")
                    host = conn.conn.getHostname()
                except libvirt.libvirtError as exc:  # the host went away (or answered nonsense) mid-run
                    _refused_unless_lost(conn, exc, tail)
                    raise RunError(f"libvirt host {conn.uri} failed during the run: {exc.get_error_message()}",
                                   console_tail=list(tail)) from None
                assert reader.document is not None
                return BootResult(reader.document, lines, list(query_pci or []), seconds, [f"libvirt:{conn.uri}"],
                                  [], from_launch, host=host, qemu_build=build)
            finally:
                with _signals_deferred():
                    _cleanup(dom)
                    files.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


Source = Callable[[], bytes]
"""Returns the console bytes that arrived since the last call (b"" when none)."""


class _LocalFiles:
    """The embedded driver: the run's files in its private dir, the console a file read as it grows."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.path = workdir / "console.log"

    def prepare(self, compiled: CompiledMachine, image: BootImage, artefacts: dict[str, Path],
                name: str) -> RunFiles:
        return RunFiles(str(image.kernel), str(image.initrd), " ".join(image.cmdline), str(self.path),
                        str(self.workdir), {k: str(v) for k, v in artefacts.items()}, name=name)

    def disks(self, disks: Sequence[DiskFile]) -> None:
        for disk in disks:
            with open(disk.path, "wb") as fh:
                fh.truncate(disk.size)

    def console(self, _dom: libvirt.virDomain) -> Source:
        offset = 0

        def read() -> bytes:
            nonlocal offset
            try:
                with open(self.path, "rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
            except FileNotFoundError:
                return b""
            offset += len(chunk)
            return chunk

        return read

    def close(self) -> None:
        pass


class _RemoteFiles:
    """A daemon's host: kernel, initramfs and ACPI tables shipped once per content into its
    guestcompat pool, disks as the run's own volumes, the console read over libvirt: the serial
    pty through ``virDomainOpenConsole`` where the console is a libvirt ``<serial>``, else (the
    ``<qemu:commandline>`` console of ppc64) a console volume QEMU writes and the runner downloads
    as it grows (``virStorageVolDownload``)."""

    def __init__(self, conn: libvirt.virConnect, uri: str, name: str) -> None:
        self.conn, self.uri, self.name = conn, uri, name
        self.pool = storage.pool(conn, uri)
        self.scratch: list[libvirt.virStorageVol] = []
        self.stream: libvirt.virStream | None = None
        self.console_vol: libvirt.virStorageVol | None = None

    def prepare(self, compiled: CompiledMachine, image: BootImage, artefacts: dict[str, Path],
                name: str) -> RunFiles:
        kernel = storage.ship(self.conn, self.uri, self.pool, Path(image.kernel)).path
        initrd = storage.ship(self.conn, self.uri, self.pool, Path(image.initrd)).path
        shipped = {k: storage.ship(self.conn, self.uri, self.pool, v).path for k, v in artefacts.items()}
        pty = compiled.arch.libvirt_serial is not None
        console = ""
        if not pty:
            self.console_vol = storage.scratch(self.pool, self.uri, f"{name}-console.log", 0)
            self.scratch.append(self.console_vol)
            console = self.console_vol.path()
        return RunFiles(kernel, initrd, " ".join(image.cmdline), console, self.pool_path(), shipped, name=name,
                        disk_prefix=f"{name}-", console_pty=pty)

    def pool_path(self) -> str:
        target = ET.fromstring(self.pool.XMLDesc(0)).find("target/path")
        return target.text if target is not None and target.text else storage.POOL_DIR

    def disks(self, disks: Sequence[DiskFile]) -> None:
        """Each disk a sparse volume at the path the XML names (``<pool>/<domain>-<id>.raw``)."""
        for disk in disks:
            vol_name = Path(disk.path).name
            vol = storage.scratch(self.pool, self.uri, vol_name, disk.size)
            self.scratch.append(vol)
            if vol.path() != disk.path:
                raise RunError(f"libvirt host {self.uri}: volume {vol_name} is at {vol.path()}, not {disk.path}")

    def console(self, dom: libvirt.virDomain) -> Source:
        if self.console_vol is not None:
            return self._download(self.console_vol)
        stream = self.conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        try:
            dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        except libvirt.libvirtError as exc:
            raise RunError(f"libvirt host {self.uri}: cannot open the guest console: {exc.get_error_message()}") from None
        self.stream = stream

        def read() -> bytes:
            out = b""
            while True:
                data = stream.recv(65536)
                if data == -2 or not data:  # -2: nothing more now; b"": the console closed
                    return out
                out += data

        return read

    def _download(self, vol: libvirt.virStorageVol) -> Source:
        offset = 0

        def read() -> bytes:
            nonlocal offset
            size = vol.info()[1]
            if size <= offset:
                return b""
            stream = self.conn.newStream(0)
            chunks: list[bytes] = []
            vol.download(stream, offset, size - offset, 0)
            stream.recvAll(lambda _st, data, acc: acc.append(data) or len(data), chunks)
            stream.finish()
            data = b"".join(chunks)
            offset += len(data)
            return data

        return read

    def close(self) -> None:
        if self.stream is not None:
            with contextlib.suppress(libvirt.libvirtError):
                self.stream.abort()
        storage.delete_quietly(self.scratch)


def _read_console(dom: libvirt.virDomain, source: Source, tail: deque[str], timeout: float,
                  cancel: threading.Event | None = None) -> tuple[FrameReader, list[str]]:
    reader = FrameReader()
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    buffered = b""
    while True:
        active = dom.isActive()
        buffered += source()
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
