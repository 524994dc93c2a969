"""The guest's own tools (lspci, dmidecode, systemd-detect-virt, …) for the probe image.

A migration engineer trusts what *their* tools say inside the guest, so the
probe runs the real ones, taken from Debian packages of the guest's
architecture.  Which tools an architecture gets is the strategy's
``guest_tools`` (data); what a tool is made of, and which package provides
which shared library, is in ``images/data/guest-tools-<debian arch>.toml``.

Shared libraries are not listed anywhere: they are found the way ld.so finds
them, from the ELF files themselves (pyelftools): ``PT_INTERP`` names the
dynamic loader, ``DT_NEEDED`` the sonames, ``DT_RUNPATH``/``DT_RPATH`` the
private directories (systemd's ``libsystemd-shared-252.so``), then the
default library directories.  Only the soname → package table is data; a
soname missing from it is an ImageError naming the soname and who needs it.

Guest paths follow the package paths, merged into /usr (``bin/udevadm`` →
``/usr/bin/udevadm``), because the image owns /bin (busybox) and
/lib/modules.  The dynamic loader keeps its exact ``PT_INTERP`` path.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from guestcompat.errors import ImageError

#: Top-level package directories that go below /usr in the guest.
_MERGED = ("bin", "sbin", "lib")
_MAX_LINKS = 40


@dataclass(frozen=True)
class ToolDef:
    """One tool: its files as (package, path in the package), and tools it runs."""

    name: str
    files: tuple[tuple[str, str], ...]
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToolSet:
    """The tool data of one Debian architecture (a parsed guest-tools TOML)."""

    debian_arch: str
    library_dirs: tuple[str, ...]
    tools: Mapping[str, ToolDef]
    sonames: Mapping[str, str]
    digest: str

    def closure(self, names: Iterable[str]) -> tuple[str, ...]:
        """*names* plus the tools they require, sorted; ImageError for an unknown name."""
        out: set[str] = set()
        todo = list(names)
        while todo:
            name = todo.pop()
            if name in out:
                continue
            if name not in self.tools:
                raise ImageError(f"guest tool {name!r} is not defined for {self.debian_arch} "
                                 f"(known: {', '.join(sorted(self.tools))})")
            out.add(name)
            todo.extend(self.tools[name].requires)
        return tuple(sorted(out))

    def packages(self, names: Iterable[str]) -> tuple[str, ...]:
        """Every package the tools may draw from: their own and every library provider.

        All of them go into the image key, so the key changes whenever any
        package version that could end up in the image changes.
        """
        pkgs = {pkg for n in self.closure(names) for pkg, _ in self.tools[n].files}
        return tuple(sorted(pkgs | set(self.sonames.values())))


def load_toolset(debian_arch: str, text: str | None = None) -> ToolSet:
    """The tool data for *debian_arch* (or parsed from *text*); ImageError if absent or malformed."""
    where = f"images/data/guest-tools-{debian_arch}.toml"
    if text is None:
        res = resources.files("guestcompat.images") / "data" / f"guest-tools-{debian_arch}.toml"
        if not res.is_file():
            raise ImageError(f"no guest tool data for {debian_arch} ({where} is missing)")
        text = res.read_text()
    try:
        data = tomllib.loads(text)
        tools = {}
        for name, spec in data.get("tools", {}).items():
            files = []
            for item in spec["files"]:
                pkg, sep, path = str(item).partition(":")
                if not sep or not pkg or not path or path.startswith("/"):
                    raise ValueError(f"tools.{name}.files: {item!r} is not 'package:relative/path'")
                files.append((pkg, path))
            tools[name] = ToolDef(name, tuple(files), tuple(str(r) for r in spec.get("requires", ())))
        sonames = {str(k): str(v) for k, v in data.get("sonames", {}).items()}
        dirs = tuple(str(d).strip("/") for d in data["library_dirs"])
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ImageError(f"{where}: {exc}") from None
    return ToolSet(debian_arch, dirs, tools, sonames, hashlib.sha256(text.encode()).hexdigest())


# --------------------------------------------------------------------------
# ELF


@dataclass(frozen=True)
class ElfDeps:
    """What the dynamic loader needs to run one ELF file."""

    needed: tuple[str, ...]
    runpath: tuple[str, ...]
    interp: str | None


def elf_deps(path: Path) -> ElfDeps | None:
    """DT_NEEDED, DT_RUNPATH (else DT_RPATH) and PT_INTERP of *path*; None if not ELF."""
    with path.open("rb") as fh:
        if fh.read(4) != b"\x7fELF":
            return None
        fh.seek(0)
        try:
            elf = ELFFile(fh)
            interp = None
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_INTERP":
                    interp = seg.get_interp_name()
            needed: list[str] = []
            runpath: list[str] = []
            rpath: list[str] = []
            for sec in elf.iter_sections():
                if not isinstance(sec, DynamicSection):
                    continue
                for tag in sec.iter_tags():
                    if tag.entry.d_tag == "DT_NEEDED":
                        needed.append(tag.needed)
                    elif tag.entry.d_tag == "DT_RUNPATH":
                        runpath += [p for p in tag.runpath.split(":") if p]
                    elif tag.entry.d_tag == "DT_RPATH":
                        rpath += [p for p in tag.rpath.split(":") if p]
        except (ELFError, ValueError) as exc:
            raise ImageError(f"{path.name}: not a readable ELF file: {exc}") from None
    return ElfDeps(tuple(needed), tuple(runpath or rpath), interp)


# --------------------------------------------------------------------------
# collecting the files


def guest_path(rel: str) -> str:
    """Package path → guest path, merged into /usr (the image owns /bin and /lib/modules)."""
    rel = posixpath.normpath(rel.lstrip("/"))
    top = rel.split("/", 1)[0]
    return "/" + ("usr/" + rel if top in _MERGED else rel)


def resolve_in(root: Path, rel: str) -> str | None:
    """*rel* with symlinks followed inside the unpacked tree *root* (absolute
    targets mean *root*); None if it does not exist there."""
    rel = posixpath.normpath(rel.lstrip("/"))
    for _ in range(_MAX_LINKS):
        full = root / rel
        if full.is_symlink():
            target = os.readlink(full)
            base = "" if target.startswith("/") else posixpath.dirname(rel)
            rel = posixpath.normpath(posixpath.join(base, target.lstrip("/")))
            continue
        return rel if full.is_file() else None
    raise ImageError(f"too many symbolic links resolving {rel} in {root}")


@dataclass(frozen=True)
class ToolFile:
    guest: str
    source: Path
    mode: int


@dataclass(frozen=True)
class ToolTree:
    """The files to put into the image and the packages they came from."""

    files: tuple[ToolFile, ...]
    packages: tuple[str, ...]

    @property
    def size(self) -> int:
        return sum(f.source.stat().st_size for f in self.files)


def collect(toolset: ToolSet, names: Iterable[str], unpacked: Callable[[str], Path]) -> ToolTree:
    """Every file the tools *names* need, with their shared libraries.

    *unpacked* returns the unpacked tree of a package (downloading and
    unpacking it on first use), so only packages that really provide a file
    are unpacked.
    """
    files: dict[str, ToolFile] = {}
    used: set[str] = set()
    provided: set[str] = set()          # sonames already satisfied
    queue: list[tuple[str, str, str]] = []  # (package, rel path, guest path) of ELF files to scan

    def add(pkg: str, rel: str, guest: str, what: str) -> None:
        root = unpacked(pkg)
        real = resolve_in(root, rel)
        if real is None:
            raise ImageError(f"{what}: package {pkg} has no file {rel}")
        used.add(pkg)
        source = root / real
        old = files.get(guest)
        if old is not None:
            if old.source.read_bytes() != source.read_bytes():
                raise ImageError(f"{what}: {guest} would come from both {old.source} and {source}")
            return
        files[guest] = ToolFile(guest, source, 0o755 if os.access(source, os.X_OK) else 0o644)
        queue.append((pkg, real, guest))

    for name in toolset.closure(names):
        for pkg, rel in toolset.tools[name].files:
            add(pkg, rel, guest_path(rel), f"guest tool {name}")

    while queue:
        pkg, rel, guest = queue.pop(0)
        deps = elf_deps(unpacked(pkg) / rel)
        if deps is None:
            continue
        if deps.interp and deps.interp not in files:
            interp_name = posixpath.basename(deps.interp)
            provider = _provider(toolset, interp_name, guest)
            add(provider, deps.interp, posixpath.normpath(deps.interp), f"interpreter of {guest}")
            provided.add(interp_name)
        for soname in deps.needed:
            if soname in provided:
                continue
            provider = _provider(toolset, soname, guest)
            root = unpacked(provider)
            dirs = [_expand_origin(p, rel) for p in deps.runpath] + list(toolset.library_dirs)
            for d in dirs:
                if resolve_in(root, posixpath.join(d, soname)) is not None:
                    add(provider, posixpath.join(d, soname), guest_path(posixpath.join(d, soname)),
                        f"{soname} (needed by {guest})")
                    provided.add(soname)
                    break
            else:
                raise ImageError(f"{soname} (needed by {guest}) is not in package {provider} under "
                                 f"{', '.join(dirs)}; fix [sonames] in "
                                 f"images/data/guest-tools-{toolset.debian_arch}.toml")
    return ToolTree(tuple(files[g] for g in sorted(files)), tuple(sorted(used)))


def _provider(toolset: ToolSet, soname: str, needer: str) -> str:
    try:
        return toolset.sonames[soname]
    except KeyError:
        raise ImageError(
            f"shared library {soname} (needed by {needer}) has no package in [sonames] of "
            f"images/data/guest-tools-{toolset.debian_arch}.toml: add the Debian package that "
            f"ships it") from None


def _expand_origin(runpath: str, rel: str) -> str:
    origin = posixpath.dirname(rel)
    return runpath.replace("${ORIGIN}", "/" + origin).replace("$ORIGIN", "/" + origin).lstrip("/")
