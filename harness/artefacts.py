"""Build a compiled machine's artefacts and put their paths into its argv.

An ACPI table artefact (``acpi-asl``) is compiled with ACPICA's ``iasl``
into ``cache_root()/artefacts/<sha256 of the source>.aml``: the same source
always gives the same file, so repeated runs reuse it at the cost of one
``stat``. Builds write a temporary name and rename it into place, so
parallel runs never read a half-written table.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from guestcompat.emulation.artefact import PLACEHOLDER_PREFIX, Artefact
from guestcompat.emulation.qemuopts import escape
from guestcompat.errors import RunError
from guestcompat.paths import cache_root

IASL = "iasl"
IASL_TIMEOUT = 60.0
ERROR_LINES = 12


def artefact_dir() -> Path:
    return cache_root() / "artefacts"


def build(artefact: Artefact, *, iasl: str = IASL) -> Path:
    """The built file of ``artefact`` (from the cache when it was built before)."""
    if artefact.kind == "json":
        return _write_verbatim(artefact, "json")
    target = artefact_dir() / f"{artefact.digest}.aml"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="iasl-", dir=target.parent) as tmp:
        source = Path(tmp) / "table.asl"
        source.write_text(artefact.source)
        try:
            proc = subprocess.run([iasl, "-p", str(Path(tmp) / "table"), str(source)], capture_output=True,
                                  text=True, timeout=IASL_TIMEOUT, check=False)
        except FileNotFoundError:
            raise RunError(f"cannot build ACPI table {artefact.name}: {iasl!r} (ACPICA's ASL compiler, Debian "
                           f"package acpica-tools) is not installed; run `make setup`") from None
        except subprocess.TimeoutExpired:
            raise RunError(f"cannot build ACPI table {artefact.name}: {iasl} took longer than "
                           f"{IASL_TIMEOUT:.0f} s") from None
        built = Path(tmp) / "table.aml"
        if proc.returncode != 0 or not built.exists():
            output = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
            detail = "\n".join(output[-ERROR_LINES:]) or "no output"
            raise RunError(f"cannot build ACPI table {artefact.name}: {iasl} exited with code "
                           f"{proc.returncode}:\n{detail}")
        os.replace(built, target)
    return target


def _write_verbatim(artefact: Artefact, suffix: str) -> Path:
    """A source QEMU reads as it is: written once under its digest (temporary name, then rename)."""
    target = artefact_dir() / f"{artefact.digest}.{suffix}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=target.parent, prefix=".tmp-", delete=False) as tmp:
        tmp.write(artefact.source)
    os.replace(tmp.name, target)
    return target


def build_all(artefacts: Iterable[Artefact], *, iasl: str = IASL) -> dict[str, Path]:
    """Placeholder → built file, for every artefact."""
    return {a.placeholder: build(a, iasl=iasl) for a in artefacts}


def substitute(argv: Iterable[str], files: Mapping[str, Path]) -> list[str]:
    """``argv`` with each placeholder replaced by its file's path, escaped for QEMU's option parser.

    A placeholder without a file is a bug in the compiler, not something to boot with.
    """
    out = []
    for arg in argv:
        for placeholder, path in files.items():
            arg = arg.replace(placeholder, escape(str(path)))
        out.append(arg)
    left = [a for a in out if PLACEHOLDER_PREFIX in a]
    if left:
        raise RunError(f"the command line refers to an artefact nobody built: {left[0]}", argv=out)
    return out
