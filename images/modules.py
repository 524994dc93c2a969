"""Which kernel modules the guest must load, computed the way modprobe does.

The profile tells us the *devices* (as modalias strings, the same strings
the guest kernel emits in uevents); the kernel package tells us which module
claims which alias and what each module needs.  We never keep a hand-made
list of drivers: a new profile device or a new kernel ABI just works.

Debian's kernel .deb does not ship ``modules.alias``/``modules.dep`` (they
are generated at install time), so we run ``depmod`` on the unpacked tree:
kmod's depmod when installed (~1 s), else busybox's (~6 s).  Both read only
the modules' ``.modinfo`` data, so they work for a foreign-arch kernel too.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import NamedTuple

from guestcompat.errors import ImageError

from .tools import run_tool

#: The depmod outputs (plus the package's builtin lists) that resolution needs.
INDEX_FILES = ("modules.alias", "modules.dep", "modules.builtin", "modules.builtin.modinfo")

#: Module file suffixes: plain, and the compressed forms kernels may ship.
MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst")


def module_name(path: str) -> str:
    """Kernel module name of a module path: basename, no suffix, ``-`` → ``_``."""
    base = path.rsplit("/", 1)[-1]
    for suffix in MODULE_SUFFIXES[::-1]:  # longest first
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


def _literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard: a cheap pre-filter."""
    for i, ch in enumerate(pattern):
        if ch in "*?[\\":
            return pattern[:i]
    return pattern


class Resolution(NamedTuple):
    """Modules to load (paths relative to lib/modules/<release>, dependencies
    first) and the modaliases no loadable or built-in driver claims."""

    load_order: tuple[str, ...]
    unmatched: tuple[str, ...]


@dataclass(frozen=True)
class ModuleIndex:
    """The parsed depmod output of one kernel."""

    aliases: tuple[tuple[str, str, str], ...]  # (literal prefix, pattern, module name)
    deps: Mapping[str, tuple[str, ...]]  # module path -> every module path it needs
    paths: Mapping[str, str]  # module name -> module path
    builtin: frozenset[str]  # names of modules compiled into the kernel
    builtin_aliases: tuple[tuple[str, str, str], ...]  # as aliases, for built-in drivers

    @classmethod
    def load(cls, directory: Path) -> ModuleIndex:
        """Read the index files from *directory* (a lib/modules/<release> dir or a copy)."""
        try:
            alias_text = (directory / "modules.alias").read_text()
            dep_text = (directory / "modules.dep").read_text()
        except OSError as exc:
            raise ImageError(f"module index incomplete in {directory}: {exc}") from exc
        builtin_file = directory / "modules.builtin"
        modinfo_file = directory / "modules.builtin.modinfo"
        builtin_text = builtin_file.read_text() if builtin_file.exists() else ""
        modinfo = modinfo_file.read_bytes() if modinfo_file.exists() else b""
        return cls.parse(alias_text, dep_text, builtin_text, modinfo)

    @classmethod
    def parse(cls, alias_text: str, dep_text: str, builtin_text: str = "",
              builtin_modinfo: bytes = b"") -> ModuleIndex:
        aliases = []
        for line in alias_text.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "alias":
                aliases.append((_literal_prefix(parts[1]), parts[1], module_name(parts[2])))
        deps: dict[str, tuple[str, ...]] = {}
        for line in dep_text.splitlines():
            if ":" not in line:
                continue
            mod, _, rest = line.partition(":")
            deps[mod.strip()] = tuple(rest.split())
        paths = {module_name(p): p for p in deps}
        builtin = frozenset(module_name(p) for p in builtin_text.split())
        builtin_aliases = []
        for entry in builtin_modinfo.split(b"\0"):
            key, sep, value = entry.decode("utf-8", "replace").partition("=")
            name, dot, field = key.partition(".")
            if sep and dot and field == "alias":
                builtin_aliases.append((_literal_prefix(value), value, module_name(name)))
        return cls(tuple(aliases), deps, paths, builtin, tuple(builtin_aliases))

    @staticmethod
    def _matches(table: Iterable[tuple[str, str, str]], modalias: str) -> list[str]:
        return sorted({name for prefix, pattern, name in table
                       if modalias.startswith(prefix) and fnmatchcase(modalias, pattern)})

    def resolve(self, modaliases: Sequence[str]) -> Resolution:
        """Load order for *modaliases*, like ``modprobe`` would load them.

        Every loadable module whose alias pattern matches is loaded (modprobe
        loads all matches too); a match that is built in needs nothing.  A
        modalias nothing claims is returned in ``unmatched`` — the caller
        decides whether that matters (it may be a device without a driver in
        this kernel, which is itself a compatibility finding).
        """
        roots: list[str] = []
        unmatched: list[str] = []
        for modalias in modaliases:
            names = self._matches(self.aliases, modalias)
            loadable = [n for n in names if n not in self.builtin]
            if not loadable and not (set(names) & self.builtin) and not self._matches(
                    self.builtin_aliases, modalias):
                unmatched.append(modalias)
            for name in loadable:
                if name not in self.paths:
                    raise ImageError(f"module {name} (alias of {modalias}) is not in modules.dep")
                roots.append(self.paths[name])
        return Resolution(self.closure(roots), tuple(dict.fromkeys(unmatched)))

    def closure(self, roots: Iterable[str]) -> tuple[str, ...]:
        """*roots* and everything they need, each dependency before its users.

        Dependencies are visited in sorted order so the result does not
        depend on which depmod wrote modules.dep (kmod and busybox order
        the lists differently).
        """
        order: dict[str, None] = {}
        active: set[str] = set()

        def visit(path: str) -> None:
            if path in order or path in active:  # done, or a cycle depmod already warned about
                return
            active.add(path)
            for dep in sorted(self.deps.get(path, ())):
                visit(dep)
            active.discard(path)
            order[path] = None

        for root in roots:
            visit(root)
        return tuple(order)


