"""The multi-interface table (docs/multi-interface.md): what QEMU can present of the
VMware, KVM, Hyper-V and Xen interfaces under TCG, and what each detector concludes.

Two parts, both measured when the table is generated:

* presentations (profiles/catalog/interfaces.toml): each facet's QEMU options are
  given to the real QEMU binary, paused, no guest (``-S``, QMP ``quit``, started by
  guestcompat.qemu_process like every other QEMU), under each
  accelerator the catalogue lists; QEMU's acceptance or its refusal message is
  recorded.  Accepted-but-ignored options (hv-*, kvm=on under TCG) are shown by
  the booted combinations, whose guests still read TCG's CPUID signature.
* combinations (profiles/interfaces/*.toml): each is booted under TCG; the row
  records what the kernel, systemd-detect-virt, virt-what and vmware-checkvm
  printed in the guest and what each model (detection/models.py) predicts from
  the same fingerprint.  KVM is never started (KVM guests hang on this machine).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from guestcompat.detection import models
from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.emulation import arches
from guestcompat.emulation.capabilities import capabilities_for
from guestcompat.emulation.compiler import compile_profile
from guestcompat.errors import GuestcompatError, QemuStartError
from guestcompat.harness.run import image_for, run_with_image_async
from guestcompat.profiles.ifcatalog import INTERFACES, InterfaceCatalog, Presentation, load_interfaces
from guestcompat.profiles.loader import load
from guestcompat.qemu_process import QemuProcess

#: The catalogue's combinations are profiles of the default architecture, compiled for its default target.
TARGET = arches.resolve_target()
DETECTORS = ("linux", "systemd-detect-virt", "virt-what", "vmware-checkvm")
REGENERATE = "guestcompat interfaces --markdown --output docs/multi-interface.md"


@dataclass(frozen=True)
class QemuAnswer:
    """Whether QEMU started with a presentation's options under one accelerator."""

    accel: str
    accepted: bool
    message: str
    """QEMU's refusal (or warning) on stderr, without the binary's name; "" when silent."""


@dataclass(frozen=True)
class PresentationRow:
    presentation: Presentation
    answers: tuple[QemuAnswer, ...]
    proof: str | None = None
    """What the guest booted with the options (``prove_on``) read, e.g. its CPUID signature."""


@dataclass(frozen=True)
class CombinationRow:
    """One booted combination: the real detectors' verdicts and the models' (None: did not run)."""

    profile: str
    presents: tuple[str, ...]
    signature: str | None
    hypervisor_bit: bool | None
    real: dict[str, str | None]
    model: dict[str, str | None]
    windows: str | None
    error: str | None = None

    @property
    def disagreeing(self) -> tuple[str, ...]:
        return tuple(d for d in DETECTORS if d in self.real and self.real[d] != self.model.get(d))


@dataclass(frozen=True)
class InterfaceTable:
    qemu: str
    presentations: tuple[PresentationRow, ...]
    combinations: tuple[CombinationRow, ...]


# ---------------------------------------------------------------------------
# QEMU, paused

def qemu_answer(binary: str, argv: Sequence[str], accel: str, timeout: float = 30.0) -> QemuAnswer:
    """Start ``binary`` paused with ``argv`` under ``accel``, then quit it over QMP."""
    return asyncio.run(_qemu_answer(binary, argv, accel, timeout))


async def _qemu_answer(binary: str, argv: Sequence[str], accel: str, timeout: float) -> QemuAnswer:
    base = [binary, "-nodefaults", "-display", "none", "-S", "-machine", TARGET.machine]
    if "-accel" not in argv:
        base += ["-accel", accel]
    qemu = QemuProcess([*base, *argv], purpose="interfaces", connect_timeout=timeout)
    try:
        async with qemu:
            pass  # it started and its monitor answers; leaving quits it
        returncode, stderr = qemu.returncode, list(qemu.stderr_tail)
    except QemuStartError as exc:
        if not exc.spawned:
            raise GuestcompatError(f"cannot start {binary}: {exc}") from None
        if exc.returncode is None:
            return QemuAnswer(accel, False, f"QEMU did not answer within {timeout:.0f} s")
        returncode, stderr = exc.returncode, list(exc.stderr)
    lines = [ln.split(": ", 1)[1] if ln.startswith(binary.rsplit("/", 1)[-1] + ":") or ln.startswith(binary + ":")
             else ln for ln in (ln.strip() for ln in stderr) if ln]
    lines = [ln for ln in lines if not ln.startswith("terminating on")]
    errors = [ln for ln in lines if not ln.startswith("warning:")]
    if returncode == 0 and errors:
        # e.g. vmbus-bridge: the error is reported at machine-done and QEMU runs on without the device
        lines.append("(QEMU kept running without it)")
    return QemuAnswer(accel, returncode == 0 and not errors, " / ".join(lines))


