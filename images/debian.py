"""Debian packages as the only source of guest binaries: resolve, download, unpack.

Why apt and not a hand-kept URL list: the host's apt configuration already
knows the mirrors, the signing keys and the exact versions; ``apt-get
download`` checks the hash of every file against the signed index.

Two things make this more than ``apt-get download NAME``:

* **A stale index.**  This machine has two sources (bookworm and
  bookworm-security).  At any moment one of their indexes may name a
  version the mirror no longer serves (404).  So every package resolves to a
  *list* of candidate versions (apt's candidate first, then every other
  version apt knows), and a failed download moves on to the next one.  A
  version that failed is remembered until the apt indexes change, so later
  runs do not retry it.
* **Speed on a cache hit.**  ``apt-cache`` needs about a second per call
  here.  The resolution is stored in ``debs/resolution.json`` together with a
  fingerprint of apt's state (index files, sources, dpkg architectures); as
  long as the fingerprint matches, no apt command runs at all.

Cross-architecture packages (the ppc64el guest) are requested as
``NAME:ARCH``, which works once ``dpkg --add-architecture ARCH`` and
``apt-get update`` have run (scripts/setup.sh does both).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from guestcompat.errors import ImageError

from . import cache
from .aptparse import kernel_dependency, ordered_versions, parse_control_records, parse_policy
from .tools import run_tool

Progress = Callable[[str], None]

#: Files whose change can change what apt resolves or serves.
APT_STATE_PATHS: tuple[Path, ...] = (
    Path("/var/lib/apt/lists"),
    Path("/etc/apt/sources.list"),
    Path("/etc/apt/sources.list.d"),
    Path("/etc/apt/preferences"),
    Path("/etc/apt/preferences.d"),
    Path("/var/lib/dpkg/arch"),
)

#: Bump when the layout of resolution.json changes.
RESOLUTION_FORMAT = 1


@dataclass(frozen=True)
class PackageRef:
    """One exact binary package: what ``apt-get download`` is asked for."""

    name: str
    version: str
    arch: str
    size: int | None = field(default=None, compare=False)

    @property
    def apt_spec(self) -> str:
        """``NAME:ARCH=VERSION`` — arch-qualified so foreign arches work the same way."""
        return f"{self.name}:{self.arch}={self.version}"

    @property
    def deb_filename(self) -> str:
        """The cache file name (apt's own convention: the epoch colon as %3a)."""
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}.deb"

    def describe(self) -> str:
        size = f", {self.size / 1e6:.1f} MB" if self.size else ""
        return f"{self.name}:{self.arch} {self.version}{size}"

    def to_json(self) -> list[object]:
        return [self.name, self.version, self.arch, self.size]

    @classmethod
    def from_json(cls, data: Sequence[object]) -> PackageRef:
        name, version, arch, size = data
        return cls(str(name), str(version), str(arch), int(size) if size is not None else None)


# --------------------------------------------------------------------------
# the package source


