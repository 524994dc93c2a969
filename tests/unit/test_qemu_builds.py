"""The registry of QEMU builds (`--qemu stock|7.2|patched|10.0|10.0-patched`) and its Debian helpers."""

from __future__ import annotations

import shlex

import pytest

from guestcompat.errors import ImageError
from guestcompat.images import qemu_build, qemu_builds, qemu_debian
from guestcompat.images.debian_suite import madison_version

MADISON = """\
qemu-system-x86 | 1:10.0.2+ds-2+deb13u1~bpo12+1 | http://deb.debian.org/debian bookworm-backports/main amd64 Packages
qemu-system-x86 | 1:7.2+dfsg-7+deb12u18+b3 | http://deb.debian.org/debian bookworm/main amd64 Packages
qemu-system-x86 | 1:7.2+dfsg-7+deb12u15 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
      qemu | 1:10.0.2+ds-2+deb13u1~bpo12+1 | http://deb.debian.org/debian bookworm-backports/main Sources
"""


def test_madison_picks_the_suites_binary_version_not_a_source_line_nor_a_longer_suite_name():
    assert madison_version(MADISON, "qemu-system-x86", "bookworm-backports") == "1:10.0.2+ds-2+deb13u1~bpo12+1"
    assert madison_version(MADISON, "qemu-system-x86", "bookworm") == "1:7.2+dfsg-7+deb12u18+b3"
    assert madison_version(MADISON, "qemu", "bookworm-backports") is None  # Sources only
    assert madison_version(MADISON, "qemu-system-x86", "trixie") is None


def test_the_installed_release_number_names_the_stock_binary(monkeypatch):
    monkeypatch.setattr(qemu_build, "installed_source_version", lambda package: "1:7.2+dfsg-7+deb12u18")
    assert qemu_builds.installed_release() == "7.2"
    assert qemu_builds.is_stock("7.2") and qemu_builds.is_stock("stock")
    assert qemu_builds.is_alias("7.2") and qemu_builds.is_alias("10.0") and qemu_builds.is_alias("10.0-patched")
    assert not qemu_builds.is_stock("10.0") and not qemu_builds.is_stock("patched")
    assert not qemu_builds.is_alias("/usr/bin/qemu-system-x86_64") and not qemu_builds.is_alias("9.2")
    assert qemu_builds.binary_for_alias("7.2", "x86_64", "qemu-system-x86_64") == "qemu-system-x86_64"


def test_a_build_on_another_arch_or_an_unknown_name_is_a_clear_error():
    with pytest.raises(ImageError, match="for x86_64 only, not ppc64"):
        qemu_builds.binary_for_alias("10.0", "ppc64", "qemu-system-ppc64")
    with pytest.raises(ImageError, match="not a QEMU build guestcompat knows"):
        qemu_builds.binary_for_alias("9.9", "x86_64", "qemu-system-x86_64")
    with pytest.raises(ImageError, match="unknown QEMU build"):
        qemu_builds.ensure("9.9")


def test_the_debian_wrapper_quotes_paths_and_puts_the_releases_firmware_first(tmp_path):
    root = tmp_path / "odd dir's"
    text = qemu_debian._wrapper(root, "qemu-system-x86_64")
    assert text.startswith("#!/bin/sh\n")
    words = shlex.split(text.splitlines()[-1])  # the shell reads back exactly these paths
    assert words == ["exec", f"{root}/usr/bin/qemu-system-x86_64", "-L", f"{root}/usr/share/qemu",
                     "-L", f"{root}/usr/share/seabios", "$@"]
    assert shlex.split(text.splitlines()[-2].split(";")[0]) == [
        f"QEMU_MODULE_DIR={root}/usr/lib/x86_64-linux-gnu/qemu"]


def test_the_7_2_patched_key_is_the_one_earlier_checkouts_built():
    """Adding builds must not rename the existing patched build's cache directory (a rebuild)."""
    spec = qemu_build.SOURCE_BUILDS["patched"]
    assert spec.directory_name == "guestcompat-qemu"
    key, patches = qemu_build.build_key("1:7.2+dfsg-7+deb12u18", "1.16.2-1", spec)
    assert key == qemu_build.build_key("1:7.2+dfsg-7+deb12u18", "1.16.2-1")[0]
    assert [p.split("/")[0] for p in patches] == ["qemu-7.2"] * 8 + ["seabios-1.16"]
    other, _ = qemu_build.build_key("1:7.2+dfsg-7+deb12u18", "1.16.2-1", qemu_build.SOURCE_BUILDS["10.0-patched"])
    assert other != key


def test_every_series_patch_has_a_what_and_why_header():
    for spec in qemu_build.SOURCE_BUILDS.values():
        for patch in qemu_build.patch_files(spec.qemu_series):
            head = patch.read_text().split("\n---\n")[0]
            assert "What:" in head and "Why:" in head, patch.name