def probe_presentations(catalog: InterfaceCatalog, binary: str) -> tuple[PresentationRow, ...]:
    return tuple(PresentationRow(p, tuple(qemu_answer(binary, p.argv, accel) for accel in p.accels))
                 for p in catalog.presentation)


def with_cpu_flags(argv: Sequence[str], presentation: Presentation) -> tuple[str, ...]:
    """``argv`` with the presentation's ``-cpu`` flags appended to the compiled ``-cpu`` value
    (a second ``-cpu`` would replace the model, vendor and brand the profile chose)."""
    flags = presentation.argv[1].split(",", 1)[1] if "," in presentation.argv[1] else ""
    out = list(argv)
    where = out.index("-cpu") + 1
    if flags:
        out[where] = f"{out[where]},{flags}"
    return tuple(out)


async def _prove(presentation: Presentation, gate: asyncio.Semaphore, timeout: float,
                 progress: Callable[[str], None]) -> str:
    name = presentation.prove_on or ""
    try:
        compiled = compile_profile(load(name), TARGET)
        compiled = dataclasses.replace(compiled, argv=with_cpu_flags(compiled.argv, presentation))
        image = await asyncio.to_thread(image_for, compiled, lambda msg: progress(f"{name}: {msg}"))
        async with gate:
            progress(f"{name} + {presentation.argv[1]}: booting")
            outcome = await run_with_image_async(compiled, image, timeout=timeout)
    except GuestcompatError as exc:
        return f"boot of {name} with {presentation.argv[1]} failed: {exc}"
    fp = outcome.fingerprint
    return (f"booted {name} with `{' '.join(presentation.argv)}`: CPUID bit "
            f"{'set' if models.hypervisor_bit(fp) else 'clear'}, 0x40000000 reads {fp.hypervisor_signature!r}, "
            f"kernel: {models.kernel_says(fp) or 'no hypervisor line'}")


# ---------------------------------------------------------------------------
# booted combinations

def combination_row(profile: str, presents: Sequence[str], fp: Fingerprint | None, error: str | None = None
                    ) -> CombinationRow:
    if fp is None:
        return CombinationRow(profile, tuple(presents), None, None, {}, {}, None, error or "no fingerprint")
    verdicts = models.evaluate(fp)
    return CombinationRow(profile, tuple(presents), fp.hypervisor_signature, models.hypervisor_bit(fp),
                          models.real_verdicts(fp), {d: verdicts[d].result for d in DETECTORS},
                          verdicts["windows"].result, error)


async def _boot_all(names: Sequence[str], jobs: int, timeout: float,
                    progress: Callable[[str], None]) -> dict[str, tuple[Fingerprint | None, str | None]]:
    gate = asyncio.Semaphore(jobs)

    async def one(name: str) -> tuple[str, tuple[Fingerprint | None, str | None]]:
        try:
            compiled = compile_profile(load(name), TARGET)
            image = await asyncio.to_thread(image_for, compiled, lambda msg: progress(f"{name}: {msg}"))
            async with gate:
                progress(f"{name}: booting")
                outcome = await run_with_image_async(compiled, image, timeout=timeout)
            return name, (outcome.fingerprint, None)
        except GuestcompatError as exc:
            return name, (None, str(exc))

    return dict(await asyncio.gather(*(one(n) for n in names)))


def boot_combinations(names: Sequence[str], *, jobs: int = 2, timeout: float = 240.0,
                      progress: Callable[[str], None] = lambda _m: None) -> tuple[CombinationRow, ...]:
    catalog = load_interfaces()
    _check_names(catalog, names)
    booted = asyncio.run(_boot_all(names, jobs, timeout, progress))
    return tuple(combination_row(n, catalog.combination[n].presents, *booted[n]) for n in names)


async def _prove_all(presentations: Sequence[Presentation], jobs: int, timeout: float,
                     progress: Callable[[str], None]) -> dict[str, str]:
    gate = asyncio.Semaphore(jobs)
    found = await asyncio.gather(*(_prove(p, gate, timeout, progress) for p in presentations))
    return {p.key: proof for p, proof in zip(presentations, found)}


def _check_names(catalog: InterfaceCatalog, names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in catalog.combination]
    if unknown:
        raise GuestcompatError(f"not a combination of profiles/catalog/interfaces.toml: {', '.join(unknown)} "
                               f"(known: {', '.join(catalog.combination)})")


def build_table(names: Sequence[str] = (), *, jobs: int = 2, timeout: float = 240.0,
                progress: Callable[[str], None] = lambda _m: None) -> InterfaceTable:
    catalog = load_interfaces()
    _check_names(catalog, names)
    binary = arches.get(TARGET.arch).qemu_binary
    progress("asking QEMU about each presentation")
    rows = probe_presentations(catalog, binary)
    proofs = asyncio.run(_prove_all([r.presentation for r in rows if r.presentation.prove_on], jobs, timeout,
                                    progress))
    rows = tuple(dataclasses.replace(r, proof=proofs.get(r.presentation.key)) for r in rows)
    combos = boot_combinations(list(names) or list(catalog.combination), jobs=jobs, timeout=timeout,
                               progress=progress)
    return InterfaceTable(_qemu_version(binary), rows, combos)


