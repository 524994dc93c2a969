"""One run: compile a profile, get its image, boot it, read the fingerprint, compare.

This is the main job (``guestcompat run``) and what the tests and the
benchmark call; the CLI only renders its :class:`RunOutcome`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.detection.payload import probe_payload
from guestcompat.emulation import arches
from guestcompat.emulation.compiler import CompiledMachine, compile_profile
from guestcompat.emulation.fidelity import FidelityReport
from guestcompat.emulation.report import to_json as compiled_json
from guestcompat.emulation.target import Target
from guestcompat.harness.compare import CheckResult, Status, compare
from guestcompat.harness.qemu_runner import BootImage, BootResult, boot_async
from guestcompat.images.build import GuestImage, ImageSpec, ensure_image
from guestcompat.errors import GuestcompatError, ProbeError, RunError
from guestcompat.profiles.loader import list_profiles, load

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunOutcome:
    compiled: CompiledMachine
    image: GuestImage
    boot: BootResult
    fingerprint: Fingerprint
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return not any(c.status is Status.FAIL for c in self.checks)

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for check in self.checks:
            counts[check.status.value] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": "pass" if self.passed else "mismatch",
            "counts": self.counts(),
            "seconds_to_fingerprint": round(self.boot.seconds_to_document, 3),
            "seconds_from_launch": round(self.boot.seconds_from_launch, 3),
            "compiled": compiled_json(self.compiled),
            "image": {"key": self.image.key, "kernel_version": self.image.kernel_version,
                      "packages": dict(self.image.packages)},
            "checks": [c.to_json() for c in self.checks],
            "fingerprint": json.loads(self.fingerprint.to_json()),
            "query_pci": self.boot.query_pci,
            "screenshot": str(self.boot.screenshot) if self.boot.screenshot else None,
            **({"guestinfo_store": self.boot.guestinfo} if self.boot.guestinfo is not None else {}),
        }


def image_for(compiled: CompiledMachine, progress: Progress | None = None) -> GuestImage:
    arch = compiled.arch
    spec = ImageSpec(arch=arch, modaliases=compiled.modaliases, payload=probe_payload(arch),
                     kernel_form=compiled.kernel_form or None)
    return ensure_image(spec, progress=progress)


#: Kernel command-line word carrying the run's nonce; the probe records it as the document's ``run``.
RUN_FLAG = "guestcompat.run"


def new_nonce() -> str:
    """A fresh per-boot nonce: 128 random bits, as hex."""
    return secrets.token_hex(16)


def boot_image(compiled: CompiledMachine, image: GuestImage, nonce: str | None = None) -> BootImage:
    return BootImage(image.kernel, image.initrd,
                     (*compiled.arch.kernel_cmdline(), *image.cmdline.split(), *compiled.guest_cmdline,
                      *((f"{RUN_FLAG}={nonce}",) if nonce else ())))


def check_origin(document: dict, nonce: str | None) -> None:
    """The document must carry this boot's nonce: one printed by an earlier boot, replayed into the console
    log or forged by something that did not read this boot's command line is not this guest's answer.
    (A process *inside* the guest that can read /proc/cmdline and write the console can still forge one:
    the nonce proves the boot, not the process; docs/design.md, README "Safety".)"""
    if nonce is None:
        return
    got = document.get("run")
    if got != nonce:
        raise ProbeError(f"the probe document on the console is not from this boot: it carries run={str(got)[:40]!r}, "
                         f"this boot's nonce is {nonce!r} (a stale or forged document on the serial console)")


def refuse_blocked(compiled: CompiledMachine) -> None:
    """RunError before any image or boot when a blocked feature forbids running this target."""
    refused = [b for b in compiled.blocked if b.effect == "no-run"]
    if refused:
        raise RunError(f"{compiled.profile.name} on {compiled.target} is blocked: " + "; ".join(
            f"{b.requires or b.feature}: {b.message(compiled.profile, compiled.target.arch)}" for b in refused))


def run_compiled(compiled: CompiledMachine, *, timeout: float = 120.0, progress: Progress | None = None,
                 backend: str = "qemu", uri: str | None = None, screenshot: Path | None = None) -> RunOutcome:
    """``backend``: ``qemu`` runs the compiled argv directly; ``libvirt`` renders it as domain XML and
    boots it through libvirt (``uri``, or an embedded driver in a throwaway root). ``screenshot``: where
    the guest's VGA screen is kept (qemu backend; default: harness/screenshot.py's directory)."""
    refuse_blocked(compiled)
    image = image_for(compiled, progress)
    if backend != "libvirt":
        return asyncio.run(run_with_image_async(compiled, image, timeout=timeout, progress=progress,
                                                screenshot=screenshot))
    return run_with_image_libvirt(compiled, image, uri=uri, timeout=timeout, progress=progress)


def run_with_image_libvirt(compiled: CompiledMachine, image: GuestImage, *, uri: str | None = None,
                           timeout: float = 120.0, progress: Progress | None = None,
                           cancel: threading.Event | None = None) -> RunOutcome:
    """Boot an already built image through libvirt at ``uri`` and compare (a matrix host worker's run)."""
    from guestcompat.emulation.libvirt_xml import libvirt_report
    from guestcompat.harness.libvirt_runner import boot_libvirt

    refuse_blocked(compiled)
    say = progress or (lambda _msg: None)
    say("booting the guest through libvirt")
    nonce = new_nonce()
    result = boot_libvirt(compiled, boot_image(compiled, image, nonce), uri=uri, timeout=timeout, cancel=cancel)
    return _judge(compiled, image, result, libvirt_report(compiled), say, nonce)


async def run_with_image_async(compiled: CompiledMachine, image: GuestImage, *, timeout: float = 120.0,
                               progress: Progress | None = None, screenshot: Path | None = None) -> RunOutcome:
    """Boot an already built image and compare: what many runs sharing one event loop call
    (``guestcompat matrix``), where images are built once up front, not per run."""
    refuse_blocked(compiled)
    say = progress or (lambda _msg: None)
    say("booting the guest")
    nonce = new_nonce()
    result = await boot_async(compiled, boot_image(compiled, image, nonce), timeout=timeout, screenshot=screenshot)
    return _judge(compiled, image, result, compiled.report, say, nonce)


def _judge(compiled: CompiledMachine, image: GuestImage, result: BootResult, report: FidelityReport,
           say: Progress, nonce: str | None = None) -> RunOutcome:
    check_origin(result.document, nonce)
    say("comparing")
    fingerprint = Fingerprint.from_document(result.document)
    checks = compare(report, fingerprint)
    return RunOutcome(compiled, image, result, fingerprint, tuple(checks))


def run_profile(name: str, target: Target, *, timeout: float = 120.0, progress: Progress | None = None,
                backend: str = "qemu", uri: str | None = None, screenshot: Path | None = None,
                guestinfo: dict[str, str] | None = None) -> RunOutcome:
    """``guestinfo``: keys added to the profile's [guestinfo] for this run (``--guestinfo``)."""
    from guestcompat.profiles.guestinfo import with_guestinfo

    (progress or (lambda _msg: None))("compiling")
    compiled = compile_profile(with_guestinfo(load(name), guestinfo or {}), target)
    return run_compiled(compiled, timeout=timeout, progress=progress, backend=backend, uri=uri,
                        screenshot=screenshot)


def build_images_for_bundled(arch_names: Iterable[str] = (), progress: Progress | None = None) -> list[GuestImage]:
    """Build (or find cached) the image of every runnable bundled profile on its default target."""
    wanted = set(arch_names)
    images: dict[str, GuestImage] = {}
    for source in list_profiles():
        profile = load(source.name)
        if profile.abstract:
            continue
        for strategy in arches.all_strategies():
            if wanted and strategy.name not in wanted:
                continue
            target = arches.resolve_target(arch=strategy.name)
            try:
                compiled = compile_profile(profile, target)
            except GuestcompatError:
                continue  # not compilable for this architecture
            image = image_for(compiled, progress)
            images[image.key] = image
    return list(images.values())
