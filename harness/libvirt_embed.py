"""A libvirt connection: the embedded QEMU driver in a throwaway root, or any URI.

The embedded driver (``qemu:///embed?root=DIR``) runs libvirt's QEMU driver
inside this process, without a daemon (facts: shared/reference/measured-here.md):
it needs the default event loop registered and running in a thread before the
connection opens, and ``DIR/etc/qemu.conf`` that runs QEMU as root without a
security driver or virtlogd. The root is a temp dir removed when the
process exits (see :func:`embed_root`), so nothing is left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# libvirt logs warnings (its taint notes, the DAC driver's) on stderr, also from its forked
# children; errors reach the user as exceptions instead. Read when libvirt initialises (import).
os.environ.setdefault("LIBVIRT_LOG_OUTPUTS", "4:file:/dev/null")

import libvirt  # noqa: E402  (after the log setting)

from guestcompat.errors import HostLostError, RunError  # noqa: E402
from guestcompat.qemu_process import private_dir

# dynamic_ownership/remember_owner off: QEMU runs as root, so nothing needs chown-ing or remembering.
QEMU_CONF = ('user = "root"\ngroup = "root"\nsecurity_driver = "none"\nstdio_handler = "file"\n'
             'dynamic_ownership = 0\nremember_owner = 0\n')

_loop_lock = threading.Lock()
_loop_started = False


def _ensure_event_loop() -> None:
    """Register libvirt's default event loop once per process and run it in a daemon thread."""
    global _loop_started
    with _loop_lock:
        if _loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _loop_started = True


def _quiet(_ctx: object, _err: object) -> None:
    """libvirt prints every error on stderr by default; ours reach the user as exceptions."""


@dataclass(frozen=True)
class Connection:
    conn: libvirt.virConnect
    uri: str
    root: Path | None
    """The embed root (None for a daemon's URI)."""


_root_lock = threading.Lock()
_embed_root: Path | None = None


def embed_root() -> Path:
    """This process's embedded root, made on first use and removed when the process exits.

    libvirt keeps an embedded driver open for the life of the process and refuses a
    second root ("already open with path …"), so every connection of a process shares
    one root; domains never outlive the run that defined them (the runner destroys and
    undefines them), and the root goes at exit, also after Ctrl-C/SIGTERM (which the
    CLI turns into a normal exit).
    """
    global _embed_root
    with _root_lock:
        if _embed_root is None:
            root = private_dir("libvirt")
            (root / "etc").mkdir()
            (root / "etc" / "qemu.conf").write_text(QEMU_CONF)
            _seed_capabilities(root)
            atexit.register(_retire, root)
            _embed_root = root
        return _embed_root


CAPS_SUBDIR = Path("cache/qemu/capabilities")


def _caps_cache() -> Path:
    from guestcompat.paths import cache_root

    return cache_root() / "libvirt-capabilities"


def _seed_capabilities(root: Path) -> None:
    """Start from the QEMU capabilities earlier runs probed: probing them costs ~4 s per emulator.

    libvirt re-probes by itself when the emulator or libvirt changed (it records both in the file).
    """
    source = _caps_cache()
    if not source.is_dir():
        return
    target = root / CAPS_SUBDIR
    target.mkdir(parents=True, exist_ok=True)
    for xml in source.glob("*.xml"):
        shutil.copyfile(xml, target / xml.name)


def embed_uri_root(uri: str) -> Path | None:
    """The root directory of a ``qemu:///embed?root=DIR`` URI, None for any other URI."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != "qemu" or parsed.netloc or parsed.path != "/embed":
        return None
    roots = urllib.parse.parse_qs(parsed.query).get("root")
    return Path(roots[0]) if roots else None


MONITOR_SOCKET_SUFFIX = len("/lib/qemu/domain-9999-") + 20 + len("/monitor.sock")
"""What libvirt appends to the root for a domain's QMP socket (it cuts the domain name to 20 characters)."""
MAX_EMBED_ROOT = 107 - MONITOR_SOCKET_SUFFIX
"""A UNIX socket path holds at most 107 bytes: a longer root fails every domain start."""


