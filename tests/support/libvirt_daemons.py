"""Real libvirt daemons for the fleet tests, started without systemd and torn down completely.

* :func:`local_daemon`: a privileged ``libvirtd`` on this machine, its system paths bound to a
  private state directory (libvirtd_launch.py), reached at ``qemu+unix:///system?socket=…``.
* :func:`namespace_daemon`: the same in a network namespace of its own (``ip netns add``, a veth
  pair with private addresses 10.250.x.1 ↔ 10.250.x.2), listening on TCP with ``auth_tcp =
  "none"``: ``qemu+tcp://10.250.x.2/system``. It stands in for a second host: its own state
  directory, and guestcompat's cache and /tmp are hidden from it (empty tmpfs), so nothing
  reaches it by path; images come over libvirt's storage API.

No authentication on that TCP link is acceptable only because the link is a veth pair into a
namespace of this machine; a real fleet uses whatever its URIs carry (TLS, SASL, ssh).

Teardown (also when the test failed): every process in the daemon's mount namespace is killed
(libvirtd and the QEMUs it started, which outlive a killed daemon), the namespace deleted (its
veth end with it), the state directory removed, and the empty mount points this module had to
create on the host (/etc/libvirt, … when libvirt-daemon-system is not installed) removed again.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
LAUNCH = HERE / "libvirtd_launch.py"
SYSTEM_DIRS = {"etc": "/etc/libvirt", "lib": "/var/lib/libvirt", "run": "/run/libvirt",
               "cache": "/var/cache/libvirt", "log": "/var/log/libvirt"}
# namespaces = []: a privileged daemon otherwise gives each QEMU a mount namespace of its own, and
# teardown finds the daemon's QEMUs by the daemon's mount namespace.
QEMU_CONF = ('user = "root"\ngroup = "root"\nsecurity_driver = "none"\nstdio_handler = "file"\n'
             'dynamic_ownership = 0\nremember_owner = 0\nnamespaces = []\n')
START_TIMEOUT = 30.0
TCP_PORT = 16509


@dataclass
class Daemon:
    """One running libvirtd and how to reach, stop and restart it."""

    name: str
    uri: str
    state: Path
    argv: list[str]
    proc: subprocess.Popen | None = None
    namespaces: set[str] = field(default_factory=set)
    """Mount namespaces of every start (``mnt:[…]``): what teardown empties of processes."""
    ready: object = None

    def start(self) -> None:
        log = open(self.state / "daemon.out", "ab")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with contextlib.suppress(OSError):
                ns = os.readlink(f"/proc/{self.proc.pid}/ns/mnt")
                if ns != os.readlink("/proc/self/ns/mnt"):
                    self.namespaces.add(ns)
            if self.proc.poll() is not None:
                raise RuntimeError(f"libvirtd {self.name} exited with {self.proc.returncode}: {self.output()}")
            if self.ready():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"libvirtd {self.name} did not come up in {START_TIMEOUT:.0f} s: {self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        """The end of what the daemon printed and logged (for a failure message)."""
        text = ""
        for path in (self.state / "daemon.out", self.state / "log" / "libvirtd.log"):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")[-1500:]
        return text

    def kill(self) -> None:
        """The host disappears: SIGKILL the daemon only (its QEMUs keep running, as on a real host)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def qemus(self) -> list[int]:
        """QEMU processes this daemon started (in any of its mount namespaces)."""
        return [pid for pid in _pids_in(self.namespaces) if _is_qemu(pid)]

    def guests(self) -> list[int]:
        """QEMU processes running a guestcompat domain (not libvirt's capability probes)."""
        out = []
        for pid in self.qemus():
            with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as fh:
                if b"guest=guestcompat-" in fh.read():
                    out.append(pid)
        return out

    def teardown(self) -> None:
        # SIGKILL straight away: everything the daemon knows lives in the state directory that
        # goes next (a SIGTERM'd libvirtd takes ~10 s to wind down its worker pool).
        deadline = time.monotonic() + 20
        while pids := _pids_in(self.namespaces):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes of libvirtd {self.name} survive SIGKILL: {pids}")
            time.sleep(0.1)
        self.kill()
        with contextlib.suppress(OSError):
            _keep_capabilities(self.state)


