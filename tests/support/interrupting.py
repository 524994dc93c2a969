"""Waiting for the moment to interrupt a running multi-host matrix.

"Both hosts have a guest running" is a race, not a moment: CI once saw one host's only cell end
before the other host's guest had started, and the run ended before it could be interrupted. With
two cells per host, the moment is "every host has started a guest and one is running now".
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence


def wait_for_every_host_started(proc: subprocess.Popen, running: Sequence[Callable[[], object]],
                                within: float = 180.0) -> None:
    """Return once each of ``running`` (one per host: truthy while it has a guest) has been seen
    truthy at least once and one of them is truthy now; fail if ``proc`` ends or time runs out."""
    deadline = time.monotonic() + within
    started = [False] * len(running)
    while True:
        now = [bool(check()) for check in running]
        started = [was or is_now for was, is_now in zip(started, now)]
        if all(started) and any(now):
            return
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"the hosts never all started a guest (started: {started})"
        time.sleep(0.1)
