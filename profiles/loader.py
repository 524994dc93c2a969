"""Find, read and resolve profiles (TOML with ``extends`` inheritance).

A profile names its parent with ``extends = "vmware/base"``. Resolution is a
deep merge, parent first: tables merge key by key, plain arrays are replaced,
and arrays of named tables (``pci.bridges``, ``pci.devices``, ``disks``) merge
entry by entry on ``name`` so a child states only its differences; an entry
``{ name = "x", remove = true }`` drops the parent's entry ``x``.

Every error names the file a bad value came from and its key path (named
entries by name: ``pci.devices[ethernet0].address``), never a traceback.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from guestcompat.errors import ProfileError
from guestcompat.profiles.model import Profile

NAMED_LISTS = {("pci", "bridges"), ("pci", "devices"), ("vio", "devices"), ("disks",)}

KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class ProfileSource:
    """Where a profile's TOML lives."""

    name: str
    path: Path


#: Directories searched before the bundled profiles (``os.pathsep`` separated).
PATH_ENV = "GUESTCOMPAT_PROFILE_PATH"


def bundled_dir() -> Path:
    return Path(str(resources.files("guestcompat.profiles")))


def search_dirs() -> list[Path]:
    """User directories first (``GUESTCOMPAT_PROFILE_PATH``, colon separated), then the bundled ones."""
    extra = [Path(p) for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]
    return [*extra, bundled_dir()]


#: Longest profile name (a file name component is at most 255 bytes; names are paths below a search dir).
MAX_NAME = 200


