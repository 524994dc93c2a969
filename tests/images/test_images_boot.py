"""Integration: build the real amd64 image from Debian packages and boot it in QEMU.

Uses the real cache (``cache_root()``), so after the first run (or after
scripts/setup.sh) the build is a cache hit.  Needs the Debian apt sources
and qemu-system-x86_64; it fails, rather than skips, without them.
"""

from __future__ import annotations

import hashlib
import os
import selectors
import subprocess
import time
from dataclasses import dataclass, field

import pytest

from guestcompat.images import debian
from guestcompat.images.build import GuestImage, ImageSpec, ensure_image, list_images
from guestcompat.images.kernel import check_pvh
from guestcompat.images.modules import module_name

VMXNET3 = "pci:v000015ADd000007B0sv000015ADsd000007B0bc02sc00i00"
PVSCSI = "pci:v000015ADd000007C0sv000015ADsd000007C0bc01sc00i00"
DISK = "scsi:t-0x00"
PROBE = b"#!/bin/sh\necho @@HELLO\ncat /proc/cmdline\n"


@dataclass(frozen=True)
class X86:
    name: str = "x86_64"
    debian_arch: str = "amd64"
    kernel_package: str = "linux-image-amd64"
    kernel_form: str = "pvh-vmlinux"


@dataclass(frozen=True)
class Payload:
    files: dict = field(default_factory=lambda: {"/probe/probe.sh": (PROBE, 0o755)})
    entry: str = "/probe/probe.sh"
    content_hash: str = hashlib.sha256(PROBE).hexdigest()


SPEC = ImageSpec(arch=X86(), modaliases=(VMXNET3, PVSCSI, DISK), payload=Payload())


@pytest.fixture(scope="module")
def image() -> GuestImage:
    return ensure_image(SPEC)


def test_real_kernel_is_pvh_bootable(image: GuestImage) -> None:
    check_pvh(image.kernel)
    assert image.kernel_version.endswith("-amd64")
    assert any(n.startswith("linux-image-") for n in image.packages)
    assert "busybox-static" in image.packages


def test_load_order_for_vmware_devices(image: GuestImage) -> None:
    names = [module_name(m) for m in image.modules]
    assert {"vmw_pvscsi", "vmxnet3", "sd_mod"} <= set(names)
    assert len(names) == len(set(names))
    assert names.index("scsi_mod") < names.index("vmw_pvscsi")
    assert names.index("scsi_mod") < names.index("sd_mod")
    assert image.unmatched_aliases == ()


def test_cache_hit_runs_no_apt_and_no_tool(image: GuestImage,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def no_tools(argv, **_kw):  # type: ignore[no-untyped-def]
        raise AssertionError(f"cache hit ran {argv}")

    monkeypatch.setattr(debian, "run_tool", no_tools)
    monkeypatch.setattr(debian, "apt_get_download", no_tools)
    again = ensure_image(SPEC)  # its speed is measured by bench/, not asserted here (host load varies)
    assert again == image


def test_list_images_reads_image_json(image: GuestImage) -> None:
    listed = {i.key: i for i in list_images()}
    assert listed[image.key].modules == image.modules
    assert listed[image.key].kernel == image.kernel


@pytest.mark.boot
def test_boots_and_runs_the_probe(image: GuestImage) -> None:
    argv = ["qemu-system-x86_64", "-nodefaults", "-display", "none", "-machine", "pc,accel=tcg",
            "-m", "512", "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", f"console=ttyS0 quiet {image.cmdline}", "-serial", "stdio", "-no-reboot"]
    start = time.monotonic()
    deadline = start + 120
    lines: list[str] = []
    hello_at = None
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        buf = b""
        while time.monotonic() < deadline:
            if not sel.select(timeout=1):
                continue
            chunk = proc.stdout.read()
            if not chunk:  # QEMU exited (the guest powered off)
                break
            buf += chunk
            *done, buf = buf.split(b"\n")
            for raw in done:
                line = raw.decode(errors="replace").rstrip("\r")
                lines.append(line)
                if line == "@@HELLO" and hello_at is None:
                    hello_at = time.monotonic() - start
        lines.append(buf.decode(errors="replace"))
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = "\n".join(lines)
    assert hello_at is not None, f"no @@HELLO within 120 s:\n{output[-3000:]}"
    print(f"boot to @@HELLO: {hello_at:.2f} s")
    assert "guestcompat: insmod failed" not in output
    assert any(line.startswith("console=ttyS0 quiet") for line in lines), output[-2000:]
    assert proc.returncode == 0, f"QEMU exit {proc.returncode} (did poweroff fail?)"