def _qemu_version(binary: str) -> str:
    """What ``binary --version`` says first, from the (cached) capability probe."""
    caps = capabilities_for(binary)
    return f"QEMU emulator version {caps.version}" + (f" ({caps.package.strip()})" if caps.package.strip() else "")


# ---------------------------------------------------------------------------
# rendering

def _cell(text: str | None) -> str:
    if text is None:
        return "—"
    return (text or "(nothing)").replace("|", "\\|").replace("\n", " ")


def _verdict(row: CombinationRow, detector: str) -> str:
    if detector not in row.real:
        return "not run"
    real, model = row.real[detector], row.model.get(detector)
    if real == model:
        return f"{_cell(real)} ✓"
    return f"{_cell(real)} ✗ model: {_cell(model)}"


def render_markdown(table: InterfaceTable) -> str:
    out = ["# Multi-interface matrix", "",
           f"Generated by `{REGENERATE}` (QEMU: {table.qemu}; target x86_64 pc, TCG; KVM is not started:",
           "KVM guests hang on this machine, so what needs KVM or Xen is shown with the accelerator it needs",
           "and what QEMU answered under TCG).", "",
           "## What QEMU can present, per interface", "",
           "| interface | facet | what | options tried | under TCG | needs | guest sees / why |",
           "|---|---|---|---|---|---|---|"]
    for row in table.presentations:
        p = row.presentation
        answers = "; ".join(f"{'accepted' if a.accepted else 'refused'}"
                            f"{': ' + _cell(a.message) if a.message else ''}" for a in row.answers)
        options = " ".join(p.argv) if p.argv else "(QEMU's defaults)"
        why = "; ".join(x for x in (row.proof, p.guest_sees, p.note) if x)
        out.append(f"| {p.interface} | {p.facet} | {_cell(p.what)} | `{_cell(options)}` | {answers} | "
                   f"{p.needs or 'tcg'} | {_cell(why) if why else ''} |")
    out += ["", "## What each detector concludes, per booted combination", "",
            "Each cell: the real tool's answer in the guest; ✓ the model (detection/models.py) predicts the same,",
            "✗ it predicts what follows. `linux` is the kernel's `Hypervisor detected:` line (— none);",
            "`vmware-checkvm` runs with I/O permission on the backdoor port (TCG refuses it in user mode);",
            "`windows` is the model of Windows-side checks (no real tool in a Linux guest).", "",
            "| combination | presents | CPUID bit / 0x40000000 | " + " | ".join(DETECTORS) + " | windows (model) |",
            "|---|---|---|" + "---|" * len(DETECTORS) + "---|"]
    for row in table.combinations:
        if row.error is not None:
            out.append(f"| {row.profile} | {', '.join(row.presents)} | error: {_cell(row.error)} |"
                       + " |" * (len(DETECTORS) + 1))
            continue
        cpu = f"{'set' if row.hypervisor_bit else 'clear'} / {_cell(row.signature)}"
        out.append(f"| {row.profile} | {', '.join(row.presents)} | {cpu} | "
                   + " | ".join(_verdict(row, d) for d in DETECTORS) + f" | {_cell(row.windows)} |")
    missing = [i for i in INTERFACES if not any(c.startswith(i + ":") for r in table.combinations for c in r.presents)]
    if missing:
        out += ["", f"Interfaces no booted combination presents: {', '.join(missing)}."]
    return "\n".join(out) + "\n"


def render_text(table: InterfaceTable) -> str:
    lines = [f"QEMU: {table.qemu}", "presentations:"]
    for row in table.presentations:
        p = row.presentation
        for a in row.answers:
            state = "accepted" if a.accepted else "refused"
            lines.append(f"  {p.key:<18} {a.accel}: {state}{' (' + a.message + ')' if a.message else ''}"
                         f"{'  needs ' + p.needs if p.needs else ''}")
        if row.proof:
            lines.append(f"  {'':<18} {row.proof}")
    lines.append("combinations:")
    for row in table.combinations:
        if row.error:
            lines.append(f"  {row.profile}: error: {row.error}")
            continue
        verdicts = ", ".join(f"{d}={row.real.get(d, 'not run')!r}" for d in DETECTORS)
        flag = f"  MODEL DISAGREES: {', '.join(row.disagreeing)}" if row.disagreeing else ""
        lines.append(f"  {row.profile}: {verdicts}{flag}")
    return "\n".join(lines) + "\n"