def _pids_in(namespaces: set[str]) -> list[int]:
    pids = []
    for path in glob.glob("/proc/[0-9]*/ns/mnt"):
        with contextlib.suppress(OSError):
            if os.readlink(path) in namespaces:
                pids.append(int(path.split("/")[2]))
    return pids


def _is_qemu(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"qemu-system" in fh.read().split(b"\0")[0]
    except OSError:
        return False


def _state_dir(name: str, libvirtd_conf: str) -> Path:
    state = Path(tempfile.mkdtemp(prefix=f"gcd-{name}-"))
    for sub in SYSTEM_DIRS:
        (state / sub).mkdir()
    (state / "etc" / "qemu.conf").write_text(QEMU_CONF)
    (state / "etc" / "libvirtd.conf").write_text(libvirtd_conf)
    _seed_capabilities(state / "cache" / "qemu" / "capabilities")
    return state


def _caps_cache() -> Path:
    """Daemon-probed QEMU capabilities (kept apart from the embedded driver's: they record privilege)."""
    from guestcompat.paths import cache_root

    return cache_root() / "libvirt-capabilities-daemon"


def _seed_capabilities(target: Path) -> None:
    """QEMU capabilities earlier daemons probed (libvirt re-probes stale ones): measured 14 s for the
    five installed emulators on a fresh daemon, milliseconds when seeded."""
    target.mkdir(parents=True)
    for xml in _caps_cache().glob("*.xml"):
        shutil.copyfile(xml, target / xml.name)


def _keep_capabilities(state: Path) -> None:
    cache = _caps_cache()
    cache.mkdir(parents=True, exist_ok=True)
    for xml in (state / "cache" / "qemu" / "capabilities").glob("*.xml"):
        tmp = cache / f".{xml.name}.{os.getpid()}"
        shutil.copyfile(xml, tmp)
        os.replace(tmp, cache / xml.name)


_MOUNT_POINTS_USE = "/run/guestcompat-test-libvirt-mount-points.use"
_MOUNT_POINTS_MUTEX = "/run/guestcompat-test-libvirt-mount-points.mutex"
_MOUNT_POINTS_MADE = "/run/guestcompat-test-libvirt-mount-points.made"
_USERS = [0]
_USE_FD: list[int] = []


@contextlib.contextmanager
def _mount_points_mutex() -> Iterator[None]:
    import fcntl

    fd = os.open(_MOUNT_POINTS_MUTEX, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _mount_points() -> None:
    """libvirt's system directories must exist as mount points; make (and later remove) the missing ones.

    Removing a directory that is a mount point in a running daemon's namespace detaches that daemon's
    mount (its /etc/libvirt empties under it: "cannot remove config for guestcompat" at undefine, seen
    when two test processes ran daemons side by side). So each process that runs daemons holds a
    shared flock on one "use" file for as long as it does; the directories any of them made are listed
    in one file and go only when the last one leaves (it gets the use lock exclusively). Entering and
    leaving hold a mutex, so flock's non-atomic lock conversion leaves no gap."""
    import fcntl

    _USERS[0] += 1
    if _USERS[0] > 1:
        return
    with _mount_points_mutex():
        fd = os.open(_MOUNT_POINTS_USE, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_SH)
        _USE_FD.append(fd)
        made = [target for target in SYSTEM_DIRS.values() if not os.path.isdir(target)]
        for target in made:
            os.makedirs(target)
        if made:
            with open(_MOUNT_POINTS_MADE, "a") as fh:
                fh.write("".join(f"{target}\n" for target in made))


def _remove_mount_points() -> None:
    import fcntl

    _USERS[0] -= 1
    if _USERS[0] > 0 or not _USE_FD:
        return
    with _mount_points_mutex():
        fd = _USE_FD.pop()
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another process still runs daemons: the last one to leave removes them
            with contextlib.suppress(FileNotFoundError), open(_MOUNT_POINTS_MADE) as fh:
                for target in reversed(fh.read().split()):
                    with contextlib.suppress(OSError):
                        os.rmdir(target)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(_MOUNT_POINTS_MADE)
        finally:
            os.close(fd)


def _conf(**extra: str) -> str:
    settings = {"auth_unix_rw": '"none"', "auth_unix_ro": '"none"', "unix_sock_group": '"root"',
                "log_outputs": '"3:file:/var/log/libvirt/libvirtd.log"', **extra}
    return "".join(f"{k} = {v}\n" for k, v in settings.items())


def _launch(state: Path, hide: list[str], hostname: str) -> list[str]:
    argv = [sys.executable, str(LAUNCH), str(state), "--hostname", hostname]
    for path in hide:
        argv += ["--hide", path]
    return argv + ["--", "libvirtd", "--pid-file", "/run/libvirt/libvirtd.pid", "--config", "/etc/libvirt/libvirtd.conf"]


def _libvirt_answers(uri: str) -> bool:
    import libvirt

    libvirt.registerErrorHandler(lambda *_: None, None)
    try:
        libvirt.open(uri).close()
    except libvirt.libvirtError:
        return False
    return True


@contextlib.contextmanager
def local_daemon(hide: list[str] | None = None) -> Iterator[Daemon]:
    """A libvirtd on this machine with private state, at ``qemu+unix:///system?socket=STATE/run/libvirt-sock``."""
    _mount_points()
    state = _state_dir("local", _conf())
    uri = f"qemu+unix:///system?socket={state}/run/libvirt-sock"
    hidden = ["/tmp"] if hide is None else hide
    daemon = Daemon("local", uri, state, ["unshare", "--mount", "--uts", "--propagation", "private", "--",
                                          *_launch(state, hidden, "gc-local")])
    daemon.ready = lambda: (state / "run" / "libvirt-sock").exists() and _libvirt_answers(uri)
    try:
        daemon.start()
        yield daemon
    finally:
        try:
            daemon.teardown()
        finally:
            shutil.rmtree(state, ignore_errors=True)
            _remove_mount_points()


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


@contextlib.contextmanager
def namespace_daemon(hide: list[str] | None = None) -> Iterator[Daemon]:
    """A libvirtd in its own network namespace at ``qemu+tcp://10.250.x.2/system`` (auth none, see above)."""
    from guestcompat.paths import cache_root

    tag = os.getpid() % 100000
    ns, outer, inner = f"gcfleet-{tag}", f"gcf{tag}a", f"gcf{tag}b"
    net = f"10.250.{tag % 250}"
    _mount_points()
    state = _state_dir("ns", _conf(listen_tcp="1", listen_tls="0", auth_tcp='"none"',
                                   listen_addr=f'"{net}.2"', tcp_port=f'"{TCP_PORT}"'))
    uri = f"qemu+tcp://{net}.2/system"
    hidden = ["/tmp", str(cache_root())] if hide is None else hide
    daemon = Daemon("namespace", uri, state, ["ip", "netns", "exec", ns, "unshare", "--uts", "--",
                                              *_launch(state, hidden, "gc-namespace")[:-5],
                                              "libvirtd", "--listen", "--pid-file", "/run/libvirt/libvirtd.pid",
                                              "--config", "/etc/libvirt/libvirtd.conf"])

    def ready() -> bool:
        with contextlib.suppress(OSError), socket.create_connection((f"{net}.2", TCP_PORT), timeout=1):
            return _libvirt_answers(uri)
        return False

    daemon.ready = ready
    made_ns = False
    try:
        _ip("netns", "add", ns)
        made_ns = True
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", ns)
        _ip("addr", "add", f"{net}.1/30", "dev", outer)
        _ip("link", "set", outer, "up")
        _ip("-n", ns, "addr", "add", f"{net}.2/30", "dev", inner)
        _ip("-n", ns, "link", "set", inner, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        daemon.start()
        yield daemon
    finally:
        try:
            daemon.teardown()
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("link", "del", outer)
            if made_ns:
                _ip("netns", "del", ns)
            shutil.rmtree(state, ignore_errors=True)
            _remove_mount_points()
