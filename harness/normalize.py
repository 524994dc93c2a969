"""Declared normalisation of a fingerprint before it is stored or compared.

Some values in a fingerprint change from boot to boot on the same machine
(tool run times, TSC calibration under TCG, ifindex order).  They are not
hidden in code: ``data/baseline-rules.toml`` lists each one as a JSON path
plus an action and a *reason*, so a reviewer can see what a baseline ignores
and why.  Rules apply to the plain JSON of ``Fingerprint.to_json()`` and keep
it loadable by ``Fingerprint.from_json`` (values become null or rewritten
strings, keys are never removed).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guestcompat.errors import GuestcompatError

RULES_PATH = Path(__file__).with_name("data") / "baseline-rules.toml"


class BaselineError(GuestcompatError):
    """A baseline, its rules or a fingerprint file to compare is unusable."""


@dataclass(frozen=True)
class Rule:
    """One volatile field: where it is (``a.*.b``), what to do, and why."""

    path: tuple[str, ...]
    reason: str
    action: str = "null"                     # "null" or "rewrite"
    pattern: re.Pattern[str] | None = None
    replace: str = ""


def parse_rules(text: str, source: str = "rules") -> tuple[Rule, ...]:
    """Rules from TOML text; a rule without path/reason or with a bad regex is refused by name."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BaselineError(f"{source}: {exc}") from None
    rules = []
    for i, raw in enumerate(data.get("rule", [])):
        where = f"{source}: rule[{i}]"
        unknown = set(raw) - {"path", "reason", "action", "pattern", "replace"}
        if unknown:
            raise BaselineError(f"{where}: unknown keys {sorted(unknown)}")
        if not isinstance(raw.get("path"), str) or not raw["path"]:
            raise BaselineError(f"{where}: needs a path")
        if not isinstance(raw.get("reason"), str) or not raw["reason"].strip():
            raise BaselineError(f"{where} ({raw['path']}): needs a reason")
        if "pattern" in raw:
            try:
                pattern = re.compile(raw["pattern"])
            except re.error as exc:
                raise BaselineError(f"{where} ({raw['path']}): pattern: {exc}") from None
            rules.append(Rule(tuple(raw["path"].split(".")), raw["reason"], "rewrite", pattern,
                              str(raw.get("replace", ""))))
        elif raw.get("action", "null") == "null":
            rules.append(Rule(tuple(raw["path"].split(".")), raw["reason"]))
        else:
            raise BaselineError(f"{where} ({raw['path']}): action must be \"null\" or a pattern given")
    return tuple(rules)


def default_rules() -> tuple[Rule, ...]:
    return parse_rules(RULES_PATH.read_text(), str(RULES_PATH))


def _apply(node: Any, path: tuple[str, ...], rule: Rule) -> Any:
    if not path:
        if rule.action == "null":
            return None
        if isinstance(node, str):
            assert rule.pattern is not None
            return rule.pattern.sub(rule.replace, node)
        return node
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        keys = list(node) if head == "*" else [head] if head in node else []
        return {k: (_apply(v, rest, rule) if k in keys else v) for k, v in node.items()}
    if isinstance(node, list):
        if head == "*":
            return [_apply(v, rest, rule) for v in node]
        if head.isdigit() and int(head) < len(node):
            i = int(head)
            return [_apply(v, rest, rule) if n == i else v for n, v in enumerate(node)]
    return node


def normalize_plain(plain: dict[str, Any], rules: tuple[Rule, ...]) -> dict[str, Any]:
    """The fingerprint's plain JSON with every rule applied (input left untouched)."""
    out: Any = plain
    for rule in rules:
        out = _apply(out, rule.path, rule)
    return out
