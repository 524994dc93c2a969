"""The probe payload that images/ puts into the guest initramfs.

``probe_payload(arch)`` returns the files under ``/probe`` for one
architecture: the shell probe and its awk program always, plus the native
helpers the architecture strategy names in ``arch.probe_helpers`` (``"x86"``:
gcprobe for CPUID and the VMware backdoor).  Which helpers exist is decided by
the strategy object, never by comparing architecture names here.

Helpers are compiled on the host with gcc into static binaries (the initramfs
has no libc) and cached under ``cache_root()/probe/<key>/``, the key hashing
the source, the compiler command and ``gcc --version``, so a toolchain update
rebuilds and a warm cache costs no compiler run.  ``content_hash`` covers every
file, path and mode: images/ folds it into the image key.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Mapping, Protocol

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_E_MACHINE

from guestcompat import paths
from guestcompat.errors import ProbeError

PROBE_DIR = "/probe"
ENTRY = f"{PROBE_DIR}/probe.sh"

# ELF e_machine values (ELF gABI) the helpers must have.
_EM_X86_64 = 62


@dataclass(frozen=True)
class _Helper:
    source: str          # file in detection/probe/
    guest_path: str
    elf_machine: int
    cflags: tuple[str, ...]


_HELPERS: dict[str, _Helper] = {
    "x86": _Helper("gcprobe.c", f"{PROBE_DIR}/gcprobe", _EM_X86_64,
                   ("-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror")),
}

_SCRIPTS = {"probe.sh": 0o755, "probe.awk": 0o644}


class ArchLike(Protocol):
    """What the payload needs from an ArchStrategy."""

    name: str
    probe_helpers: tuple[str, ...]


@dataclass(frozen=True)
class ProbePayload:
    """Files for the guest (path → (content, mode)), the entry script and a content hash."""

    files: Mapping[str, tuple[bytes, int]]
    entry: str = ENTRY
    content_hash: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        h = hashlib.sha256()
        for path in sorted(self.files):
            content, mode = self.files[path]
            h.update(f"{path}\0{mode:o}\0{len(content)}\0".encode())
            h.update(content)
        h.update(f"entry\0{self.entry}".encode())
        object.__setattr__(self, "content_hash", h.hexdigest())


def _probe_source(name: str) -> bytes:
    return (resources.files("guestcompat.detection") / "probe" / name).read_bytes()


def _compiler() -> str:
    return os.environ.get("GUESTCOMPAT_CC", "gcc")


def _compiler_version(cc: str) -> str:
    try:
        res = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ProbeError(f"cannot run the C compiler {cc!r} to build the probe helpers: {exc}") from None
    if res.returncode != 0:
        raise ProbeError(f"{cc} --version failed: {res.stderr.strip()}")
    return res.stdout


def _elf_machine(blob: bytes) -> int | None:
    """The ELF header's ``e_machine`` (gABI number), read by pyelftools; None: not an ELF file."""
    try:
        machine = ELFFile(io.BytesIO(blob)).header["e_machine"]
    except ELFError:
        return None
    return ENUM_E_MACHINE.get(machine) if isinstance(machine, str) else machine


def compile_helper(name: str) -> bytes:
    """Build (or fetch from the cache) the static binary of helper ``name``."""
    try:
        helper = _HELPERS[name]
    except KeyError:
        raise ProbeError(f"unknown probe helper {name!r} (known: {', '.join(sorted(_HELPERS))})") from None
    source = _probe_source(helper.source)
    cc = _compiler()
    argv_tail = list(helper.cflags)
    key = hashlib.sha256(
        source + b"\0" + " ".join([cc, *argv_tail]).encode() + b"\0" + _compiler_version(cc).encode()
    ).hexdigest()[:32]
    out_dir = paths.cache_root() / "probe" / key
    binary = out_dir / Path(helper.guest_path).name
    if binary.is_file():
        return binary.read_bytes()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        src = Path(tmp) / helper.source
        src.write_bytes(source)
        tmp_bin = Path(tmp) / "out"
        res = subprocess.run([cc, *argv_tail, "-o", str(tmp_bin), str(src)],
                             capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise ProbeError(f"compiling probe helper {helper.source} failed:\n{res.stderr.strip()}")
        blob = tmp_bin.read_bytes()
        machine = _elf_machine(blob)
        if machine != helper.elf_machine:
            raise ProbeError(
                f"probe helper {helper.source} was compiled for ELF machine {machine}, the guest needs "
                f"{helper.elf_machine}; set GUESTCOMPAT_CC to a compiler for that target")
        tmp_bin.chmod(0o755)
        os.replace(tmp_bin, binary)       # atomic: concurrent builds agree on the result
    return binary.read_bytes()


def probe_payload(arch: ArchLike) -> ProbePayload:
    """The /probe files for ``arch`` (duck-typed: ``.name``, ``.probe_helpers``)."""
    files: dict[str, tuple[bytes, int]] = {}
    for name, mode in _SCRIPTS.items():
        files[f"{PROBE_DIR}/{name}"] = (_probe_source(name), mode)
    for helper in getattr(arch, "probe_helpers", ()):
        binary = compile_helper(helper)           # raises ProbeError for unknown names
        files[_HELPERS[helper].guest_path] = (binary, 0o755)
    return ProbePayload(files=files, entry=ENTRY)


def write_payload(payload: ProbePayload, root: Path) -> None:
    """Materialise the payload under ``root`` (a staging tree); used by tests and tools."""
    for path, (content, mode) in payload.files.items():
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content)
        dest.chmod(mode)


__all__ = ["ProbePayload", "probe_payload", "compile_helper", "write_payload", "ENTRY"]
