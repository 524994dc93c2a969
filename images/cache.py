"""Cache-directory primitives shared by the image builders.

Several processes build into the same cache at once (pytest-xdist workers,
a CLI run next to a test run).  Every cached artefact is therefore built in a
private temporary directory next to its final place and published with one
``os.replace``: a reader sees either nothing or the complete artefact, never
half of it.  A per-artefact ``flock`` makes concurrent builders of the *same*
artefact wait for the first one instead of doing the work twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on *lock_path* (created if missing).

    flock locks die with the process, so a killed builder never leaves a
    stale lock behind (unlike lock files whose existence is the lock).
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def remove_stale_temps(parent: Path, name: str) -> None:
    """Remove temporary build dirs of *name* left by a killed builder.

    Only call this while holding *name*'s lock: then no live process can be
    writing into one of them.
    """
    if not parent.is_dir():
        return
    for entry in parent.glob(f"{TMP_PREFIX}{name}-*"):
        shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def building_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temp dir; on success publish it atomically as *final*.

    On any exception the temp dir is removed and *final* is left untouched.
    The caller must hold *final*'s lock.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{final.name}-", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; cached artefacts are readable
        if final.exists():  # an incomplete leftover (we hold the lock)
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def scratch_dir(parent: Path, label: str) -> Iterator[Path]:
    """A temp dir under *parent* that is always removed, whatever happens.

    Kept under the cache root rather than /tmp so unpacked kernels (400 MB)
    land on the same file system as the cache and /tmp (maybe a small tmpfs)
    does not fill up.  The dir is guarded by a flock'ed ``<dir>.lock`` so
    :func:`sweep_scratch` can tell a dir of a killed process (SIGKILL skips
    ``finally``) from one in use.
    """
    parent.mkdir(parents=True, exist_ok=True)
    fd, lock_name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{label}-", suffix=".lock", dir=parent)
    fcntl.flock(fd, fcntl.LOCK_EX)
    lock = Path(lock_name)
    tmp = lock.with_name(lock.name.removesuffix(".lock"))
    try:
        tmp.mkdir()
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)


def sweep_scratch(parent: Path, min_age: float = 60.0, label: str = "",
                  before_remove: Callable[[Path], None] | None = None) -> None:
    """Remove scratch dirs under *parent* (of *label* if given) whose owner died without cleaning up.

    A dir counts as abandoned when its lock is free (no live owner) and the
    lock is older than *min_age* seconds (closes the window between
    creating a lock file and locking it). *before_remove* gets each abandoned
    dir first (the full guest unmounts what a killed debootstrap left mounted).
    """
    if not parent.is_dir():
        return
    now = time.time()
    for lock in parent.glob(f"{TMP_PREFIX}{label}{'-' if label else ''}*.lock"):
        try:
            if now - lock.stat().st_mtime < min_age:
                continue
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            if before_remove is not None:
                before_remove(lock.with_name(lock.name.removesuffix(".lock")))
            shutil.rmtree(lock.with_name(lock.name.removesuffix(".lock")), ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
        finally:
            os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers never see a truncated file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> Any | None:
    """The JSON content of *path*, or None when it is missing or unreadable."""
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link *src* to *dst* (same cache file system), copying if that fails.

    The extracted vmlinux (~65 MB) is shared by every image of one kernel;
    a hard link keeps each image directory self-contained without the copy.
    """
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