def _is_file(path: Path) -> bool:
    """``path.is_file()``, with a name the OS refuses (ENAMETOOLONG, NUL) as "no such file"."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def find(name: str) -> ProfileSource:
    """Locate profile ``name`` (``vmware/esxi-6.5``) or a path to a ``.toml`` file."""
    if name.endswith(".toml"):
        path = Path(name)
        if not _is_file(path):
            raise ProfileError(f"profile file {name[:200]} does not exist")
        return ProfileSource(path.stem, path)
    if not is_profile_name(name):
        raise ProfileError(f"{name[:200]!r} is not a profile name (like vmware/esxi-6.5)")
    for directory in search_dirs():
        path = directory / f"{name}.toml"
        if _is_file(path):
            return ProfileSource(name, path)
    raise ProfileError(f"no profile named {name!r} (searched {', '.join(str(d) for d in search_dirs())}); "
                       f"`guestcompat profiles` lists them")


def is_profile_name(name: str) -> bool:
    """A name below a search directory: relative, no ``..``, no empty part, printable, not too long."""
    return (bool(name) and len(name) <= MAX_NAME and not name.startswith("/") and name.isprintable()
            and all(part not in ("", ".", "..") for part in name.split("/")))


def list_profiles() -> list[ProfileSource]:
    """Every profile in the search path (user directories shadow bundled ones)."""
    found: dict[str, ProfileSource] = {}
    for directory in reversed(search_dirs()):
        for path in sorted(directory.rglob("*.toml")):
            rel = path.relative_to(directory)
            if rel.parts[0] == "catalog":
                continue
            name = str(rel.with_suffix(""))
            found[name] = ProfileSource(name, path)
    return [found[k] for k in sorted(found)]


def _read_toml(source: ProfileSource) -> dict[str, Any]:
    try:
        with source.path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source.path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{source.path}: not UTF-8 (TOML files are UTF-8): byte {exc.object[exc.start]:#04x} "
                           f"at offset {exc.start}") from None
    except RecursionError:
        raise ProfileError(f"{source.path}: invalid TOML: arrays or tables nested too deeply") from None
    except OSError as exc:
        raise ProfileError(f"{source.path}: cannot read: {exc.strerror}") from None


def _merge(base: Any, over: Any, path: KeyPath, origins: dict[KeyPath, Path], file: Path) -> Any:
    """Deep-merge ``over`` onto ``base``, recording which file set each key path."""
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            if not isinstance(key, str):
                continue
            sub = (*path, key)
            merged[key] = _merge(base.get(key), value, sub, origins, file) if key in base else _record(value, sub, origins, file)
        return merged
    if path in NAMED_LISTS and isinstance(base, list) and isinstance(over, list):
        return _merge_named(base, over, path, origins, file)
    return _record(over, path, origins, file)


def _record(value: Any, path: KeyPath, origins: dict[KeyPath, Path], file: Path) -> Any:
    origins[path] = file
    if isinstance(value, dict):
        for key, sub in value.items():
            _record(sub, (*path, str(key)), origins, file)
    elif path in NAMED_LISTS and isinstance(value, list):
        for index, entry in enumerate(value):
            _record(entry, (*path, _entry_key(entry, index)), origins, file)
    return value


def _entry_key(entry: Any, index: int) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
        return entry["name"]
    return str(index)


def _merge_named(base: list, over: list, path: KeyPath, origins: dict[KeyPath, Path], file: Path) -> list:
    result: list = list(base)
    for index, entry in enumerate(over):
        key = _entry_key(entry, index)
        if not isinstance(entry, dict) or "name" not in entry:
            # recorded under its index in the *merged* list, the one pydantic's error location names
            result.append(_record(entry, (*path, _entry_key(entry, len(result))), origins, file))
            continue
        position = next((i for i, old in enumerate(result)
                         if isinstance(old, dict) and old.get("name") == entry["name"]), None)
        if entry.get("remove") is True:
            if position is None:
                raise ProfileError(f"{file}: {_format_path((*path, key))}: remove = true, "
                                   f"but no inherited entry is named {key!r}")
            del result[position]
            continue
        if position is None:
            result.append(_record(entry, (*path, _entry_key(entry, len(result))), origins, file))
        else:
            result[position] = _merge(result[position], entry, (*path, key), origins, file)
    return result


def _format_path(path: KeyPath) -> str:
    out = ""
    for i, part in enumerate(path):
        if i and path[:i] in NAMED_LISTS:
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


@dataclass
class _Resolved:
    data: dict[str, Any]
    origins: dict[KeyPath, Path]
    lineage: list[str]


def _resolve(source: ProfileSource, stack: list[str]) -> _Resolved:
    return _resolve_data(_read_toml(source), source, stack)


def _resolve_data(raw: dict[str, Any], source: ProfileSource, stack: list[str]) -> _Resolved:
    if source.name in stack:
        chain = " -> ".join([*stack[stack.index(source.name):], source.name])
        raise ProfileError(f"{source.path}: extends: inheritance cycle {chain}")
    raw = dict(raw)
    parent_name = raw.pop("extends", None)
    if parent_name is None:
        base = _Resolved({}, {}, [])
    else:
        if not isinstance(parent_name, str):
            raise ProfileError(f"{source.path}: extends: expected a profile name (string), got {type(parent_name).__name__}")
        if not is_profile_name(parent_name) or parent_name.endswith(".toml"):
            # a file path would reach any file on the host (issue 13); a parent is found by name, in the search path
            raise ProfileError(f"{source.path}: extends: {parent_name[:200]!r} is not a profile name "
                               f"(like vmware/base); a parent is found by name in the profile search path")
        try:
            parent = find(parent_name)
        except ProfileError as exc:
            raise ProfileError(f"{source.path}: extends: {exc}") from None
        base = _resolve(parent, [*stack, source.name])
        base.data.pop("abstract", None)  # abstractness is not inherited
    data = _merge(base.data, raw, (), base.origins, source.path)
    return _Resolved(data, base.origins, [*base.lineage, source.name])


def _loc_to_path(loc: tuple, data: dict[str, Any]) -> KeyPath:
    """Turn pydantic's location (with list indexes) into a named key path."""
    path: list[str] = []
    node: Any = data
    for part in loc:
        if isinstance(part, int) and isinstance(node, list):
            entry = node[part] if part < len(node) else None
            path.append(_entry_key(entry, part))
            node = entry
        else:
            path.append(str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return tuple(path)


def _origin(path: KeyPath, origins: dict[KeyPath, Path], fallback: Path) -> Path:
    for length in range(len(path), 0, -1):
        if path[:length] in origins:
            return origins[path[:length]]
    return fallback


def load(name: str) -> Profile:
    """Load and resolve profile ``name`` into an immutable :class:`Profile`."""
    source = find(name)
    return _validated(_resolve(source, []), source)


def load_mapping(data: Mapping[str, Any], name: str, *, origin: str | Path | None = None) -> Profile:
    """Resolve and validate profile data that is not a file in the search path (an importer's
    result, a replay's throwaway profile) as if it were ``<name>.toml``: its ``extends`` is found in
    the search path like a file's, and errors name ``origin`` (default ``<name>``) and the key path.
    Nothing is written and the process environment is not touched."""
    source = ProfileSource(name, Path(origin) if origin is not None else Path(f"<{name}>"))
    return _validated(_resolve_data(dict(data), source, []), source)


def _validated(resolved: _Resolved, source: ProfileSource) -> Profile:
    data = dict(resolved.data)
    data["name"] = source.name
    data["lineage"] = tuple(resolved.lineage)
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(_format_validation(exc, resolved, source)) from None
    except RecursionError:
        raise ProfileError(f"{source.path}: values nested too deeply") from None


def _format_validation(exc: ValidationError, resolved: _Resolved, source: ProfileSource) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if p not in ("function-after",) and not str(p).startswith("function-"))
        path = _loc_to_path(loc, resolved.data)
        file = _origin(path, resolved.origins, source.path)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (not part of the profile format)"
        where = _format_path(path) if path else "(top level)"
        lines.append(f"{file}: {where}: {message}")
    header = f"profile {source.name} is invalid:" if len(lines) > 1 else ""
    return "\n".join([header, *lines]).strip()
