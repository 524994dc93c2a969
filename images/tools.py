"""Running host tools (apt, dpkg-deb, depmod) the same careful way everywhere."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from guestcompat.errors import ImageError


def run_tool(argv: Sequence[str], *, cwd: Path | None = None, what: str) -> str:
    """Run *argv* (never through a shell) and return stdout; ImageError on failure.

    ``LC_ALL=C`` keeps apt's output parseable whatever the user's locale is.
    """
    env = dict(os.environ, LC_ALL="C", LANG="C")
    try:
        proc = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True,
                              text=True, check=False)
    except FileNotFoundError as exc:
        raise ImageError(f"{what}: {argv[0]} is not installed (run scripts/setup.sh)") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise ImageError(f"{what} failed ({' '.join(argv)}, exit {proc.returncode}):\n{tail}")
    return proc.stdout
