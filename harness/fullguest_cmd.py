"""The default full guest (images/fullguest.py) with the probe payload of its architecture."""

from __future__ import annotations

from collections.abc import Callable

from guestcompat.detection.payload import probe_payload
from guestcompat.emulation import arches
from guestcompat.images.fullguest import FullGuest, ensure_full_guest


def ensure_default_full_guest(progress: Callable[[str], None] | None = None) -> FullGuest:
    """The Debian 12 VM of the default architecture (amd64) the boot-imported tests import
    (built once, then cached)."""
    strategy = arches.get(arches.DEFAULT_ARCH)
    return ensure_full_guest(probe_payload(strategy), strategy, progress=progress)
