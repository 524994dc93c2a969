"""Where guestcompat keeps what it builds: outside git, shared between runs.

``GUESTCOMPAT_CACHE`` overrides the location (CI points it at a directory it
keeps between runs); the default follows the XDG cache convention.
"""

import os
from pathlib import Path


def cache_root() -> Path:
    """Root of the build cache (images, downloaded packages, QEMU capabilities)."""
    env = os.environ.get("GUESTCOMPAT_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "guestcompat"
