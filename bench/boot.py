#!/usr/bin/env python3
"""Boot-to-fingerprint time: the harness's boot path against the naive one.

The harness path is what `guestcompat run` does: the kernel unpacked to an
ELF vmlinux entered through PVH, and a kernel command line that keeps ACPI
out of INTx routing (see emulation/arches/x86_64.py).  The naive path is the
usual way to boot a Linux guest under QEMU: SeaBIOS loads the package's
compressed bzImage, default kernel arguments.  Everything else is the same:
same compiled machine, same initramfs modules, same probe, same QEMU.

Times are wall-clock from spawning QEMU to the probe's END line, boots run
one after the other (parallel boots would share the 2 cores and measure
each other).  Prints the median of each path and the ratio naive/harness.

    .venv/bin/python bench/boot.py                       # vmware/esxi-6.5, 5 boots each
    .venv/bin/python bench/boot.py --runs 3 --ablation   # also each change alone
    .venv/bin/python bench/boot.py --arch ppc64          # power/pseries-vscsi: VOF against SLOF

On ppc64 the harness path is QEMU's Virtual Open Firmware (``x-vof=on``)
and the naive path SLOF, the pseries default; kernel and command line are
the same.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

from guestcompat.detection.payload import probe_payload
from guestcompat.emulation.arches.base import ArchStrategy
from guestcompat.emulation.compiler import CompiledMachine, compile_profile
from guestcompat.emulation.target import Target
from guestcompat.errors import GuestcompatError
from guestcompat.harness.qemu_runner import BootImage, boot
from guestcompat.images.build import ImageSpec, ensure_image
from guestcompat.profiles.loader import load
from guestcompat.profiles.model import Profile


@dataclass(frozen=True)
class BootPath:
    """One way to boot the same machine: kernel form and extra kernel words."""

    name: str
    kernel_form: str | None   # None: the strategy's own
    plain_cmdline: bool   # True: drop the harness's speed arguments
    firmware: str | None = None   # platform.firmware to compile with (None: the profile's)


def variant(arch: ArchStrategy, path: BootPath) -> ArchStrategy:
    """The arch strategy with the kernel form and command line of *path*."""
    base = type(arch)

    class Variant(base):  # type: ignore[misc, valid-type]
        kernel_form = path.kernel_form or base.kernel_form

        def kernel_cmdline(self) -> list[str]:
            words = base.kernel_cmdline(self)
            return [f"console={self.console}", "quiet"] if path.plain_cmdline else words

    Variant.__name__ = f"{base.__name__}[{path.name}]"
    return Variant()


HARNESS = BootPath("harness (PVH vmlinux, acpi=noirq)", "pvh-vmlinux", plain_cmdline=False)
NAIVE = BootPath("naive (SeaBIOS + bzImage)", "bzimage", plain_cmdline=True)
PPC64_HARNESS = BootPath("harness (VOF, x-vof=on)", None, plain_cmdline=False, firmware="vof")
PPC64_NAIVE = BootPath("naive (SLOF)", None, plain_cmdline=False, firmware="slof")
#: per architecture: default profile, target, harness path, naive path
ARCHES = {
    "x86_64": ("vmware/esxi-6.5", Target("x86_64", "pc", "tcg"), HARNESS, NAIVE),
    "ppc64": ("power/pseries-vscsi", Target("ppc64", "pseries", "tcg"), PPC64_HARNESS, PPC64_NAIVE),
}
ABLATION = (
    BootPath("PVH vmlinux, default cmdline", "pvh-vmlinux", plain_cmdline=True),
    BootPath("SeaBIOS + bzImage, acpi=noirq", "bzimage", plain_cmdline=False),
)


def compile_for(profile: Profile, target: Target, path: BootPath) -> CompiledMachine:
    """The machine as *path* boots it (another firmware when the path names one)."""
    if path.firmware is not None:
        profile = profile.model_copy(update={"platform": profile.platform.model_copy(
            update={"firmware": path.firmware})})
    return compile_profile(profile, target)


def measure(compiled: CompiledMachine, path: BootPath, runs: int, say: Callable[[str], None]) -> list[float]:
    arch = variant(compiled.arch, path)
    image = ensure_image(ImageSpec(arch=arch, modaliases=compiled.modaliases, payload=probe_payload(arch)),
                         progress=lambda m: say(f"  image: {m}"))
    boot_image = BootImage(image.kernel, image.initrd,
                           (*arch.kernel_cmdline(), *image.cmdline.split(), *compiled.guest_cmdline))
    times = []
    for i in range(runs):
        result = boot(compiled, boot_image, timeout=240)
        times.append(result.seconds_from_launch)
        say(f"  {path.name}: run {i + 1}/{runs}: {result.seconds_from_launch:.2f} s")
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", choices=sorted(ARCHES), default="x86_64")
    ap.add_argument("--profile", default=None, help="default: vmware/esxi-6.5 (x86_64), power/pseries-vscsi (ppc64)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ablation", action="store_true", help="also time each change on its own")
    ap.add_argument("--json", metavar="FILE", help="write the raw times as JSON")
    args = ap.parse_args(argv)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    default_profile, target, harness, naive = ARCHES[args.arch]
    args.profile = args.profile or default_profile
    if args.ablation and args.arch != "x86_64":
        ap.error("--ablation times the x86 boot path's changes; ppc64 has one change (the firmware)")
    try:
        profile = load(args.profile)
        paths = [harness, naive, *(ABLATION if args.ablation else ())]
        times = {}
        for path in paths:
            say(f"{path.name}:")
            times[path.name] = measure(compile_for(profile, target, path), path, args.runs, say)
    except GuestcompatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    medians = {name: statistics.median(ts) for name, ts in times.items()}
    width = max(map(len, medians))
    print(f"boot-to-fingerprint, {args.profile}, {target}, median of {args.runs}:")
    for name, med in medians.items():
        ts = times[name]
        print(f"  {name:<{width}}  {med:6.2f} s   (min {min(ts):.2f}, max {max(ts):.2f})")
    print(f"  ratio naive/harness: {medians[naive.name] / medians[harness.name]:.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"profile": args.profile, "target": str(target), "runs": args.runs, "times": times, "medians": medians}, fh,
                      indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
