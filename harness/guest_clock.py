"""How fast a guest's clock runs against the host's: two NMIs over QMP, their printk times vs the host's.

On guestcompat's patched build a VMware guest trusts the TSC rate the
hypervisor states (GETHZ and CPUID 0x40000010; Linux skips its own calibration
on VMware), so a wrong rate would make its clock drift by the same ratio. The
guest waits after its probe (the live-migration re-run flag); an NMI injected
over QMP twice, some seconds apart, makes the kernel print a timestamped
"NMI received for unknown reason" line each time, compared with the host's
monotonic clock at the two QMP commands. The console's latency (a few ms)
bounds the precision. Used by bench/guest_clock.py and the patched-QEMU tests.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

from guestcompat.emulation.arches import resolve_target
from guestcompat.emulation.compiler import CompiledMachine, compile_profile
from guestcompat.harness.artefacts import build_all
from guestcompat.harness.qemu_instance import QemuInstance
from guestcompat.harness.qemu_runner import BootImage, launch_argv
from guestcompat.harness.run import boot_image, image_for
from guestcompat.images.build import GuestImage
from guestcompat.images.init import READY_LINE, RERUN_FLAG
from guestcompat.profiles.loader import load


@dataclass(frozen=True)
class ClockRun:
    """Seconds the guest's clock and the host's advanced between the two NMIs."""

    guest_seconds: float
    host_seconds: float
    binary: str

    @property
    def drift_ppm(self) -> float:
        return (self.guest_seconds / self.host_seconds - 1) * 1e6


PRINTK = re.compile(r"\[\s*(\d+\.\d+)\]")


async def measure_async(compiled: CompiledMachine, image: GuestImage, seconds: float) -> ClockRun:
    """The two-NMI measurement on an already compiled machine and built image (both may run
    ``asyncio.run`` themselves, e.g. an uncached capability probe, so never inside a loop)."""
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
    return ClockRun(g2 - g1, h2 - h1, compiled.argv[0])


def measure(name: str, qemu: str | None, seconds: float) -> ClockRun:
    """Boot profile *name* on build *qemu* and measure its guest's clock over *seconds*."""
    profile = load(name)
    compiled = compile_profile(profile, resolve_target(profile.platform.arch, qemu_binary=qemu))
    image = image_for(compiled, None)
    return asyncio.run(measure_async(compiled, image, seconds))
