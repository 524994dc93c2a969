"""The console frame: round trips, noise tolerance, and that damage is always caught."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

#: Per-example deadline: an example takes milliseconds, but on the shared 2-core machine, with
#: other engineers' TCG guests running (load average 10+), hypothesis' default 200 ms was exceeded
#: (DeadlineExceeded). 5 s still catches a parser that goes quadratic on a large document.
LOADED_MACHINE = settings(deadline=5000)

from guestcompat.detection.frame import FrameReader, encode_document, extract_document
from guestcompat.errors import ProbeError

HEADER = {"format": "guestcompat-probe", "version": 1}

json_scalars = st.none() | st.booleans() | st.integers(-2**63, 2**63) | \
    st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30)
documents = st.dictionaries(st.text(max_size=10).filter(lambda k: k not in HEADER), json_values,
                            max_size=8).map(lambda d: {**HEADER, **d})

# Console noise: anything that is not a frame line (kernel messages, prompts).
garbage = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
                  max_size=60).filter(lambda s: not s.strip().startswith("@@") and "@@GUESTCOMPAT" not in s)


@given(documents)
@LOADED_MACHINE
def test_round_trip(doc):
    assert extract_document(encode_document(doc)) == doc


@given(documents, st.lists(garbage, max_size=5), st.data())
@settings(LOADED_MACHINE, suppress_health_check=[HealthCheck.too_slow])
def test_round_trip_with_noise_and_crlf(doc, leading, data):
    lines = encode_document(doc)
    noisy = list(leading)
    for line in lines:
        noisy.append(line + data.draw(st.sampled_from(["", "\r", "\r\n", "\n"])))
        noisy += data.draw(st.lists(garbage, max_size=2))
    reader = FrameReader()
    results = [reader.feed(line) for line in noisy]
    assert reader.complete and reader.document == doc
    assert sum(r is not None for r in results) == 1
    assert extract_document(noisy) == doc


def test_begin_after_leading_garbage_on_same_line():
    lines = encode_document(HEADER)
    lines[0] = "\x1b[0mlogin: " + lines[0]
    assert extract_document(["[    1.0] random: crng init done", *lines]) == HEADER


def test_probe_output_shape_lines_are_short():
    lines = encode_document({**HEADER, "x": "y" * 1000})
    assert all(len(line) <= 78 for line in lines[1:-1])


@given(documents, st.data())
@LOADED_MACHINE
def test_truncation_is_detected(doc, data):
    lines = encode_document(doc)
    cut = data.draw(st.integers(1, len(lines) - 1))
    with pytest.raises(ProbeError):
        extract_document(lines[:cut])


@given(documents, st.data())
@LOADED_MACHINE
def test_dropped_data_line_is_detected(doc, data):
    lines = encode_document(doc)
    assume(len(lines) > 2)
    i = data.draw(st.integers(1, len(lines) - 2))
    with pytest.raises(ProbeError):
        extract_document(lines[:i] + lines[i + 1:])


@given(documents, st.data())
@LOADED_MACHINE
def test_any_corruption_is_detected(doc, data):
    """A damaged document must never decode (not even to something plausible)."""
    lines = encode_document(doc)
    i = data.draw(st.integers(0, len(lines) - 2), label="line")
    line = lines[i]
    pos = data.draw(st.integers(2, len(line) - 1), label="pos")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= x!é0123"
    new = data.draw(st.sampled_from(alphabet).filter(lambda c: c != line[pos]), label="char")
    damaged = lines[:i] + [line[:pos] + new + line[pos + 1:]] + lines[i + 1:]
    try:
        result = extract_document(damaged)
    except ProbeError:
        return
    raise AssertionError(f"damaged frame decoded silently: {result!r}")


def _frame_raw(data: bytes, sha: str | None = None, length: int | None = None) -> list[str]:
    b64 = base64.b64encode(data).decode()
    return ([f"@@GUESTCOMPAT-BEGIN v1 sha256={sha or hashlib.sha256(data).hexdigest()} "
             f"bytes={len(data) if length is None else length}"]
            + ["@@" + b64[i:i + 76] for i in range(0, len(b64), 76)] + ["@@GUESTCOMPAT-END"])


def test_error_messages_are_precise():
    good = json.dumps(HEADER).encode()
    with pytest.raises(ProbeError, match=r"truncated.*no @@GUESTCOMPAT-END"):
        extract_document(_frame_raw(good)[:-1])
    with pytest.raises(ProbeError, match=r"length mismatch: header says 99 bytes, decoded \d+ bytes"):
        extract_document(_frame_raw(good, length=99))
    wrong = "0" * 64
    with pytest.raises(ProbeError, match=f"header sha256={wrong}, decoded data sha256={hashlib.sha256(good).hexdigest()}"):
        extract_document(_frame_raw(good, sha=wrong))
    with pytest.raises(ProbeError, match="not valid JSON"):
        extract_document(_frame_raw(b"{not json"))
    with pytest.raises(ProbeError, match="format 'other'"):
        extract_document(_frame_raw(json.dumps({"format": "other", "version": 1}).encode()))
    with pytest.raises(ProbeError, match="version 2"):
        extract_document(_frame_raw(json.dumps({"format": "guestcompat-probe", "version": 2}).encode()))
    with pytest.raises(ProbeError, match="bad base64.*line 2"):
        lines = _frame_raw(good)
        lines[1] = lines[1][:10] + "*" + lines[1][11:]
        extract_document(lines)
    with pytest.raises(ProbeError, match="second probe document BEGIN at line 3"):
        lines = _frame_raw(good)
        extract_document(lines[:2] + lines)
    with pytest.raises(ProbeError, match="no @@GUESTCOMPAT-BEGIN"):
        extract_document(["just a kernel", "booting"])
    with pytest.raises(ProbeError, match="frame version v2"):
        extract_document([_frame_raw(good)[0].replace(" v1 ", " v2 ")])
    with pytest.raises(ProbeError, match="malformed probe BEGIN"):
        extract_document(["@@GUESTCOMPAT-BEGIN v1 sha256=xyz"])


def test_non_utf8_guest_bytes_survive():
    raw = b'{"format":"guestcompat-probe","version":1,"dmi":{"x":"caf\xe9"}}'
    doc = extract_document(_frame_raw(raw))
    assert doc["dmi"]["x"] == "caf\udce9"
    assert extract_document(encode_document(doc)) == doc
    # and the bytes are reproduced exactly
    assert base64.b64decode("".join(line[2:] for line in encode_document(doc)[1:-1])) == raw


def test_lines_after_end_are_ignored():
    lines = encode_document(HEADER)
    assert extract_document(lines + ["@@GUESTCOMPAT-BEGIN garbage", "@@???"]) == HEADER
