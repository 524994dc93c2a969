"""Exec ``libvirtd`` with libvirt's fixed system paths bound to a private state directory.

A privileged libvirtd has no option for where it keeps its state: /etc/libvirt, /var/lib/libvirt,
/run/libvirt, /var/cache/libvirt and /var/log/libvirt are compiled in. The fixture
(libvirt_daemons.py) therefore starts this script in a private mount namespace (``unshare
--mount`` or ``ip netns exec``, whose mounts do not propagate back), which binds each of those
paths to ``STATE/<name>``, lays empty tmpfs over the ``--hide`` paths (so the daemon and its QEMUs
cannot see the caller's files: nothing is shared by path) and then becomes libvirtd.

    python3 libvirtd_launch.py STATE [--hostname NAME] [--hide PATH …] -- libvirtd ARGS…
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

SYSTEM_DIRS = {"etc": "/etc/libvirt", "lib": "/var/lib/libvirt", "run": "/run/libvirt",
               "cache": "/var/cache/libvirt", "log": "/var/log/libvirt"}


def _mount(*argv: str) -> None:
    subprocess.run(["mount", *argv], check=True)


def main(args: list[str]) -> None:
    split = args.index("--")
    options, command = args[:split], args[split + 1:]
    state, hide, hostname = options[0], [], None
    rest = options[1:]
    while rest:
        flag, value, *rest = rest
        if flag == "--hostname":
            hostname = value
        else:
            assert flag == "--hide", flag
            hide.append(value)
    if hostname:  # in the UTS namespace unshare made: the report's host names tell the daemons apart
        socket.sethostname(hostname)
    _mount("--make-rprivate", "/")
    for sub, target in SYSTEM_DIRS.items():
        _mount("--bind", os.path.join(state, sub), target)
    hidden: list[str] = []
    for path in hide:
        # a path below one already hidden (the cache in /tmp, as a CI checkout may have it) is gone too
        if any(os.path.commonpath([path, done]) == done for done in hidden):
            continue
        _mount("-t", "tmpfs", "-o", "mode=0755,size=1m", "tmpfs", path)
        hidden.append(path)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
