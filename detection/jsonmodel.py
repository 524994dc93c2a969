"""Frozen dataclass trees ⟷ plain JSON values, checked field by field.

Fingerprints become baselines that people read in diffs and that later
versions load again, so the mapping has to be exact in both directions and a
wrong type must say *where* it is (``pci[3].vendor: expected ...``) instead of
failing somewhere downstream.  The type hints of the dataclasses are the
schema; field metadata only chooses a human-friendly spelling:

* ``hex=N``: integers are written as ``"0x%0Nx"`` strings (PCI ids, CPUID
  registers), which is how people compare them;
* ``key_hex=N``: same for the integer keys of a mapping (CPUID leaves).

Supported hints: ``int``, ``str``, ``bool``, ``X | None``, ``tuple[X, ...]``,
``Mapping[str|int, X]`` and nested dataclasses.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import types
import typing
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from guestcompat.errors import ProbeError


def hexfield(width: int, **kwargs: Any) -> Any:
    """A dataclass field whose integers are spelled ``0x...`` in JSON."""
    return dataclasses.field(metadata={"hex": width}, **kwargs)


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def to_plain(obj: Any, meta: Mapping[str, Any] | None = None) -> Any:
    """A dataclass tree as JSON-ready dicts/lists/strings/ints."""
    meta = meta or {}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            out[f.name] = to_plain(getattr(obj, f.name), f.metadata)
        return out
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode("ascii")
    if isinstance(obj, int):
        width = meta.get("hex")
        return f"0x{obj:0{width}x}" if width is not None else obj
    if isinstance(obj, (tuple, list)):
        return [to_plain(v, meta) for v in obj]
    if isinstance(obj, Mapping):
        kw = meta.get("key_hex")
        inner = {k: v for k, v in meta.items() if k != "key_hex"}
        out = {}
        for k, v in obj.items():
            if isinstance(k, int) and not isinstance(k, bool):
                key = f"0x{k:0{kw}x}" if kw is not None else str(k)
            else:
                key = str(k)
            out[key] = to_plain(v, inner)
        return out
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def _fail(path: str, expected: str, value: Any) -> ProbeError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ProbeError(f"{path or '<top>'}: expected {expected}, got {type(value).__name__} {shown}")


def _int_from(value: Any, path: str, width: int | None) -> int:
    if width is not None:
        if isinstance(value, str) and value.lower().startswith("0x"):
            try:
                return int(value, 16)
            except ValueError:
                pass
        raise _fail(path, "a hex string like '0x1f'", value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _fail(path, "an integer", value)


def from_plain(tp: Any, value: Any, path: str = "", meta: Mapping[str, Any] | None = None) -> Any:
    """Rebuild a value of type ``tp`` from JSON data; ProbeError names the path on mismatch."""
    meta = meta or {}
    optional, tp = _is_optional(tp)
    if value is None:
        if optional:
            return None
        raise _fail(path, _describe(tp), value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _fail(path, f"an object ({tp.__name__})", value)
        hints = _hints(tp)
        kwargs = {}
        names = set()
        for f in dataclasses.fields(tp):
            if not f.init:
                continue
            names.add(f.name)
            sub = f"{path}.{f.name}" if path else f.name
            if f.name not in value:
                if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                    continue
                raise ProbeError(f"{sub}: missing")
            kwargs[f.name] = from_plain(hints[f.name], value[f.name], sub, f.metadata)
        extra = set(value) - names
        if extra:
            raise ProbeError(f"{path or '<top>'}: unknown field(s) {', '.join(sorted(extra))}")
        return tp(**kwargs)
    origin = typing.get_origin(tp)
    if tp is int:
        return _int_from(value, path, meta.get("hex"))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _fail(path, "true or false", value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _fail(path, "a string", value)
    if tp is bytes:
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):  # ValueError: non-ASCII text
                pass
        raise _fail(path, "base64 text", value)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list):
            raise _fail(path, "a list", value)
        return tuple(from_plain(args[0], v, f"{path}[{i}]", meta) for i, v in enumerate(value))
    if origin in (Mapping, dict, typing.Mapping):
        kt, vt = typing.get_args(tp)
        if not isinstance(value, dict):
            raise _fail(path, "an object", value)
        inner = {k: v for k, v in meta.items() if k != "key_hex"}
        out = {}
        for k, v in value.items():
            sub = f"{path}[{k!r}]"
            if kt is int:
                kw = meta.get("key_hex")
                try:
                    key = int(k, 16) if kw is not None else int(k)
                except ValueError:
                    raise ProbeError(f"{sub}: key is not an integer") from None
            else:
                key = k
            out[key] = from_plain(vt, v, sub, inner)
        return out
    raise TypeError(f"unsupported type hint {tp!r}")


def _describe(tp: Any) -> str:
    if dataclasses.is_dataclass(tp):
        return f"an object ({tp.__name__})"
    return {int: "an integer", str: "a string", bool: "true or false"}.get(tp, str(tp))
