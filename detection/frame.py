"""The probe document's frame on the serial console: decode (and encode) it.

The guest prints its JSON document as base64 lines between a BEGIN line that
carries the length and SHA-256 of the JSON bytes and an END line (contract in
docs/design.md).  The console is shared with the kernel, so anything that is
not a frame line is skipped; what *is* inside the frame must add up exactly:
a document that does not match its header is an error, never a guess.

Strings in the document are the guest's bytes.  They are normally UTF-8; bytes
that are not are kept as lone surrogates (``surrogateescape``) so nothing the
guest read is lost and encoding the document again reproduces the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

from guestcompat.errors import ProbeError

FORMAT = "guestcompat-probe"
VERSION = 1
PREFIX = "@@"
BEGIN_TAG = "@@GUESTCOMPAT-BEGIN"
END_LINE = "@@GUESTCOMPAT-END"
MAX_CHUNK = 76

_BEGIN_RE = re.compile(
    r"@@GUESTCOMPAT-BEGIN v(?P<version>[0-9]{1,6}) sha256=(?P<sha>[0-9a-f]{64}) bytes=(?P<bytes>[0-9]{1,12})\Z")
_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}\Z")


@dataclass(frozen=True)
class FrameHeader:
    """What the BEGIN line promises about the JSON bytes."""

    version: int
    sha256: str
    length: int
    line_number: int


def encode_document(doc: Any) -> list[str]:
    """Frame ``doc`` exactly as probe.sh does (used by tests and capture tools).

    The JSON is compact UTF-8; surrogate-escaped strings become their original
    bytes again.  Returns the lines without line terminators.
    """
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # Surrogates that do not stand for a byte: keep them as JSON escapes.
        data = json.dumps(doc, ensure_ascii=True, separators=(",", ":"),
                          allow_nan=False).encode("ascii")
    b64 = base64.b64encode(data).decode("ascii")
    lines = [f"{BEGIN_TAG} v{VERSION} sha256={hashlib.sha256(data).hexdigest()} bytes={len(data)}"]
    lines += [PREFIX + b64[i:i + MAX_CHUNK] for i in range(0, len(b64), MAX_CHUNK)]
    lines.append(END_LINE)
    return lines


def decode_payload(data: bytes) -> dict:
    """JSON bytes of a probe document → dict, checking format and version."""
    try:
        doc = json.loads(data.decode("utf-8", "surrogateescape"))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ProbeError(f"probe document is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ProbeError(f"probe document is a JSON {type(doc).__name__}, expected an object")
    if doc.get("format") != FORMAT:
        raise ProbeError(f"probe document has format {doc.get('format')!r}, expected {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise ProbeError(
            f"probe document has version {doc.get('version')!r}, this guestcompat reads version {VERSION}")
    return doc


class FrameReader:
    """Incremental frame decoder for console lines as they arrive.

    ``feed(line)`` each console line (with or without ``\\r``/``\\n``);
    ``complete`` turns true and ``document`` holds the decoded dict once the
    END line has been checked.  Lines after the END are ignored.  ``finish()``
    says why there is no document when the console closes.  Errors are raised
    from the ``feed`` call that reveals them.
    """

    def __init__(self) -> None:
        self._header: FrameHeader | None = None
        self._chunks: list[str] = []
        self._b64_len = 0
        self._line_no = 0
        self._short_line: int | None = None
        self.document: dict | None = None

    @property
    def complete(self) -> bool:
        return self.document is not None

    @property
    def started(self) -> bool:
        return self._header is not None or self.document is not None

    def feed(self, line: str) -> dict | None:
        """Consume one console line; returns the document when this line completed it."""
        self._line_no += 1
        if self.document is not None:
            return None
        line = line.rstrip("\r\n").rstrip("\r")
        begin = line.find(BEGIN_TAG)
        if begin >= 0:
            self._begin(line[begin:].strip())
            return None
        if self._header is None:
            return None
        stripped = line.strip()
        if stripped == END_LINE:
            self.document = self._end()
            return self.document
        if not stripped.startswith(PREFIX):
            return None                                 # kernel message between frame lines
        self._data(stripped[len(PREFIX):])
        return None

    def finish(self) -> dict:
        """The document, or a ProbeError saying why the console ended without one."""
        if self.document is not None:
            return self.document
        if self._header is None:
            raise ProbeError("no probe document on the console (no @@GUESTCOMPAT-BEGIN line)")
        h = self._header
        want = 4 * ((h.length + 2) // 3)
        raise ProbeError(
            f"probe document truncated: BEGIN at line {h.line_number} announced {h.length} bytes "
            f"({want} base64 characters), got {self._b64_len} characters in {len(self._chunks)} "
            f"lines and no {END_LINE}")

    # -- internals --------------------------------------------------------
    def _begin(self, text: str) -> None:
        if self._header is not None:
            raise ProbeError(
                f"second probe document BEGIN at line {self._line_no} before the END of the one "
                f"started at line {self._header.line_number}")
        m = _BEGIN_RE.match(text)
        if not m:
            raise ProbeError(f"malformed probe BEGIN line {self._line_no}: {text[:120]!r}")
        version = int(m["version"])
        if version != VERSION:
            raise ProbeError(
                f"probe frame version v{version} at line {self._line_no}, this guestcompat reads v{VERSION}")
        self._header = FrameHeader(version, m["sha"], int(m["bytes"]), self._line_no)

    def _data(self, chunk: str) -> None:
        if len(chunk) > MAX_CHUNK or not _B64_RE.match(chunk) or not chunk:
            raise ProbeError(
                f"bad base64 in probe document at line {self._line_no}: {chunk[:100]!r}")
        if self._short_line is not None:
            raise ProbeError(
                f"bad base64 in probe document at line {self._line_no}: data after the final "
                f"(short or padded) line {self._short_line}")
        if len(chunk) < MAX_CHUNK or chunk.endswith("="):
            self._short_line = self._line_no
        self._chunks.append(chunk)
        self._b64_len += len(chunk)

    def _end(self) -> dict:
        h = self._header
        assert h is not None
        joined = "".join(self._chunks)
        try:
            data = base64.b64decode(joined, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ProbeError(
                f"bad base64 in probe document (lines {h.line_number + 1}-{self._line_no - 1}): {exc}"
            ) from None
        if len(data) != h.length:
            raise ProbeError(
                f"probe document length mismatch: header says {h.length} bytes, decoded {len(data)} bytes")
        digest = hashlib.sha256(data).hexdigest()
        if digest != h.sha256:
            raise ProbeError(
                f"probe document checksum mismatch: header sha256={h.sha256}, decoded data sha256={digest}")
        if base64.b64encode(data).decode("ascii") != joined:
            # Only possible when unused padding bits were flipped: the bytes
            # still check out, but the line was damaged on the way.
            raise ProbeError(
                f"bad base64 in probe document (lines {h.line_number + 1}-{self._line_no - 1}): "
                "not the canonical encoding of its bytes")
        return decode_payload(data)


def extract_document(lines: Iterable[str]) -> dict:
    """The one probe document in a console transcript (an iterable of lines)."""
    reader = FrameReader()
    for line in lines:
        if reader.feed(line) is not None:
            break
    return reader.finish()