def check_embed_root(root: Path) -> None:
    """Refuse an embed root libvirt could create but never start a domain in (its sockets would not fit)."""
    if len(str(root)) > MAX_EMBED_ROOT:
        raise RunError(f"libvirt embed root {root} is too long ({len(str(root))} characters; at most "
                       f"{MAX_EMBED_ROOT}): libvirt puts each domain's monitor socket under it, and a UNIX "
                       f"socket path holds 107 bytes")


def prepare_embed_root(root: Path) -> bool:
    """Make a caller-named embed root usable like the throwaway one; True if this call prepared it.

    A root without ``etc/qemu.conf`` gets the same qemu.conf (QEMU as root, no security driver,
    no virtlogd) and the probed QEMU capabilities; a root that has a qemu.conf is used as it is
    (its owner configured it). The root itself is the caller's and is never removed.
    """
    conf = root / "etc" / "qemu.conf"
    if conf.exists():
        return False
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(QEMU_CONF)
    _seed_capabilities(root)
    return True


def _retire(root: Path) -> None:
    """At exit: keep what libvirt probed for the next process, then remove the root."""
    keep_capabilities(root)
    shutil.rmtree(root, ignore_errors=True)


def keep_capabilities(root: Path) -> None:
    """Copy what libvirt probed in ``root`` to the cache the next root is seeded from."""
    with contextlib.suppress(OSError):
        cache = _caps_cache()
        cache.mkdir(parents=True, exist_ok=True)
        for xml in (root / CAPS_SUBDIR).glob("*.xml"):
            tmp = cache / f".{xml.name}.{os.getpid()}"
            shutil.copyfile(xml, tmp)
            os.replace(tmp, cache / xml.name)


@contextlib.contextmanager
def connect(uri: str | None = None) -> Iterator[Connection]:
    """Open ``uri``, or the embedded driver in this process's throwaway root.

    An embed URI yields the process's shared connection (see :func:`_embedded`), left open.
    """
    _ensure_event_loop()
    libvirt.registerErrorHandler(_quiet, None)
    root: Path | None = None
    if uri is None:
        root = embed_root()
        uri = f"qemu:///embed?root={root}"
    else:
        root = embed_uri_root(uri)
        if root is not None:
            check_embed_root(root)
            if prepare_embed_root(root):
                atexit.register(keep_capabilities, root)
    if root is not None:
        yield Connection(_embedded(uri), uri, root)
        return
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise HostLostError(f"cannot open libvirt connection {uri}: {exc.get_error_message()}") from None
    try:
        yield Connection(conn, uri, root)
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()


_embedded_lock = threading.Lock()
_embedded_conns: dict[str, libvirt.virConnect] = {}


def _embedded(uri: str) -> libvirt.virConnect:
    """The process's one connection to an embedded driver, opened on first use and closed at exit.

    Every virConnectOpen of an embed URI loads the QEMU driver module and registers it again
    (libvirt's virRegisterConnectDriver), and a process can register at most MAX_DRIVERS: about
    twenty opens in one process fail with "Too many drivers, cannot register QEMU" (measured in
    an xdist worker running the libvirt tests). One shared connection (libvirt connections are
    thread-safe) keeps a process at one registration however many runs it makes.
    """
    with _embedded_lock:
        conn = _embedded_conns.get(uri)
        if conn is None:
            try:
                conn = libvirt.open(uri)
            except libvirt.libvirtError as exc:
                raise RunError(f"cannot open libvirt connection {uri}: {exc.get_error_message()}") from None
            _embedded_conns[uri] = conn
            atexit.register(_close_embedded, uri)
        return conn


def _close_embedded(uri: str) -> None:
    conn = _embedded_conns.pop(uri, None)
    if conn is not None:
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()
