"""Standing fuzz targets (issue 13): whatever a hostile or careless user feeds guestcompat, the answer is a
project error whose message says what and where, or a valid result; never another exception. And no
compiled argv carries an option the profile did not ask for: a profile whose free-text strings hold QEMU
option syntax compiles to the same option/key structure as the same profile with that syntax defanged
(every argv value parsed back with the project's option parser, ``qemuopts.parse_option``).

Quick in the normal suite (GUESTCOMPAT_FUZZ_EXAMPLES, default 30 per target); ``make fuzz`` runs 10,000
per target and prints the tallies (tests/fuzz/conftest.py)."""

from __future__ import annotations

import atexit
import contextlib
import os
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import given

import fuzz_strategies as S
from fuzz_tally import FUZZ, tally

from guestcompat.emulation.arches import resolve_target
from guestcompat.emulation.compiler import compile_profile
from guestcompat.emulation.libvirt_xml import libvirt_report, render, report_lines
from guestcompat.emulation.qemuopts import parse_option
from guestcompat.emulation.report import argv_lines, fidelity_lines
from guestcompat.emulation.target import Target
from guestcompat.errors import GuestcompatError, ProfileError
from guestcompat.profiles.loader import PATH_ENV, load
from guestcompat.profiles.model import Profile

WORK = Path(tempfile.mkdtemp(prefix="guestcompat-fuzz-"))
atexit.register(shutil.rmtree, WORK, True)
FLAGS = {"-nodefaults", "-no-user-config"}


@contextlib.contextmanager
def extra_profile_dir(path: Path) -> Iterator[None]:
    """Search ``path`` first while the block runs (the fuzzed profiles are files: the loader's file
    handling is what is fuzzed); the previous search path is restored."""
    old = os.environ.get(PATH_ENV)
    os.environ[PATH_ENV] = os.pathsep.join(filter(None, [str(path), old]))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(PATH_ENV, None)
        else:
            os.environ[PATH_ENV] = old


def _target(profile: Profile) -> Target:
    return resolve_target(profile.platform.arch)


def argv_shape(argv: tuple[str, ...]) -> list[tuple[str, frozenset[str]]]:
    """(option, keys) of every option, as QEMU would read them: what an injected ``,key=value`` changes."""
    shape, i = [], 1
    while i < len(argv):
        if argv[i] in FLAGS:
            shape.append((argv[i], frozenset()))
            i += 1
            continue
        shape.append((argv[i], frozenset(parse_option(argv[i], argv[i + 1])[1])))
        i += 2
    return shape


