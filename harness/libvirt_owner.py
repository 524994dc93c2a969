"""Which guestcompat run owns a libvirt domain, and removing the domains whose run is gone.

A host that went away mid-run (its daemon killed, its network cut) keeps the domain guestcompat
had started on it: the run could neither destroy nor undefine it. So that such a domain does not
outlive its run for ever, each run's domain name says who started it:
``guestcompat-<machine>-<pid>-<suffix>``, where ``<machine>`` is a short digest of this machine's
identity (``/etc/machine-id``, else the host name) and ``<pid>`` the process that defined it.
Whenever guestcompat connects to a host for a matrix, it destroys and undefines the domains
started from this machine by a process that no longer exists (:func:`sweep`), and a worker whose
host came back during the run removes its own leftovers before it exits (:func:`remove_own`).

A domain of another machine, or of a process that is still alive, is never touched here: only
``guestcompat fleet clean`` removes every ``guestcompat-*`` domain, on the user's word.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path

from guestcompat.harness.libvirt_embed import libvirt  # first: it sets up libvirt's logging
from guestcompat.qemu_process import pid_alive

DOMAIN_PREFIX = "guestcompat-"
"""Every domain guestcompat defines is named so; ``fleet clean`` removes exactly those."""
_OWNED = re.compile(rf"^{DOMAIN_PREFIX}(?P<machine>[0-9a-f]{{8}})-(?P<pid>[0-9]+)-")


def machine_tag() -> str:
    """Eight hex digits naming this machine (stable across reboots, unlike its pids)."""
    identity = ""
    with contextlib.suppress(OSError):
        identity = Path("/etc/machine-id").read_text().strip()
    return hashlib.sha256((identity or socket.gethostname()).encode()).hexdigest()[:8]


def domain_name(suffix: str, pid: int | None = None) -> str:
    """The name of a run's domain: ``guestcompat-<machine>-<pid>-<suffix>``."""
    return f"{DOMAIN_PREFIX}{machine_tag()}-{os.getpid() if pid is None else pid}-{suffix}"


def stale(name: str) -> bool:
    """True for a domain this machine started from a process that no longer exists."""
    m = _OWNED.match(name)
    return bool(m) and m["machine"] == machine_tag() and not pid_alive(int(m["pid"]))


def remove(conn: libvirt.virConnect, chosen: Callable[[str], bool]) -> list[str]:
    """Destroy and undefine every domain whose name ``chosen`` accepts; their names."""
    removed = []
    for dom in conn.listAllDomains(0):
        name = dom.name()
        if not chosen(name):
            continue
        with contextlib.suppress(libvirt.libvirtError):
            if dom.isActive():
                dom.destroy()
        with contextlib.suppress(libvirt.libvirtError):
            if dom.isPersistent():
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        removed.append(name)
    return removed


def sweep(conn: libvirt.virConnect) -> list[str]:
    """Destroy and undefine the domains of this machine's runs that are gone; their names."""
    return remove(conn, stale)


def remove_own(conn: libvirt.virConnect, pid: int | None = None) -> list[str]:
    """Destroy and undefine every domain process ``pid`` (default: this one) started; call it only
    when none of its runs is still going."""
    prefix = domain_name("", pid)
    return remove(conn, lambda name: name.startswith(prefix))
