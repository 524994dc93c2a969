"""Smaller pieces of the image: /init, payload checks, busybox applets, key, cache."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from guestcompat.errors import ImageError
from guestcompat.images import cache
from guestcompat.images.build import image_key
from guestcompat.images.busybox import FALLBACK_APPLETS, applets, applets_from_binary
from guestcompat.images.debian import PackageRef
from guestcompat.images.init import MODULES_LIST, render_init
from guestcompat.images.rootfs import check_payload, rootfs_entries

BUSYBOX = Path(shutil.which("busybox") or "/usr/bin/busybox")


def test_init_runs_entry_and_powers_off() -> None:
    text = render_init("/probe/my probe.sh")
    assert text.startswith("#!/bin/sh\n")
    assert "'/probe/my probe.sh' </dev/null >/dev/console 2>&1" in text
    assert f"done < {MODULES_LIST}" in text
    assert 'echo "guestcompat: insmod failed: $m"' in text
    assert text.rstrip().endswith("exec poweroff -f")
    for fs in ("proc proc /proc", "sysfs sysfs /sys", "devtmpfs devtmpfs /dev"):
        assert f"mount -t {fs}" in text
    # Lean: no subshells or pipes (each would fork under TCG).
    assert "$(" not in text and "`" not in text and "|" not in text.replace("||", "")


def test_init_script_is_valid_sh(tmp_path: Path) -> None:
    script = tmp_path / "init"
    script.write_text(render_init("/probe/probe.sh"))
    subprocess.run([str(BUSYBOX), "sh", "-n", str(script)], check=True)


@pytest.mark.parametrize("files,entry,match", [
    ({"/probe/p.sh": (b"", 0o644)}, "/probe/p.sh", "not executable"),
    ({"/probe/p.sh": (b"", 0o755)}, "/probe/other.sh", "not one of the payload files"),
    ({"/probe/p.sh": (b"", 0o755), "/init": (b"", 0o755)}, "/probe/p.sh", "collides with /init"),
    ({"/probe/p.sh": (b"", 0o755), "/bin/sh": (b"", 0o755)}, "/probe/p.sh", "collides with /bin"),
    ({"probe/p.sh": (b"", 0o755)}, "probe/p.sh", "not absolute"),
])
def test_payload_checks(files: dict, entry: str, match: str) -> None:
    with pytest.raises(ImageError, match=match):
        check_payload(files, entry)


def test_rootfs_lists_modules_in_load_order(tmp_path: Path) -> None:
    import lzma
    (tmp_path / "a.ko").write_bytes(b"A")
    (tmp_path / "b.ko.xz").write_bytes(lzma.compress(b"B"))
    entries = rootfs_entries(
        busybox=BUSYBOX, applets=("sh", "busybox", "[["), release="9.9",
        modules=[("kernel/b.ko.xz", tmp_path / "b.ko.xz"), ("kernel/a.ko", tmp_path / "a.ko")],
        payload_files={"/probe/p.sh": (b"#!/bin/sh\n", 0o755)}, init_text="#!/bin/sh\n")
    by_path = {e.path.lstrip("/"): e for e in entries}
    assert by_path[MODULES_LIST.lstrip("/")].data == (
        b"/lib/modules/9.9/kernel/b.ko\n/lib/modules/9.9/kernel/a.ko\n")
    assert by_path["lib/modules/9.9/kernel/b.ko"].data == b"B"  # decompressed for insmod
    assert by_path["bin/sh"].target == "busybox" and by_path["bin/[["].target == "busybox"
    assert by_path["dev/console"].rdev == (5, 1)
    assert by_path["init"].mode == 0o755


def test_applets_read_from_the_binary_match_busybox_list() -> None:
    listed = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                            check=True).stdout.split()
    assert applets_from_binary(BUSYBOX.read_bytes()) == tuple(sorted(listed))
    names, from_table = applets(BUSYBOX.read_bytes())
    assert from_table and {"sh", "insmod", "poweroff", "mount"} <= set(names)


def test_applets_fallback_and_missing_required() -> None:
    assert applets(b"\0" * 1000) == (FALLBACK_APPLETS, False)
    no_insmod = b"xx[\0[[\0ash\0cat\0mount\0sh\0\x01\x02"
    with pytest.raises(ImageError, match="insmod"):
        applets(no_insmod)


@dataclass(frozen=True)
class Arch:
    name: str = "x86_64"
    debian_arch: str = "amd64"
    kernel_package: str = "linux-image-amd64"
    kernel_form: str = "pvh-vmlinux"


def test_image_key_covers_every_input() -> None:
    base = dict(arch=Arch(), form="pvh-vmlinux", kernel=PackageRef("k", "1", "amd64"),
                busybox=PackageRef("b", "1", "amd64"), modules=["a.ko", "b.ko"],
                payload_hash="p", init_text="i", extra_cmdline="")
    key = image_key(**base)
    assert image_key(**{**base, "modules": ["b.ko", "a.ko"]}) == key  # a set, not an order
    variants = [
        {"arch": Arch(name="other")}, {"form": "bzimage"}, {"kernel": PackageRef("k", "2", "amd64")},
        {"busybox": PackageRef("b", "2", "amd64")}, {"modules": ["a.ko"]},
        {"payload_hash": "q"}, {"init_text": "j"}, {"extra_cmdline": "x=1"},
    ]
    keys = {image_key(**{**base, **v}) for v in variants}
    assert key not in keys and len(keys) == len(variants)


def _slow_builder(final: str, log: str) -> None:
    path = Path(final)
    with cache.locked(path.parent / "x.lock"):
        if path.exists():
            return
        with cache.building_dir(path) as tmp:
            (tmp / "part").write_text("1")
            time.sleep(0.3)
            with open(log, "a") as fh:
                fh.write("built\n")


def test_concurrent_builders_build_once(tmp_path: Path) -> None:
    final, log = tmp_path / "art", tmp_path / "log"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_slow_builder, args=(str(final), str(log))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(10)
    assert log.read_text() == "built\n"
    assert (final / "part").read_text() == "1"
    assert not list(tmp_path.glob(".tmp-*"))


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "art"
    with pytest.raises(RuntimeError):
        with cache.building_dir(final) as tmp:
            (tmp / "half").write_text("x")
            raise RuntimeError("boom")
    assert not final.exists() and list(tmp_path.iterdir()) == []


def test_sweep_removes_only_abandoned_scratch(tmp_path: Path) -> None:
    with cache.scratch_dir(tmp_path, "live") as live:
        (live / "f").write_text("x")
        # A killed builder: dir + lock file, lock not held, old.
        dead = tmp_path / ".tmp-dead-abc"
        dead.mkdir()
        (dead / "big").write_text("x")
        lock = tmp_path / ".tmp-dead-abc.lock"
        lock.touch()
        os.utime(lock, (time.time() - 3600, time.time() - 3600))
        os.utime(next(tmp_path.glob(".tmp-live-*.lock")), (time.time() - 3600,) * 2)
        cache.sweep_scratch(tmp_path)
        assert not dead.exists() and not lock.exists()
        assert (live / "f").exists(), "a scratch dir in use must survive"
    assert list(tmp_path.iterdir()) == []