def _defanged(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(",", "_").replace("=", "_")
    if isinstance(value, dict):
        return {k: _defanged(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_defanged(v) for v in value]
    return value


def compile_everything(profile: Profile):
    compiled = compile_profile(profile, _target(profile))
    argv_lines(compiled), fidelity_lines(compiled)
    domain = render(compiled)
    report_lines(domain), libvirt_report(compiled)
    return compiled


def check_no_injection(profile: Profile, compiled, counts) -> None:
    try:
        plain = compile_profile(Profile.model_validate(_defanged(profile.model_dump())), _target(profile))
    except (GuestcompatError, ValueError):
        return  # the defanged strings changed what the profile means (a kind or address): nothing to compare
    assert argv_shape(compiled.argv) == argv_shape(plain.argv), "a profile string changed the argv's options"
    counts["argv_compared"] += 1


@FUZZ
@given(S.profile_documents())
def test_fuzz_profiles(document):
    """load -> compile -> fidelity report -> libvirt XML, on mutated bundled profiles."""
    name, text = document
    with tempfile.TemporaryDirectory(dir=WORK) as tmp, tally("profiles") as counts, extra_profile_dir(Path(tmp)):
        path = Path(tmp) / "fuzz" / f"{name.replace('/', '-')}.toml"
        path.parent.mkdir(parents=True)
        path.write_bytes(text)
        try:
            profile = load(f"fuzz/{path.stem}")
        except ProfileError as exc:
            assert ".toml" in str(exc) or "profile" in str(exc), f"no place named: {exc}"
            raise
        if profile.abstract:
            return
        compiled = compile_everything(profile)
        check_no_injection(profile, compiled, counts)


@FUZZ
@given(S.profile_documents())
def test_fuzz_profile_argv_never_gains_an_option(document):
    """The injection property on its own, through the loader (so extends and merging take part)."""
    name, text = document
    with tempfile.TemporaryDirectory(dir=WORK) as tmp, tally("argv-injection") as counts, \
            extra_profile_dir(Path(tmp)):
        path = Path(tmp) / "fuzz" / f"{name.replace('/', '-')}.toml"
        path.parent.mkdir(parents=True)
        path.write_bytes(text)
        profile = load(f"fuzz/{path.stem}")
        if not profile.abstract:
            check_no_injection(profile, compile_profile(profile, _target(profile)), counts)


def _import_and_compile(result, name: str) -> None:
    with tempfile.TemporaryDirectory(dir=WORK) as tmp, extra_profile_dir(Path(tmp)):
        path = Path(tmp) / f"{name}.toml"
        path.parent.mkdir(parents=True)
        # as the CLI would: descriptors are read with errors="replace", so what an importer got is text
        path.write_bytes(result.toml().encode("utf-8", "replace"))
        compile_everything(load(name))


@FUZZ
@given(S.vmx_texts())
def test_fuzz_vmx(text):
    from guestcompat.profiles.importers.vmx import DiskPolicy, import_vmx

    with tally("vmx"):
        result = import_vmx(text, "imported/fuzz", "fuzz.vmx", disks=DiskPolicy(mode="blank"))
        _import_and_compile(result, "imported/fuzz")


@FUZZ
@given(S.ovf_texts())
def test_fuzz_ovf(text):
    from guestcompat.profiles.importers.ovf import import_ovf
    from guestcompat.profiles.importers.vmx import DiskPolicy

    with tally("ovf"):
        result = import_ovf(text, "imported/fuzz", "fuzz.ovf", disks=DiskPolicy(mode="blank"))
        _import_and_compile(result, "imported/fuzz")


@FUZZ
@given(S.capture_texts())
def test_fuzz_capture_texts(texts):
    from guestcompat.detection.models import evaluate, fingerprint_from_captures
    from guestcompat.profiles.importers.capture import import_capture

    lspci, dmidecode = texts
    with tally("captures"):
        result = import_capture("imported/fuzz", lspci=lspci, dmidecode=dmidecode)
        if lspci or dmidecode:
            evaluate(fingerprint_from_captures(lspci, dmidecode))
        _import_and_compile(result, "imported/fuzz")


@FUZZ
@given(S.fingerprint_texts())
def test_fuzz_fingerprint_and_diff_json(text):
    from guestcompat.detection.diff import diff
    from guestcompat.detection.fingerprint import Fingerprint
    from guestcompat.detection.models import evaluate
    from guestcompat.harness.baseline import load_fingerprint, normalized

    reference = Fingerprint.from_json(json.dumps(S.FINGERPRINT))
    with tempfile.TemporaryDirectory(dir=WORK) as tmp, tally("fingerprint-json"):
        path = Path(tmp) / "fp.json"
        path.write_text(text, errors="surrogateescape")
        fp = load_fingerprint(path)
        diff(reference, fp), diff(fp, reference)
        diff(normalized(reference), normalized(fp))
        evaluate(fp)
        Fingerprint.from_json(fp.to_json())


@FUZZ
@given(S.console_texts())
def test_fuzz_console_frames(lines):
    from guestcompat.detection.fingerprint import Fingerprint
    from guestcompat.detection.frame import FrameReader

    with tally("console-frames"):
        reader = FrameReader()
        for line in lines:
            if reader.feed(line) is not None:
                break
        doc = reader.finish()
        Fingerprint.from_document(doc)
