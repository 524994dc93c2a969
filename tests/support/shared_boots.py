"""Direct-backend boots shared by every test of one pytest session, also across xdist workers.

Several modules need the same direct boot of a bundled profile (the per-profile checks, and the
libvirt test that compares its fingerprint with a libvirt boot of the same profile). Booting it
once per session instead of once per module and worker saves a guest boot (~10-20 s under TCG)
per profile. The session's directory (``GUESTCOMPAT_TEST_BOOTS``, made and removed by the
controller in tests/conftest.py, inherited by xdist workers) holds one pickled
:class:`RunOutcome` per (profile, target); a per-key ``flock`` makes the second worker wait for
the first one's boot instead of booting again. A failed boot is not stored: whoever asks next
boots again and gets the harness's own error.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import re
from pathlib import Path

from guestcompat.emulation import arches
from guestcompat.emulation.target import Target
from guestcompat.harness.run import RunOutcome, run_profile
from guestcompat.profiles.loader import load

ENV = "GUESTCOMPAT_TEST_BOOTS"
PC = Target("x86_64", "pc", "tcg")
PSERIES = Target("ppc64", "pseries", "tcg")
TIMEOUT = 240.0

_memory: dict[str, RunOutcome] = {}


def default_target(name: str) -> Target:
    """The target a bundled profile boots on in the tests: its own architecture's default."""
    return arches.resolve_target(load(name).platform.arch)


def direct_boot(name: str, target: Target | None = None) -> RunOutcome:
    """The direct (QEMU argv) boot of ``name`` on ``target``, booted at most once per session."""
    target = target or default_target(name)
    key = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{name}@{target}@{target.qemu_binary or 'default'}")
    if key in _memory:
        return _memory[key]
    shared = os.environ.get(ENV)
    if not shared or not Path(shared).is_dir():
        outcome = run_profile(name, target, timeout=TIMEOUT)
    else:
        stored = Path(shared) / f"{key}.pickle"
        with open(Path(shared) / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if stored.exists():
                outcome = pickle.loads(stored.read_bytes())
            else:
                outcome = run_profile(name, target, timeout=TIMEOUT)
                tmp = stored.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(pickle.dumps(outcome))
                os.replace(tmp, stored)
    _memory[key] = outcome
    return outcome
