"""Find running QEMU processes by their argv, for the tests that prove nothing is left behind."""

from __future__ import annotations

import glob
from collections.abc import Callable


def qemu_pids(matches: Callable[[list[bytes]], bool]) -> list[int]:
    """PIDs of the qemu-system-* processes whose argv satisfies ``matches`` (processes that exit
    while being read are skipped)."""
    pids = []
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if argv and b"qemu-system" in argv[0] and matches(argv):
            pids.append(int(path.split("/")[2]))
    return pids