def apt_state_fingerprint(paths: Sequence[Path] | None = None) -> str:
    """A hash that changes whenever apt's indexes, sources or arches change.

    Only ``stat`` calls: costs about a millisecond.
    """
    h = hashlib.sha256()
    for path in APT_STATE_PATHS if paths is None else paths:
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name) if path.is_dir() else [path]
        except OSError:
            continue
        for entry in entries:
            try:
                st = os.stat(entry)
            except OSError:
                continue
            if not os.path.isfile(entry) or os.path.basename(entry) == "lock":
                continue
            h.update(f"{os.fspath(entry)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def apt_get_download(ref: PackageRef, dest_dir: Path) -> Path:
    """Download exactly *ref* into *dest_dir* with ``apt-get download``; return the .deb.

    Module-level so tests can replace it (the stale-index fallback test).
    """
    run_tool(["apt-get", "download", "-q", ref.apt_spec], cwd=dest_dir,
             what=f"downloading {ref.apt_spec}")
    debs = sorted(dest_dir.glob("*.deb"))
    if len(debs) != 1:
        raise ImageError(f"apt-get download {ref.apt_spec} left {len(debs)} .deb files")
    return debs[0]


def unpack(deb: Path, dest: Path) -> None:
    """Unpack *deb* into *dest* with ``dpkg-deb -x`` (no maintainer scripts, no root)."""
    run_tool(["dpkg-deb", "-x", str(deb), str(dest)], what=f"unpacking {deb.name}")


class PackageSource:
    """Resolves package names to candidate versions and fetches .deb files.

    .deb files are kept in ``<cache>/debs/`` and reused by every later build.
    """

    def __init__(self, debs_dir: Path, progress: Progress | None = None) -> None:
        self.debs_dir = debs_dir
        self.progress = progress or (lambda _msg: None)
        self._state_file = debs_dir / "resolution.json"
        self._lock = debs_dir / "resolution.lock"

    # ---- resolution (cached) -------------------------------------------

    def _load_state(self, fingerprint: str) -> dict:
        data = cache.read_json(self._state_file)
        if (not isinstance(data, dict) or data.get("format") != RESOLUTION_FORMAT
                or data.get("fingerprint") != fingerprint):
            return {"format": RESOLUTION_FORMAT, "fingerprint": fingerprint,
                    "resolved": {}, "failed": []}
        return data

    def _update_state(self, mutate: Callable[[dict], None]) -> None:
        fingerprint = apt_state_fingerprint()
        with cache.locked(self._lock):
            state = self._load_state(fingerprint)
            mutate(state)
            cache.write_json_atomic(self._state_file, state)

    def resolve(self, packages: Sequence[str], kernels: Sequence[str], arch: str
                ) -> dict[str, list[PackageRef]]:
        """Candidate lists for plain *packages* and kernel metapackages *kernels*.

        A kernel metapackage resolves to the real kernel package of each of
        its versions (metapackage version N depends on kernel ABI N), so a
        stale metapackage version falls back to the kernel of the other one.
        Served from resolution.json while apt's state is unchanged.
        """
        wanted = [f"{n}:{arch}" for n in packages] + [f"{n}:{arch}#kernel" for n in kernels]
        fingerprint = apt_state_fingerprint()
        state = self._load_state(fingerprint)
        resolved = state["resolved"]
        if all(w in resolved for w in wanted):
            return {w.split(":")[0]: [PackageRef.from_json(r) for r in resolved[w]] for w in wanted}

        self.progress(f"resolving {', '.join(list(packages) + list(kernels))} ({arch}) with apt-cache")
        fresh = self._query_apt(packages, kernels, arch)

        def store(st: dict) -> None:
            for name, refs in fresh.items():
                suffix = "#kernel" if name in kernels else ""
                st["resolved"][f"{name}:{arch}{suffix}"] = [r.to_json() for r in refs]

        self._update_state(store)
        return fresh

    def _query_apt(self, packages: Sequence[str], kernels: Sequence[str], arch: str
                   ) -> dict[str, list[PackageRef]]:
        names = list(packages) + list(kernels)
        specs = [f"{n}:{arch}" for n in names]
        policies = parse_policy(run_tool(["apt-cache", "policy", *specs],
                                         what="apt-cache policy"))
        records = parse_control_records(run_tool(["apt-cache", "show", *specs],
                                                 what="apt-cache show"))
        result: dict[str, list[PackageRef]] = {}
        for name in names:
            policy = policies.get(f"{name}:{arch}") or policies.get(name)
            if policy is None or not policy.versions:
                raise ImageError(
                    f"apt knows no downloadable version of {name}:{arch}. For a foreign "
                    f"architecture run `dpkg --add-architecture {arch} && apt-get update` "
                    f"(scripts/setup.sh does this); otherwise run `apt-get update`.")
            mine = {r["Version"]: r for r in records
                    if r.get("Package") == name and r.get("Architecture") in (arch, "all")
                    and "Version" in r}
            order = ordered_versions(policy)
            if name in kernels:
                result[name] = self._kernel_refs(name, arch, order, mine)
            else:
                result[name] = [PackageRef(name, v, arch, _size(mine.get(v))) for v in order]
        return result

    def _kernel_refs(self, meta: str, arch: str, order: list[str],
                     meta_records: dict[str, dict[str, str]]) -> list[PackageRef]:
        pinned: list[tuple[str, str | None]] = []
        for version in order:
            record = meta_records.get(version)
            if record is None or "Depends" not in record:
                continue
            dep = kernel_dependency(record["Depends"])
            if dep not in pinned:
                pinned.append(dep)
        if not pinned:
            raise ImageError(f"no version of {meta}:{arch} names a kernel package")
        real_names = sorted({n for n, _ in pinned})
        specs = [f"{n}:{arch}" for n in real_names]
        records = parse_control_records(run_tool(["apt-cache", "show", *specs],
                                                 what="apt-cache show"))
        sizes = {(r.get("Package"), r.get("Version")): _size(r) for r in records}
        refs: list[PackageRef] = []
        for name, version in pinned:
            versions = [version] if version else [
                r["Version"] for r in records if r.get("Package") == name and "Version" in r]
            for v in versions:
                ref = PackageRef(name, v, arch, sizes.get((name, v)))
                if ref not in refs:
                    refs.append(ref)
        return refs

    # ---- fetching --------------------------------------------------------

    def deb_path(self, ref: PackageRef) -> Path:
        return self.debs_dir / ref.deb_filename

    def failed(self) -> set[str]:
        """Package specs whose download failed under the current apt state."""
        state = self._load_state(apt_state_fingerprint())
        return set(state["failed"])

    def choose(self, what: str, candidates: Sequence[PackageRef],
               have: Callable[[PackageRef], bool] = lambda _r: False) -> PackageRef:
        """The first candidate that is usable, downloading if needed.

        A candidate is usable when *have* says its product is already cached
        (then its .deb is not needed), when its .deb is cached, or when it
        downloads.  Failed downloads are remembered and skipped until apt's
        state changes; if no candidate works, ImageError names every version
        tried.
        """
        failed = self.failed()
        errors: list[str] = []
        for ref in candidates:
            if ref.apt_spec in failed:
                errors.append(f"{ref.version}: failed earlier under the same apt indexes")
                continue
            if have(ref) or self.deb_path(ref).is_file():
                return ref
            try:
                self.fetch(ref)
                return ref
            except ImageError as exc:
                errors.append(f"{ref.version}: {exc}")
                self._remember_failure(ref)
        tried = "\n".join(f"  - {e}" for e in errors) or "  (apt lists no version)"
        raise ImageError(f"could not download {what}; versions tried:\n{tried}\n"
                         "An apt index may be stale: run `apt-get update` and retry.")

    def _remember_failure(self, ref: PackageRef) -> None:
        def add(state: dict) -> None:
            if ref.apt_spec not in state["failed"]:
                state["failed"].append(ref.apt_spec)
        self._update_state(add)

    def fetch(self, ref: PackageRef) -> Path:
        """The cached .deb of *ref*, downloading it (once, under a lock) if missing."""
        final = self.deb_path(ref)
        if final.is_file():
            return final
        with cache.locked(self.debs_dir / f"{ref.deb_filename}.lock"):
            if final.is_file():
                return final
            self.progress(f"downloading {ref.describe()}")
            cache.sweep_scratch(self.debs_dir)
            with cache.scratch_dir(self.debs_dir, ref.deb_filename) as tmp:
                got = apt_get_download(ref, tmp)
                os.chmod(got, 0o644)
                os.replace(got, final)
        return final


def _size(record: dict[str, str] | None) -> int | None:
    if record and record.get("Size", "").isdigit():
        return int(record["Size"])
    return None