#: Bump when what :func:`resolve_cached` stores changes.
RESOLVED_FORMAT = 1


def resolve_cached(directory: Path, modaliases: Sequence[str]) -> Resolution:
    """``ModuleIndex.load(directory).resolve(modaliases)``, remembered beside the index.

    Parsing modules.alias (~30,000 patterns) costs ~0.2 s of every run while the answer for one
    set of modaliases never changes: the index directory belongs to one kernel package version and
    is written once (images.kernels). The answer is kept in ``<directory>/resolved/<hash>.json``,
    keyed by the modaliases in order and the index files' sizes and mtimes (a rebuilt index is a
    miss); an unreadable or foreign entry is only a miss.
    """
    import hashlib
    import json

    from . import cache

    stats = []
    for name in INDEX_FILES:
        try:
            st = (directory / name).stat()
            stats.append([name, st.st_size, st.st_mtime_ns])
        except OSError:
            stats.append([name, None, None])
    material = json.dumps({"format": RESOLVED_FORMAT, "index": stats, "modaliases": list(modaliases)},
                          sort_keys=True)
    entry = directory / "resolved" / f"{hashlib.sha256(material.encode()).hexdigest()[:32]}.json"
    stored = cache.read_json(entry)
    if isinstance(stored, dict) and stored.get("material") == material:
        try:
            return Resolution(tuple(str(m) for m in stored["load_order"]), tuple(str(m) for m in stored["unmatched"]))
        except (KeyError, TypeError):
            pass
    resolution = ModuleIndex.load(directory).resolve(modaliases)
    try:
        cache.write_json_atomic(entry, {"material": material, "load_order": list(resolution.load_order),
                                        "unmatched": list(resolution.unmatched)})
    except OSError:
        pass  # a read-only cache only costs the next run the parse
    return resolution


def depmod(root: Path, release: str) -> Path:
    """Generate modules.alias/modules.dep in ``root/lib/modules/<release>``; return that dir."""
    moddir = root / "lib" / "modules" / release
    if not moddir.is_dir():
        raise ImageError(f"kernel package has no lib/modules/{release}")
    kmod = shutil.which("depmod") or next(
        (p for p in ("/usr/sbin/depmod", "/sbin/depmod") if Path(p).exists()), None)
    if kmod:
        argv = [kmod, "-b", str(root), release]
    elif shutil.which("busybox"):
        argv = ["busybox", "depmod", "-b", str(root), release]
    else:
        raise ImageError("neither kmod's depmod nor busybox is installed (run scripts/setup.sh)")
    run_tool(argv, what="depmod")
    missing = [f for f in ("modules.alias", "modules.dep") if not (moddir / f).exists()]
    if missing:
        raise ImageError(f"depmod did not write {', '.join(missing)} in {moddir}")
    return moddir


def save_index(moddir: Path, dest: Path) -> None:
    """Copy the index files so resolution later needs no unpacked kernel."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in INDEX_FILES:
        if (moddir / name).exists():
            shutil.copyfile(moddir / name, dest / name)


def kernel_release(root: Path) -> str:
    """The ``uname -r`` of the unpacked kernel package (its lib/modules/<release> dir)."""
    base = root / "lib" / "modules"
    releases = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    if len(releases) != 1:
        raise ImageError(f"expected one lib/modules/<release> in the kernel package, found {releases}")
    return releases[0]
