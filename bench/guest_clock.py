"""How fast a VMware guest's clock runs against the host's, on stock and on patched QEMU.

On the patched build the guest trusts the TSC rate the hypervisor states
(GETHZ; Linux skips its own calibration on VMware), so a wrong rate would make
its clock drift by the same ratio. This boots the profile with a guest that
waits after its probe (the live-migration re-run flag), injects an NMI over
QMP twice, ``--seconds`` apart, and compares the kernel's printk timestamps
of its two "NMI received for unknown reason" lines with the host's monotonic
clock at the two QMP commands.

    .venv/bin/python bench/guest_clock.py [--profile vmware/esxi-6.5] [--seconds 30] [--qemu stock patched]

Prints per build the guest seconds, host seconds, their ratio and the drift in
parts per million; the console's latency (a few ms) bounds the precision.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time

from guestcompat.emulation.arches import resolve_target
from guestcompat.emulation.compiler import compile_profile
from guestcompat.harness.artefacts import build_all
from guestcompat.harness.qemu_instance import QemuInstance
from guestcompat.harness.qemu_runner import BootImage, launch_argv
from guestcompat.harness.run import boot_image, image_for
from guestcompat.images.init import READY_LINE, RERUN_FLAG
from guestcompat.profiles.loader import load

PRINTK = re.compile(r"\[\s*(\d+\.\d+)\]")


async def _measure(name: str, qemu: str, seconds: float) -> tuple[float, float, str]:
    profile = load(name)
    compiled = compile_profile(profile, resolve_target(profile.platform.arch, qemu_binary=qemu))
    image = image_for(compiled, None)
    artefacts = await asyncio.to_thread(build_all, compiled.artefacts)
    boot = boot_image(compiled, image)
    cmdline = tuple(w for w in boot.cmdline if w != "quiet")
    waiting = BootImage(boot.kernel, boot.initrd, (*cmdline, f"{RERUN_FLAG}={compiled.arch.console}"))
    async with QemuInstance("clock", launch_argv(compiled, waiting, artefacts)) as guest:
        await guest.execute("cont")
        await guest.console.document(240, "the fingerprint")
        await guest.console.line(lambda ln: READY_LINE in ln, 60, READY_LINE)
        stamps = []
        for n in range(2):
            if n:
                await asyncio.sleep(seconds)
            host = time.monotonic()
            await guest.execute("inject-nmi")
            line = await guest.console.line(lambda ln: "NMI received for unknown reason" in ln, 30,
                                            "the kernel's NMI line")
            stamps.append((host, float(PRINTK.search(line)[1])))
    (h1, g1), (h2, g2) = stamps
    return g2 - g1, h2 - h1, compiled.argv[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="vmware/esxi-6.5")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--qemu", nargs="+", default=["stock", "patched"])
    args = parser.parse_args()
    for qemu in args.qemu:
        guest, host, binary = asyncio.run(_measure(args.profile, qemu, args.seconds))
        print(f"{args.profile} on {qemu} ({binary}): guest {guest:.4f} s, host {host:.4f} s, "
              f"ratio {guest / host:.6f}, drift {(guest / host - 1) * 1e6:+.0f} ppm")


if __name__ == "__main__":
    main()
