"""probe.awk, run by the real busybox awk: JSON escaping, nesting, blobs, kernel log."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detection_support import BUSYBOX, records_for, run_awk

HEADER = {"format": "guestcompat-probe", "version": 1}

# Anything a guest file can hold except NUL (shells cannot carry NUL) and
# lone surrogates (not encodable); newlines travel as continuation records.
values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=40)
# Path components: no "/" (separator), no tab/newline (record syntax).
keys = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0/\t\n\r"),
               min_size=1, max_size=12).filter(lambda k: k not in ("format", "version", "errors"))
trees = st.recursive(values, lambda inner: st.dictionaries(keys, inner, min_size=1, max_size=4),
                     max_leaves=12)
docs = st.dictionaries(keys, trees, max_size=5)


def _awks() -> list[list[str]]:
    found = [[BUSYBOX, "awk"]]  # busybox-static: installed by scripts/setup.sh
    for name in ("mawk", "gawk"):
        if shutil.which(name):
            found.append([shutil.which(name)])
    return found


@pytest.mark.parametrize("awk", _awks(), ids=lambda a: Path(a[0]).name)
@settings(max_examples=60, deadline=None)
@given(tree=docs)
def test_records_become_exact_json(awk, tree):
    with tempfile.TemporaryDirectory() as tmp:
        out, count = run_awk(records_for(tree), Path(tmp), awk=awk)
    assert count == len(out)
    assert json.loads(out.decode("utf-8")) == {**HEADER, **tree}


def test_every_control_character_is_escaped(tmp_path):
    value = "".join(chr(i) for i in range(1, 128) if chr(i) != "\n") + "é€😀\\\""
    out, _ = run_awk(records_for({"v": value}), tmp_path)
    text = out.decode()
    assert all(ch not in text for ch in map(chr, [*range(1, 32), 127]))
    assert "\\u0001" in text and "\\u007f" in text and "\\u0009" in text
    assert json.loads(text)["v"] == value


def test_duplicates_and_scattered_records_are_reported_not_emitted(tmp_path):
    recs = ["s\ta/x\t1", "s\tb/y\t2", "s\ta/z\t3", "s\tb/y\t4", "s\tarch\tq", "s\tarch\tr",
            "+\tnowhere\tx", "q\tbad\top", "e\t\tfrom the shell"]
    out, _ = run_awk(recs, tmp_path)
    doc = json.loads(out)
    assert doc["a"] == {"x": "1"} and doc["b"] == {"y": "2"} and doc["arch"] == "q"
    errs = doc["errors"]
    assert "records for a/z are not grouped with their object" in errs
    assert "duplicate key b/y" in errs and "duplicate key arch" in errs
    assert "from the shell" in errs
    assert any("unknown record type q" in e for e in errs)


def _dump(files: list[Path], tmp: Path) -> tuple[Path, Path]:
    sizes, hexdump = tmp / "sizes", tmp / "hex"
    with sizes.open("wb") as f:
        subprocess.run([BUSYBOX, "wc", "-c", *map(str, files)], stdout=f, check=True)
    with hexdump.open("wb") as f:
        subprocess.run([BUSYBOX, "od", "-An", "-v", "-tx1", *map(str, files)], stdout=f, check=True)
    return sizes, hexdump


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=6))
def test_blobs_are_hex_of_the_files(blobs):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = []
        for i, data in enumerate(blobs):
            (tmp / f"f{i}").write_bytes(data)
            files.append(tmp / f"f{i}")
        sizes, hexdump = _dump(files, tmp)
        recs = [f"b\tblobs/{i}\t{f}" for i, f in enumerate(files)]
        out, _ = run_awk(recs, tmp, sizes=sizes, hexdump=hexdump)
    doc = json.loads(out)
    assert "errors" not in doc
    assert [bytes.fromhex(doc["blobs"][str(i)]) for i in range(len(blobs))] == blobs


def test_inconsistent_dump_invalidates_every_blob(tmp_path):
    files = []
    for i in range(3):
        (tmp_path / f"f{i}").write_bytes(bytes(range(40 + i)))
        files.append(tmp_path / f"f{i}")
    sizes, hexdump = _dump(files, tmp_path)
    # one byte lost in the middle: sizes no longer add up
    hexdump.write_text(hexdump.read_text().replace(" 00", "", 1))
    out, _ = run_awk([f"b\tb/{i}\t{f}" for i, f in enumerate(files)] + ["b\tb/missing\t/nope"],
                     tmp_path, sizes=sizes, hexdump=hexdump)
    doc = json.loads(out)
    assert doc["b"] == {"0": None, "1": None, "2": None, "missing": None}
    assert any("binary dump inconsistent" in e for e in doc["errors"])
    assert any("/nope" in e for e in doc["errors"])


def test_kernel_log_filter_and_include(tmp_path):
    log = tmp_path / "klog"
    log.write_text("[    0.000000] Hypervisor detected: VMware\n[    0.1] random line\n"
                   "[    0.2] DMI: VMware, Inc. VMware Virtual Platform\n[ 0.3] tsc: Refined TSC\n"
                   "[ 0.4] kvm-clock: x\n[ 0.5] xen: nope\n[ 0.6] Hyper-V: x\n[ 0.7] \x01odd\tchar\n")
    inc = tmp_path / "inc"
    inc.write_text("s\tcpuid/0x00000000/eax\t0x0000000d\ns\tbackdoor/getversion/error\tSIGSEGV\n")
    out, _ = run_awk([f"i\t\t{inc}", f"k\tkernel_log\t{log}", f"i\t\t{tmp_path / 'absent'}"], tmp_path)
    doc = json.loads(out)
    assert doc["cpuid"] == {"0x00000000": {"eax": "0x0000000d"}}
    assert doc["backdoor"]["getversion"]["error"] == "SIGSEGV"
    assert doc["kernel_log"] == [
        "[    0.000000] Hypervisor detected: VMware",
        "[    0.2] DMI: VMware, Inc. VMware Virtual Platform",
        "[ 0.3] tsc: Refined TSC", "[ 0.4] kvm-clock: x", "[ 0.5] xen: nope", "[ 0.6] Hyper-V: x"]
    assert any("absent" in e for e in doc["errors"])


def test_non_utf8_bytes_pass_through_unchanged(tmp_path):
    rec = b"s\tdmi/x\tcaf\xe9 \xff\x80\n"
    (tmp_path / "rec").write_bytes(rec)
    out = subprocess.run([BUSYBOX, "awk", "-f", os.fspath(Path(__file__).parents[2] / "detection/probe/probe.awk"),
                          str(tmp_path / "rec")], capture_output=True, check=True).stdout
    assert b'"x":"caf\xe9 \xff\x80"' in out
    assert json.loads(out.decode("utf-8", "surrogateescape"))["dmi"]["x"] == "caf\udce9 \udcff\udc80"
