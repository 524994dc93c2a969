"""Read a ``.vmx`` file as leniently as VMware does, and say what was odd about it.

A ``.vmx`` is a flat ``key = "value"`` dictionary that VMware products write
and that people, Packer templates and provisioning scripts edit by hand.
VMware itself reads every line it can and ignores what it cannot; a reader
that refuses the whole VM for one odd line (a hyphen in ``board-id.reflectHost``,
a wildcard in ``pciPassthru*.present``, an unquoted ``virtualSSD = 1``, a host
path cut in the middle of a multi-byte character) loses VMs VMware boots.  So
this reader never refuses a line: each one it cannot use is reported (file,
line, what is wrong) and skipped, and the import goes on.

What it honours, and why:

* ``.encoding``: VMware writes the file in the host's legacy code page when
  it says so (``windows-1252``, ``Shift_JIS``, ``GBK``, ``CP949``, ``Big5``…);
  decoding as UTF-8 would garble display names and file names.  A byte that
  does not decode in one value is reported and the value is kept up to it
  (the rest of the line is what VMware would not have written anyway).
* a UTF-8 byte order mark (Windows editors add one), CRLF and CR line ends;
* comments (``#`` lines, and ``# …`` after a quoted value);
* VMware's ``|XX`` escape in values (``|22`` is a double quote, ``|7C`` a bar);
* duplicate keys: the last one wins (reported), keys compared case-insensitively.

It is bounded: a file larger than :data:`MAX_BYTES` or with more than
:data:`MAX_LINES` lines is refused before anything is parsed, a key longer
than :data:`MAX_KEY` is reported and skipped.  Device counts are bounded
later, by vmx_limits.py, against VMware's own limits.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path

from guestcompat.errors import ProfileError

#: VMware's own descriptors are a few KiB (tens with long guestinfo values); libvirt stops at 10 MiB
MAX_BYTES = 4 * 1024 * 1024
#: a VM at every VMware device limit has a few thousand settings
MAX_LINES = 50_000
MAX_KEY = 512

#: names VMware writes in ``.encoding`` that Python spells differently (lower-cased)
_ENCODING_ALIASES = {"windows-31j": "cp932", "ks_c_5601-1987": "cp949", "x-mac-roman": "mac_roman",
                     "macintosh": "mac_roman", "x-mac-japanese": "shift_jis", "gb2312": "gbk"}
_ENCODING_LINE = re.compile(rb'^[ \t]*\.encoding[ \t]*=[ \t]*"?([A-Za-z0-9_.:-]{1,40})"?[ \t]*(?:#.*)?$')
_ESCAPE = re.compile(r"\|([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class VmxText:
    """The settings of one .vmx (keys lower-cased) and what the reader noticed."""

    values: dict[str, str]
    problems: tuple[str, ...] = ()
    encoding: str = "utf-8"
    lines: int = 0
    #: lower-cased key -> the spelling in the file (for messages)
    spelling: dict[str, str] = field(default_factory=dict)


def _python_encoding(name: str) -> str | None:
    wanted = _ENCODING_ALIASES.get(name.lower(), name)
    try:
        return codecs.lookup(wanted).name
    except LookupError:
        return None


def _declared_encoding(data: bytes, source: str, problems: list[str]) -> str:
    """The ``.encoding`` the file declares (first 64 lines, where VMware writes it), as a Python codec."""
    for line in data.splitlines()[:64]:
        match = _ENCODING_LINE.match(line.rstrip(b"\r"))
        if match:
            name = match[1].decode("ascii")
            codec = _python_encoding(name)
            if codec is None:
                problems.append(f"{source}: .encoding {name!r} is not an encoding this reader knows; "
                                f"read as UTF-8 (values that do not decode are cut where they stop decoding)")
                return "utf-8"
            return codec
    return "utf-8"


def _decode_line(raw: bytes, encoding: str, source: str, number: int, problems: list[str]) -> str:
    """``raw`` decoded; at the first byte that does not decode the line is cut there (and reported)."""
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        kept = raw[:exc.start].decode(encoding, errors="replace")
        bad = raw[exc.start:exc.start + 1].hex()
        problems.append(f"{source}: line {number}: byte 0x{bad} at column {exc.start + 1} does not decode as "
                        f"{encoding}: the line is kept up to it ({kept[:60]!r})")
        # a quoted value cut short keeps its closing quote, so the setting itself is not lost
        if kept.count('"') == 1:
            kept += '"'
        return kept


def _setting(line: str) -> tuple[str, str] | None:
    """(key, raw value) of a ``key = value`` line: the key is anything VMware takes up to the first
    ``=`` (letters, digits, ``._:-*[]`` and non-ASCII are all seen). Split by hand: a regex with a
    lazy key took quadratic time on a long line of blanks."""
    key, equals, value = line.partition("=")
    key = key.strip()
    if not equals or not key or key[0] in '"#':
        return None
    return key, value.strip()


def _unescape(value: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m[1], 16)), value) if "|" in value else value


def _value(text: str, source: str, number: int, key: str, problems: list[str]) -> str:
    """The value part of a setting: quoted (VMware's form), or bare as some tools write it."""
    if text.startswith('"'):
        end = text.find('"', 1)
        if end < 0:
            problems.append(f"{source}: line {number}: {key}: the value's closing quote is missing; "
                            f"the rest of the line is taken as the value")
            return _unescape(text[1:])
        rest = text[end + 1:].strip()
        if rest and not rest.startswith("#"):
            problems.append(f"{source}: line {number}: {key}: text after the quoted value ({rest[:40]!r}) ignored")
        return _unescape(text[1:end])
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return _unescape(text[1:-1])
    return _unescape(_before_comment(text).strip())


def _before_comment(text: str) -> str:
    """``text`` up to a ``#`` that follows a blank (a trailing comment), found without a regex that
    backtracks over long runs of blanks."""
    at = text.find("#")
    while at > 0:
        if text[at - 1].isspace():
            return text[:at]
        at = text.find("#", at + 1)
    return text


def read_vmx_file(path: Path) -> bytes:
    """The bytes of a .vmx file, refused past :data:`MAX_BYTES` without reading more than that."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the .vmx: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise ProfileError(f"{path}: larger than any VMware descriptor (at most {MAX_BYTES // (1024 * 1024)} MiB "
                           f"read); not a .vmx?")
    return data


def read_vmx_text(data: bytes | str, source: str = "<vmx>") -> VmxText:
    """Every setting of a .vmx; never raises for a line, only for a file too large to be a .vmx.

    ``data`` as bytes is decoded per the file's ``.encoding``; text was decoded by the caller
    (``.encoding`` is then only recorded)."""
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogateescape"))
    if size > MAX_BYTES:
        raise ProfileError(f"{source}: {size} bytes: larger than any VMware descriptor "
                           f"(at most {MAX_BYTES // (1024 * 1024)} MiB read); not a .vmx?")
    count = (data.count(b"\n") if isinstance(data, bytes) else data.count("\n")) + 1
    if count > MAX_LINES:
        raise ProfileError(f"{source}: {count} lines: more than a VMware descriptor holds "
                           f"(at most {MAX_LINES}); not a .vmx?")
    problems: list[str] = []
    if isinstance(data, bytes):
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8):]
            encoding = "utf-8"
        else:
            encoding = _declared_encoding(data, source, problems)
        raw_lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        lines = [_decode_line(raw, encoding, source, n, problems) for n, raw in enumerate(raw_lines, 1)]
    else:
        encoding = "text"
        lines = data.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    values: dict[str, str] = {}
    where: dict[str, int] = {}
    spelling: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        stripped = line.strip().replace("\x00", "")
        if not stripped or stripped.startswith("#"):
            continue
        setting = _setting(stripped)
        if setting is None:
            problems.append(f"{source}: line {number} is not a setting (key = \"value\"), skipped: {stripped[:80]!r}")
            continue
        key, raw_value = setting
        if len(key) > MAX_KEY:
            problems.append(f"{source}: line {number}: a key of {len(key)} characters (at most {MAX_KEY}), skipped")
            continue
        if any(c.isspace() for c in key):
            problems.append(f"{source}: line {number}: key {key[:60]!r} has blanks in it; read as written")
        lower = key.lower()
        value = _value(raw_value, source, number, key, problems)
        if lower in values:
            problems.append(f"{source}: line {number}: {key} is set again (first at line {where[lower]}): "
                            f"the last value wins, as in VMware")
        values[lower] = value
        where[lower] = number
        spelling[lower] = key
    return VmxText(values, tuple(problems), encoding, len(lines), spelling)
