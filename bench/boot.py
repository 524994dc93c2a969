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
    .venv/bin/python bench/boot.py --breakdown           # where each path's time goes, phase by phase

``--breakdown`` boots each profile on three paths in turn (harness, naive,
and a bare machine: the same profile without its PCI/VIO devices and disks,
harness path) and prints the median of every phase (harness/phases.py):
the harness's own work (capability probe, compile, image lookup, SSDT,
parse, compare), QEMU's start, the firmware, the kernel up to /init,
/init's module loading, each probe step and each guest tool, the frame;
then the ratios naive/harness and harness/bare per phase, and the slowest
initcalls of one extra harness-path boot with ``initcall_debug`` (its whole
kernel log comes back in the document's ``timing/kernel_log``). "verdict" is
compile to verdict, harness included: what ``guestcompat run`` costs after
Python has started.

On ppc64 the harness path is QEMU's Virtual Open Firmware (``x-vof=on``)
and the naive path SLOF, the pseries default; kernel and command line are
the same.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.detection.payload import probe_payload
from guestcompat.emulation.capabilities import capabilities_for
from guestcompat.emulation import arches
from guestcompat.emulation.arches.base import ArchStrategy
from guestcompat.emulation.compiler import CompiledMachine, compile_profile
from guestcompat.emulation.target import Target
from guestcompat.errors import GuestcompatError
from guestcompat.harness import phases as ph
from guestcompat.harness.compare import compare
from guestcompat.harness.qemu_runner import BootImage, BootResult, boot
from guestcompat.harness.run import RUN_FLAG, check_origin, new_nonce
from guestcompat.images.build import ImageSpec, ensure_image
from guestcompat.profiles.loader import load
from guestcompat.profiles.model import Pci, Profile, Vio


@dataclass(frozen=True)
class BootPath:
    """One way to boot the same machine: kernel form and extra kernel words."""

    name: str
    kernel_form: str | None   # None: the strategy's own
    plain_cmdline: bool   # True: drop the harness's speed arguments
    firmware: str | None = None   # platform.firmware to compile with (None: the profile's)
    extra_cmdline: tuple[str, ...] = ()   # kernel words appended (--try)
    drop_cmdline: tuple[str, ...] = ()   # kernel words of the strategy's left out (--ablation)
    bare: bool = False   # boot the profile without its PCI/VIO devices and disks


def variant(arch: ArchStrategy, path: BootPath) -> ArchStrategy:
    """The arch strategy with the kernel form and command line of *path*."""
    base = type(arch)

    class Variant(base):  # type: ignore[misc, valid-type]
        kernel_form = path.kernel_form or base.kernel_form

        def kernel_cmdline(self) -> list[str]:
            words = base.kernel_cmdline(self)
            words = [f"console={self.console}", "quiet"] if path.plain_cmdline else words
            return [*(w for w in words if w not in path.drop_cmdline), *path.extra_cmdline]

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


def bare(profile: Profile) -> Profile:
    """*profile* without PCI bridges, PCI and VIO devices and disks: the machine QEMU builds anyway,
    with the profile's identity (SMBIOS, CPU, backdoor) — the floor a profile's devices add to."""
    return profile.model_copy(update={"pci": Pci(), "vio": Vio(), "disks": ()})


def compile_for(profile: Profile, target: Target, path: BootPath, caps=None) -> CompiledMachine:
    """The machine as *path* boots it (another firmware when the path names one)."""
    if path.firmware is not None:
        profile = profile.model_copy(update={"platform": profile.platform.model_copy(
            update={"firmware": path.firmware})})
    if path.bare:
        profile = bare(profile)
    return compile_profile(profile, target, capabilities=caps)


def prepare(compiled: CompiledMachine, path: BootPath, say: Callable[[str], None]) -> BootImage:
    """The image and command line *path* boots *compiled* with (built once, before any timed boot)."""
    arch = variant(compiled.arch, path)
    image = ensure_image(ImageSpec(arch=arch, modaliases=compiled.modaliases, payload=probe_payload(arch)),
                         progress=lambda m: say(f"  image: {m}"))
    return BootImage(image.kernel, image.initrd,
                     (*arch.kernel_cmdline(), *image.cmdline.split(), *compiled.guest_cmdline))


def ablation_paths(arch: ArchStrategy, harness: BootPath, tries: list[str], changes: bool) -> list[BootPath]:
    """Each change alone (``changes``): the x86 boot path's two (PVH, acpi=noirq) and the harness path
    without each of the strategy's speed-only kernel words (``speed_cmdline``); then the harness path
    with each ``--try`` word."""
    paths = list(ABLATION) if changes and arch.name == "x86_64" else []
    paths += [BootPath(f"harness without {w}", harness.kernel_form, harness.plain_cmdline, harness.firmware,
                       drop_cmdline=(w,)) for w in (arch.speed_cmdline if changes else ())]
    paths += [BootPath(f"harness + {w}", harness.kernel_form, harness.plain_cmdline, harness.firmware,
                       extra_cmdline=tuple(w.split())) for w in tries]
    return paths


@dataclass(frozen=True)
class TimedBoot:
    """One boot of the breakdown: its phases, compile-to-verdict and launch-to-fingerprint seconds."""

    phases: list[ph.Phase]
    verdict: float
    from_launch: float
    result: BootResult


def timed_boot(profile: Profile, target: Target, path: BootPath, extra: tuple[str, ...] = ()) -> TimedBoot:
    """What ``guestcompat run`` does (capabilities, compile, image, boot, parse, compare), each step timed."""
    t0 = time.monotonic()
    caps = capabilities_for(arches.get(target.arch).binary(target))
    t1 = time.monotonic()
    compiled = compile_for(profile, target, path, caps)
    t2 = time.monotonic()
    arch = variant(compiled.arch, path)
    image = ensure_image(ImageSpec(arch=arch, modaliases=compiled.modaliases, payload=probe_payload(arch)))
    t3 = time.monotonic()
    nonce = new_nonce()
    image_boot = BootImage(image.kernel, image.initrd,
                           (*arch.kernel_cmdline(), *image.cmdline.split(), *compiled.guest_cmdline,
                            *extra, f"{RUN_FLAG}={nonce}"))
    lines: list[tuple[float, str]] = []
    result = boot(compiled, image_boot, timeout=240, on_console=lambda ln: lines.append((time.monotonic(), ln)))
    t4 = time.monotonic()
    check_origin(result.document, nonce)
    fingerprint = Fingerprint.from_document(result.document)
    t5 = time.monotonic()
    compare(compiled.report, fingerprint)
    t6 = time.monotonic()
    before = [ph.Phase("harness: capability probe (cached)", t1 - t0, "harness"),
              ph.Phase("harness: compile", t2 - t1, "harness"),
              ph.Phase("harness: image lookup", t3 - t2, "harness")]
    after = [ph.Phase("harness: parse fingerprint", t5 - t4, "harness"),
             ph.Phase("harness: compare", t6 - t5, "harness")]
    assert result.marks["closed"] <= t4
    return TimedBoot(ph.boot_phases(result.marks, lines, result.document, before, after), t6 - t0,
                     result.seconds_from_launch, result)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _cell(value: float | None, fmt: str = "6.2f") -> str:
    return " " * len(format(0.0, fmt)) if value is None or value != value else format(value, fmt)


def breakdown(profile: Profile, target: Target, paths: list[tuple[str, BootPath]], runs: int,
              say: Callable[[str], None]) -> dict:
    """Boot every path ``runs`` times, interleaved, and print the table of phase medians."""
    boots: dict[str, list[TimedBoot]] = {label: [] for label, _ in paths}
    for i in range(runs):
        for label, path in paths:
            tb = timed_boot(profile, target, path)
            boots[label].append(tb)
            say(f"  run {i + 1}/{runs} {label}: verdict {tb.verdict:.2f} s, launch to fingerprint "
                f"{tb.from_launch:.2f} s")
    order: list[str] = []
    groups: dict[str, str] = {}
    per: dict[str, dict[str, list[float]]] = {label: {} for label in boots}
    for label, tbs in boots.items():
        for tb in tbs:
            for phase in tb.phases:
                if phase.name not in groups:
                    order.append(phase.name)
                    groups[phase.name] = phase.group
                per[label].setdefault(phase.name, []).append(phase.seconds)
    medians = {label: {name: _median(v) for name, v in rows.items()} for label, rows in per.items()}
    labels = [label for label, _ in paths]
    width = max(len(n) for n in order + ["compile to verdict (median)"])
    head = "".join(f"{lab:>9}" for lab in labels)
    print(f"\n{profile.name} on {target}, median of {runs} boots per path (seconds):")
    print(f"  {'phase':<{width}} {head}   naive/harness  harness/bare")

    def row(name: str, values: dict[str, float | None]) -> str:
        cells = "".join(f"{_cell(values.get(lab), '9.3f')}" for lab in labels)
        h, n, b = values.get("harness"), values.get("naive"), values.get("bare")
        r1 = f"{n / h:13.2f}x" if h and n and h > 0.005 else " " * 14
        r2 = f"{h / b:13.2f}x" if h and b and b > 0.005 else " " * 14
        return f"  {name:<{width}} {cells} {r1} {r2}"

    for name in order:
        print(row(name, {lab: medians[lab].get(name) for lab in labels}))
    print(row("compile to verdict (median)", {lab: _median([tb.verdict for tb in boots[lab]]) for lab in labels}))
    print(row("QEMU launch to fingerprint (median)",
              {lab: _median([tb.from_launch for tb in boots[lab]]) for lab in labels}))
    return {"profile": profile.name, "target": str(target), "runs": runs,
            "boots": {lab: [{"verdict": tb.verdict, "from_launch": tb.from_launch,
                             "phases": [[p.name, p.seconds, p.group] for p in tb.phases]} for tb in tbs]
                      for lab, tbs in boots.items()},
            "medians": medians}


INITCALL_WORDS = ("initcall_debug", "guestcompat.klog=full", "log_buf_len=4M")


def initcall_report(profile: Profile, target: Target, path: BootPath, top: int) -> dict:
    """One extra boot with ``initcall_debug``: the slowest initcalls and when /init ran."""
    tb = timed_boot(profile, target, path, INITCALL_WORDS)
    log = tb.result.document.get("timing", {}).get("kernel_log") or ""
    calls = ph.initcalls(log)
    run_init = ph.run_init_time(log)
    total = sum(c.seconds for c in calls)
    print(f"\n{profile.name}, {path.name}, one boot with initcall_debug (launch to fingerprint "
          f"{tb.from_launch:.2f} s): Run /init at {run_init if run_init is not None else float('nan'):.2f} s "
          f"kernel time, {len(calls)} initcalls {total:.2f} s in all; slowest {top}:")
    for call in calls[:top]:
        print(f"  {call.seconds:7.3f} s  {call.name}")
    return {"run_init": run_init, "initcalls": [[c.name, c.seconds] for c in calls[:50]], "total": total}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", choices=sorted(ARCHES), default="x86_64")
    ap.add_argument("--profile", default=None, help="default: vmware/esxi-6.5 (x86_64), power/pseries-vscsi (ppc64)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ablation", action="store_true",
                    help="also time each change on its own (with --breakdown: as columns A1, A2, ...)")
    ap.add_argument("--json", metavar="FILE", help="write the raw times as JSON")
    ap.add_argument("--breakdown", action="store_true",
                    help="median of every phase per path (harness, naive, bare machine) and the slowest initcalls")
    ap.add_argument("--initcalls", type=int, default=12, help="--breakdown: how many initcalls to list")
    ap.add_argument("--try", dest="tries", action="append", default=[], metavar="WORDS",
                    help="also time the harness path with these kernel words added (repeatable)")
    ap.add_argument("--qemu", default=None, help="QEMU binary or build alias (stock, patched); default: the target's")
    args = ap.parse_args(argv)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    default_profile, target, harness, naive = ARCHES[args.arch]
    args.profile = args.profile or default_profile
    if args.qemu:
        target = Target(target.arch, target.machine, target.accel, qemu_binary=args.qemu)
    if args.breakdown:
        try:
            profile = load(args.profile)
            paths = [("harness", harness), ("naive", naive),
                     ("bare", BootPath(f"{harness.name}, bare machine", harness.kernel_form, harness.plain_cmdline,
                                       harness.firmware, bare=True))]
            extra = ablation_paths(arches.get(target.arch), harness, args.tries, args.ablation)
            paths += [(f"A{i + 1}", path) for i, path in enumerate(extra)]
            for i, path in enumerate(extra):
                print(f"A{i + 1}: {path.name}")
            say(f"breakdown: {args.profile}, {args.runs} boots per path, interleaved")
            report = breakdown(profile, target, paths, args.runs, say)
            report["initcall_boot"] = initcall_report(profile, target, harness, args.initcalls)
        except GuestcompatError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(report, fh, indent=2)
        return 0
    try:
        profile = load(args.profile)
        strategy = arches.get(target.arch)
        paths = [harness, naive, *ablation_paths(strategy, harness, args.tries, args.ablation)]
        prepared = []
        for path in paths:
            compiled = compile_for(profile, target, path)
            prepared.append((path, compiled, prepare(compiled, path, say)))
        times: dict[str, list[float]] = {path.name: [] for path in paths}
        for i in range(args.runs):   # interleaved: load drifts more than most effects
            for path, compiled, image_boot in prepared:
                result = boot(compiled, image_boot, timeout=240)
                times[path.name].append(result.seconds_from_launch)
                say(f"  {path.name}: run {i + 1}/{args.runs}: {result.seconds_from_launch:.2f} s")
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
