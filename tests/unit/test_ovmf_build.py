"""guestcompat's OVMF build (images/ovmf_build.py): its cache key, its manifest and the capabilities
the compiler reads from it (pure logic: nothing is built here)."""

from __future__ import annotations

import json

import pytest

from guestcompat.errors import ImageError
from guestcompat.images import ovmf_build
from guestcompat.images.ovmf_build import OvmfBuild
from guestcompat.profiles.catalog import load_catalog

SOURCE = "2022.11-6+deb12u2"
PATCH = """\
From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
Subject: [PATCH] OvmfPkg: something

What: a thing.
Why: a reason.

Capability: {capability}
---
 OvmfPkg/x.c | 1 +
diff --git a/OvmfPkg/x.c b/OvmfPkg/x.c
+Capability: not-a-header-line
"""


@pytest.fixture
def series(tmp_path, monkeypatch):
    """A private patch series in place of the checkout's."""
    folder = tmp_path / "series"
    folder.mkdir()
    monkeypatch.setattr(ovmf_build, "patch_files", lambda series: sorted(folder.glob("*.patch")))
    return folder


def test_the_key_follows_source_defines_and_every_patch_byte(series):
    (series / "0001-a.patch").write_text(PATCH.format(capability="host-bridge-440bx"))
    key = ovmf_build.build_key(SOURCE)
    assert len(key) == 16 and key == ovmf_build.build_key(SOURCE)
    assert ovmf_build.build_key("2022.11-6+deb12u3") != key
    assert ovmf_build.build_key(SOURCE, ovmf_build.DEFINES + ("SMM_REQUIRE=TRUE",)) != key
    (series / "0001-a.patch").write_text(PATCH.format(capability="host-bridge-440bx") + " \n")
    assert ovmf_build.build_key(SOURCE) != key
    changed = ovmf_build.build_key(SOURCE)
    (series / "0002-b.patch").write_text(PATCH.format(capability="piix4-any-slot"))
    assert ovmf_build.build_key(SOURCE) != changed


def test_capabilities_come_from_patch_headers_and_defines_only(series):
    (series / "0001-a.patch").write_text(PATCH.format(capability="host-bridge-440bx"))
    (series / "0002-b.patch").write_text(PATCH.format(capability="piix4-any-slot"))
    found = ovmf_build.capabilities(("FD_SIZE_4MB", "PVSCSI_ENABLE=TRUE", "TPM2_ENABLE=FALSE"))
    assert found == ("host-bridge-440bx", "piix4-any-slot", "boot-pvscsi", *ovmf_build.BASE_CAPABILITIES)
    assert "not-a-header-line" not in found and "tpm2" not in found


def test_a_patch_with_an_unbounded_header_is_refused(series):
    (series / "0001-a.patch").write_text("x" * (ovmf_build.MAX_HEADER + 1) + "\n---\n")
    with pytest.raises(ImageError, match="0001-a.patch: header longer than"):
        ovmf_build.capabilities()


def test_the_manifest_round_trips_and_a_foreign_or_broken_one_is_no_build(tmp_path):
    build = OvmfBuild(tmp_path / "guestcompat-ovmf-0123456789abcdef", SOURCE, ("edk2-2022.11/0001-a.patch sha256:0",),
                      ovmf_build.DEFINES, ("host-bridge-440bx", "boot-pvscsi"), 412.5, ("a note",))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(build.manifest()))
    assert ovmf_build.read_manifest(manifest) == build
    assert build.code.name == "OVMF_CODE_4M.fd" and build.vars.name == "OVMF_VARS_4M.fd"
    assert "Debian edk2 2022.11-6+deb12u2" in build.summary() and "boot-pvscsi" in build.summary()
    manifest.write_text(json.dumps({**build.manifest(), "format": ovmf_build.FORMAT + 1}))
    assert ovmf_build.read_manifest(manifest) is None
    manifest.write_text("{not json")
    assert ovmf_build.read_manifest(manifest) is None
    assert ovmf_build.read_manifest(tmp_path / "missing.json") is None


def test_find_build_wants_the_published_images_of_this_key(tmp_path, monkeypatch):
    monkeypatch.setenv("GUESTCOMPAT_CACHE", str(tmp_path))
    monkeypatch.setattr(ovmf_build, "source_version", lambda: SOURCE)
    final = tmp_path / "ovmf" / f"{ovmf_build.NAME}-{ovmf_build.build_key(SOURCE)}"
    final.mkdir(parents=True)
    build = OvmfBuild(final, SOURCE, ovmf_build.patch_list(), ovmf_build.DEFINES, ovmf_build.capabilities(), 1.0)
    (final / "manifest.json").write_text(json.dumps(build.manifest()))
    assert ovmf_build.find_build() is None                       # manifest without its images
    build.code.write_bytes(b"\0" * 16)
    build.vars.write_bytes(b"\0" * 16)
    assert ovmf_build.find_build() == build
    monkeypatch.setattr(ovmf_build, "source_version", lambda: "2022.11-7")
    assert ovmf_build.find_build() is None                       # another source version: another key


def test_the_series_gives_what_the_440bx_layout_needs_and_each_patch_says_what_and_why():
    patches = ovmf_build.patch_files(ovmf_build.SERIES)
    assert patches, "images/patches/edk2-2022.11 is empty"
    for patch in patches:
        head = patch.read_text().split("\n---\n")[0]
        assert "What:" in head and "Why:" in head and ovmf_build.patch_capabilities(patch), patch.name
    needs = {need for machine in load_catalog().machines.values() for layout in machine.layouts
             for need in layout.firmware_needs.get("efi", ())}
    assert needs and needs <= set(ovmf_build.capabilities())
    assert {"boot-pvscsi", "boot-mpt-scsi", "secure-boot", "tpm2"} <= set(ovmf_build.capabilities())


def test_the_build_environment_needs_no_shell_and_routes_gcc_through_ccache(tmp_path):
    tree = tmp_path / "edk2"
    env = ovmf_build.build_environment(tree, tmp_path / "toolchain")
    assert env["WORKSPACE"] == str(tree) and env["CONF_PATH"] == str(tree / "Conf")
    assert env["PATH"].split(":")[0] == str(tree / "BaseTools" / "BinWrappers" / "PosixLike")
    assert env["GCC5_BIN"] == f"{tmp_path / 'toolchain'}/" and env["CCACHE_BASEDIR"] == str(tree)
    assert "GCC5_BIN" not in ovmf_build.build_environment(tree, None)


def test_without_the_ovmf_package_there_is_no_build_and_building_says_why(monkeypatch):
    def missing(package, label="patched QEMU"):
        raise ImageError(f"{label}: {package} is not installed (run `make setup`)")

    monkeypatch.setattr(ovmf_build, "installed_source_version", missing)
    assert ovmf_build.find_build() is None
    with pytest.raises(ImageError, match="guestcompat's OVMF: ovmf is not installed"):
        ovmf_build.ensure_build()
