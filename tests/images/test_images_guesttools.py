"""Guest tools: ELF dependency resolution from DT_NEEDED/PT_INTERP and the soname table."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from guestcompat.emulation.arches.x86_64 import X86_64
from guestcompat.errors import ImageError
from guestcompat.images.guesttools import collect, elf_deps, guest_path, load_toolset

TOML = """
library_dirs = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"]
[tools.true]
files = ["coreutils:bin/true"]
[sonames]
%s
"""


def _host_lib(name: str) -> Path:
    for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"):
        if (Path(d) / name).exists():
            return Path(os.path.realpath(Path(d) / name))
    raise AssertionError(f"host has no {name}")


def _trees(tmp: Path) -> dict[str, Path]:
    core = tmp / "coreutils"
    (core / "bin").mkdir(parents=True)
    shutil.copy("/bin/true", core / "bin/true")
    libc = tmp / "libc6"
    (libc / "lib/x86_64-linux-gnu").mkdir(parents=True)
    (libc / "lib64").mkdir()
    shutil.copy(_host_lib("libc.so.6"), libc / "lib/x86_64-linux-gnu/libc.so.6.real")
    (libc / "lib/x86_64-linux-gnu/libc.so.6").symlink_to("libc.so.6.real")
    shutil.copy(_host_lib("ld-linux-x86-64.so.2"), libc / "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    (libc / "lib64/ld-linux-x86-64.so.2").symlink_to("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    return {"coreutils": core, "libc6": libc}


def test_libraries_and_interpreter_are_found_from_the_elf_files(tmp_path):
    trees = _trees(tmp_path)
    toolset = load_toolset("amd64", TOML % '"libc.so.6" = "libc6"\n"ld-linux-x86-64.so.2" = "libc6"')
    tree = collect(toolset, ["true"], trees.__getitem__)
    assert [f.guest for f in tree.files] == ["/lib64/ld-linux-x86-64.so.2", "/usr/bin/true",
                                             "/usr/lib/x86_64-linux-gnu/libc.so.6"]
    assert tree.packages == ("coreutils", "libc6")
    assert elf_deps(trees["coreutils"] / "bin/true").interp == "/lib64/ld-linux-x86-64.so.2"


def test_a_soname_missing_from_the_table_is_named(tmp_path):
    toolset = load_toolset("amd64", TOML % '"ld-linux-x86-64.so.2" = "libc6"')
    with pytest.raises(ImageError, match=r"libc\.so\.6 \(needed by /usr/bin/true\).*\[sonames\]"):
        collect(toolset, ["true"], _trees(tmp_path).__getitem__)


def test_unknown_tool_and_bad_data_are_errors():
    with pytest.raises(ImageError, match="guest tool 'nope' is not defined"):
        load_toolset("amd64").closure(["nope"])
    with pytest.raises(ImageError, match="not 'package:relative/path'"):
        load_toolset("amd64", 'library_dirs = []\n[tools.x]\nfiles = ["/abs"]\n')
    with pytest.raises(ImageError, match="no guest tool data for s390x"):
        load_toolset("s390x")


def test_x86_64_tools_are_all_defined_and_merged_into_usr():
    toolset = load_toolset(X86_64.debian_arch)
    assert toolset.closure(X86_64.guest_tools)
    assert "libsystemd-shared" in toolset.packages(X86_64.guest_tools)
    assert guest_path("bin/udevadm") == "/usr/bin/udevadm"
    assert guest_path("lib64/ld-linux-x86-64.so.2") == "/lib64/ld-linux-x86-64.so.2"
