"""Parsers for ``apt-cache`` output: the facts package resolution is built on.

Kept apart from the code that runs apt so they can be tested on captured
text, without apt or a network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from guestcompat.errors import ImageError


@dataclass(frozen=True)
class Policy:
    """What ``apt-cache policy`` says about one package."""

    candidate: str | None
    versions: tuple[str, ...]  # downloadable versions, in apt's table order


_POLICY_VERSION = re.compile(r"^ (?:\*\*\*| {3}) (\S+) (-?\d+)$")
_POLICY_SOURCE = re.compile(r"^ {8}(-?\d+) (\S.*)$")


def parse_policy(text: str) -> dict[str, Policy]:
    """Parse ``apt-cache policy A B ...`` into {header name: Policy}.

    The header is ``NAME:`` for the native arch and ``NAME:ARCH:`` for a
    foreign one.  A version whose only source is ``/var/lib/dpkg/status``
    (installed, but in no index) cannot be downloaded and is left out.
    """
    result: dict[str, Policy] = {}
    name: str | None = None
    candidate: str | None = None
    versions: list[str] = []
    current: str | None = None
    current_sources: list[str] = []

    def close_version() -> None:
        nonlocal current, current_sources
        if current is not None and any(s != "/var/lib/dpkg/status" for s in current_sources):
            versions.append(current)
        current, current_sources = None, []

    def close_package() -> None:
        close_version()
        if name is not None:
            result[name] = Policy(candidate, tuple(versions))

    for line in text.splitlines():
        if line and not line.startswith(" "):
            close_package()
            name, candidate, versions = line.rstrip(":"), None, []
            continue
        stripped = line.strip()
        if stripped.startswith("Candidate:"):
            value = stripped.split(":", 1)[1].strip()
            candidate = None if value == "(none)" else value
        elif m := _POLICY_VERSION.match(line):
            close_version()
            current = m.group(1)
        elif (m := _POLICY_SOURCE.match(line)) and current is not None:
            current_sources.append(m.group(2))
    close_package()
    return result


def parse_control_records(text: str) -> list[dict[str, str]]:
    """Split ``apt-cache show`` output into field dicts (continuation lines joined)."""
    records: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    key: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                records.append(fields)
            fields, key = {}, None
        elif line[0] in " \t" and key is not None:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    if fields:
        records.append(fields)
    return records


_DEP = re.compile(r"^([a-z0-9][a-z0-9+.\-]*)(?::[a-z0-9\-]+)?\s*(?:\(\s*(<<|<=|=|>=|>>)\s*([^)\s]+)\s*\))?")


def kernel_dependency(depends: str) -> tuple[str, str | None]:
    """The real kernel package a kernel metapackage's ``Depends`` points at.

    Debian's ``linux-image-<flavour>`` metapackages depend on exactly one
    ``linux-image-<abi>-<flavour> (= VERSION)``; the first ``linux-image-*``
    dependency is it.  Returns (name, pinned version or None).
    """
    for item in depends.split(","):
        first = item.split("|")[0].strip()
        m = _DEP.match(first)
        if m and m.group(1).startswith("linux-image-"):
            version = m.group(3) if m.group(2) == "=" else None
            return m.group(1), version
    raise ImageError(f"kernel metapackage has no linux-image-* dependency (Depends: {depends})")


def ordered_versions(policy: Policy) -> list[str]:
    """apt's candidate first, then the other versions apt knows (newest first)."""
    order = [policy.candidate] if policy.candidate in policy.versions else []
    order += [v for v in policy.versions if v not in order]
    return order
