"""Live migration check: does the guest see the same machine after QEMU moved it?

Steps (``guestcompat migrate``):

1. compile the profile as one that must migrate (``platform.migratable``
   set), so every blocked feature of profiles/catalog/blocked.toml that
   forbids the run (a device QEMU cannot migrate) refuses it *before* any
   image is built or QEMU started;
2. boot the source from the compiled argv with ``guestcompat.rerun=<console>``
   on the kernel command line, read the first fingerprint and wait for /init
   to listen for the trigger (images/init.py);
3. ask the source's QMP ``query-migrate`` whether QEMU itself blocks the
   migration (``blocked-reasons``): reported before trying;
4. start the destination from the same argv (another binary with
   ``--dest-qemu``) with ``-incoming defer``, checked against that binary's
   capabilities, and ``migrate-incoming unix:<socket>``;
5. ``migrate`` the source to the socket, poll ``query-migrate`` until it
   completes (failed, cancelled, a dead destination or the timeout are
   errors), wait for the destination to run, and check the source is in
   ``postmigrate``;
6. send ``gc-rerun <token>`` to the destination's serial console; the guest
   probes again and its document carries the token (proof it was produced
   after the move, on the destination);
7. compare both fingerprints with the baseline normalisation and semantic
   diff (harness/baseline.py ``normalized``, detection/diff.py ``diff``).

Disks: both QEMUs open the same image files (same-host shared storage).
QEMU takes its image locks only for *active* block nodes; an incoming VM
opens its images inactive and takes the locks when the migration hands them
over (the source inactivates and releases them first), so no ``locking=off``
is needed or used (measured: docs/design.md, Live migration).

Both QEMUs, their sockets and their private temp dirs (each QEMU's
:class:`~guestcompat.qemu_process.QemuProcess`; the migration socket is in the
destination's) are gone when the call returns or raises, on every path.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guestcompat.detection.diff import Change, diff
from guestcompat.detection.fingerprint import Fingerprint
from guestcompat.emulation.capabilities import capabilities_for
from guestcompat.emulation.compiler import CompiledMachine, compile_profile
from guestcompat.emulation.qemucheck import check_argv
from guestcompat.emulation.target import Target
from guestcompat.errors import CompileError, MigrationError, QemuUnusableError
from guestcompat.harness.artefacts import build_all
from guestcompat.harness.baseline import normalized
from guestcompat.harness.qemu_instance import QemuInstance
from guestcompat.harness.qemu_runner import BootImage, launch_argv
from guestcompat.harness.run import boot_image, image_for, new_nonce, refuse_blocked
from guestcompat.images.build import GuestImage
from guestcompat.images.init import READY_LINE, RERUN_FLAG, TRIGGER
from guestcompat.profiles.loader import load
from guestcompat.profiles.model import Profile

Progress = Callable[[str], None]
PhaseHook = Callable[[str, dict[str, int]], None]
"""Called with a phase name and the QEMU pids (``source``, ``destination``) as the check advances:
``source-ready``, ``migrating``, ``destination-running``. Tests use it to break a run mid-way."""

POLL = 0.05


@dataclass(frozen=True)
class MigrationStats:
    """What the source's ``query-migrate`` reported once the migration completed."""

    status: str
    total_ms: int | None
    downtime_ms: int | None
    setup_ms: int | None
    transferred_bytes: int | None
    ram_total_bytes: int | None
    dirty_sync_count: int | None

    @classmethod
    def from_qmp(cls, info: dict[str, Any]) -> "MigrationStats":
        ram = info.get("ram") or {}
        return cls(info.get("status", "?"), info.get("total-time"), info.get("downtime"), info.get("setup-time"),
                   ram.get("transferred"), ram.get("total"), ram.get("dirty-sync-count"))


@dataclass(frozen=True)
class MigrationOutcome:
    compiled: CompiledMachine
    image: GuestImage
    source_argv: tuple[str, ...]
    dest_argv: tuple[str, ...]
    source_seconds: float
    """From spawning the source QEMU to the first fingerprint's END line."""
    migration_seconds: float
    """Wall time from ``migrate`` to the destination running."""
    rerun_seconds: float
    """From the trigger to the second fingerprint's END line."""
    stats: MigrationStats
    source_status: str
    """The source's run state after the migration (QEMU says ``postmigrate``)."""
    token: str
    before: Fingerprint
    after: Fingerprint
    changes: tuple[Change, ...]
    source_console: tuple[str, ...] = ()
    dest_console: tuple[str, ...] = ()
    events: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def unchanged(self) -> bool:
        return not self.changes

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "guestcompat-migrate", "version": 1,
            "profile": self.compiled.profile.name, "target": str(self.compiled.target),
            "verdict": "unchanged" if self.unchanged else "changed",
            "changes": [{"kind": c.kind, "text": c.text} for c in self.changes],
            "source_seconds": round(self.source_seconds, 3),
            "migration_seconds": round(self.migration_seconds, 3),
            "rerun_seconds": round(self.rerun_seconds, 3),
            "migration": {"status": self.stats.status, "total_ms": self.stats.total_ms,
                          "downtime_ms": self.stats.downtime_ms, "setup_ms": self.stats.setup_ms,
                          "transferred_bytes": self.stats.transferred_bytes,
                          "ram_total_bytes": self.stats.ram_total_bytes,
                          "dirty_sync_count": self.stats.dirty_sync_count},
            "source_status": self.source_status, "token": self.token,
            "source_argv": list(self.source_argv), "dest_argv": list(self.dest_argv),
            "events": {k: list(v) for k, v in self.events.items()},
            "before": json.loads(self.before.to_json()), "after": json.loads(self.after.to_json()),
        }


def migratable(profile: Profile) -> Profile:
    """*profile* as one that must live-migrate: what ``migrate`` asks of it."""
    return profile.model_copy(update={"platform": profile.platform.model_copy(update={"migratable": True})})


def compile_for_migration(profile: Profile, target: Target) -> CompiledMachine:
    """Compile *profile* as migratable and refuse (RunError) what blocked.toml says cannot run so."""
    compiled = compile_profile(migratable(profile), target)
    refuse_blocked(compiled)
    return compiled


def source_argv(compiled: CompiledMachine, image: BootImage, artefacts: dict[str, Path]) -> list[str]:
    return launch_argv(compiled, _with_rerun(compiled, image), artefacts)


def dest_argv(compiled: CompiledMachine, image: BootImage, artefacts: dict[str, Path],
              binary: str | None) -> list[str]:
    """The source's argv without ``-S`` (the guest resumes when the migration completes) and
    waiting for ``migrate-incoming``; ``binary`` replaces the QEMU binary."""
    argv = [a for a in launch_argv(compiled, _with_rerun(compiled, image), artefacts) if a != "-S"]
    if binary:
        argv[0] = binary
    return [*argv, "-incoming", "defer"]


def _with_rerun(compiled: CompiledMachine, image: BootImage) -> BootImage:
    return BootImage(image.kernel, image.initrd, (*image.cmdline, f"{RERUN_FLAG}={compiled.arch.console}"))


def qemu_blockers(info: dict[str, Any]) -> tuple[str, ...]:
    """QEMU's own reasons (``query-migrate``) why this VM cannot migrate now."""
    reasons = info.get("blocked-reasons") or ()
    if not reasons and info.get("blocked"):
        return ("QEMU reports the migration as blocked (no reason given)",)
    return tuple(str(r) for r in reasons)


def migrate_profile(name: str, target: Target, *, dest_qemu: str | None = None, timeout: float = 120.0,
                    progress: Progress | None = None, on_phase: PhaseHook | None = None) -> MigrationOutcome:
    say = progress or (lambda _msg: None)
    say("compiling")
    compiled = compile_for_migration(load(name), target)
    if dest_qemu:
        # a build alias (--dest-qemu 10.0, patched) names a binary as --qemu does
        dest_qemu = compiled.arch.binary(dataclasses.replace(compiled.target, qemu_binary=dest_qemu))
        check_dest_binary(compiled, dest_qemu)
    image = image_for(compiled, progress)
    return asyncio.run(migrate_async(compiled, image, dest_qemu=dest_qemu, timeout=timeout, progress=progress,
                                     on_phase=on_phase))


def check_dest_binary(compiled: CompiledMachine, binary: str) -> None:
    """The destination binary must present everything the compiled argv asks for, and the machine
    version the source runs (checked before any boot)."""
    resolved = shutil.which(binary)
    if resolved is None:
        raise QemuUnusableError(f"--dest-qemu {binary!r}: no such executable")
    caps = capabilities_for(resolved)
    check_argv((resolved, *compiled.argv[1:]), caps, compiled.profile)
    machine = pinned_machine(compiled)
    if machine not in caps.machines:
        raise CompileError(f"--dest-qemu {binary}: {caps.label} has no machine type {machine!r}, the version "
                           f"the source runs as {compiled.target.machine!r}; a migration needs the same "
                           "machine version on both sides")


def pinned_machine(compiled: CompiledMachine) -> str:
    """The versioned machine type the source binary runs for the target's machine (``pc`` →
    ``pc-i440fx-7.2``): an alias names the newest version *of each binary*, so both sides of a
    migration are given the source's version by name."""
    caps = capabilities_for(compiled.argv[0])
    return caps.machines.get(compiled.target.machine, compiled.target.machine)


def pin_machine(argv: list[str], machine: str) -> list[str]:
    """*argv* with the ``-machine`` option's type replaced by *machine* (its properties kept)."""
    pinned = list(argv)
    for i, option in enumerate(pinned[:-1]):
        if option == "-machine":
            _head, sep, props = pinned[i + 1].partition(",")
            pinned[i + 1] = machine + sep + props
    return pinned


async def migrate_async(compiled: CompiledMachine, image: GuestImage, *, dest_qemu: str | None = None,
                        timeout: float = 120.0, progress: Progress | None = None,
                        on_phase: PhaseHook | None = None) -> MigrationOutcome:
    refuse_blocked(compiled)
    say = progress or (lambda _msg: None)
    hook = on_phase or (lambda _phase, _pids: None)
    async with contextlib.AsyncExitStack() as running:
        artefacts = await asyncio.to_thread(build_all, compiled.artefacts)
        nonce = new_nonce()
        boot = boot_image(compiled, image, nonce)
        machine = await asyncio.to_thread(pinned_machine, compiled)
        src_argv = pin_machine(source_argv(compiled, boot, artefacts), machine)
        dst_argv = pin_machine(dest_argv(compiled, boot, artefacts, dest_qemu), machine)

        say("booting the source")
        launched = time.monotonic()
        source = await running.enter_async_context(QemuInstance("source", src_argv))
        src_argv = source.argv
        await source.execute("cont")
        first = await source.console.document(timeout, "the first fingerprint")
        source_seconds = time.monotonic() - launched
        await source.console.line(lambda ln: READY_LINE in ln, timeout,
                                  f"/init's {READY_LINE!r} line (is the image's /init current?)")
        hook("source-ready", {"source": source.pid})

        blockers = qemu_blockers(await source.execute("query-migrate"))
        if blockers:
            raise MigrationError(f"{compiled.profile.name} on {compiled.target}: QEMU blocks the migration: "
                                 + "; ".join(blockers) + " (not listed in profiles/catalog/blocked.toml)",
                                 argv=src_argv)

        say("starting the destination")
        dest = await running.enter_async_context(QemuInstance("destination", dst_argv, stdin_pipe=True))
        dst_argv = dest.argv
        channel = f"unix:{dest.dir / 'migration.sock'}"
        await dest.execute("migrate-incoming", {"uri": channel})

        say("migrating")
        started = time.monotonic()
        await source.execute("migrate", {"uri": channel})
        pids = {"source": source.pid, "destination": dest.pid}
        hook("migrating", pids)
        info = await _wait_migrated(source, dest, timeout)
        await _wait_running(dest, timeout)
        migration_seconds = time.monotonic() - started
        source_status = (await source.execute("query-status")).get("status", "?")
        if source_status != "postmigrate":
            raise MigrationError(f"after the migration the source is {source_status!r}, not 'postmigrate'",
                                 argv=src_argv)
        hook("destination-running", pids)

        say("probing again on the destination")
        token = secrets.token_hex(8)
        rerun_started = time.monotonic()
        await dest.send_line(f"{TRIGGER} {token}")
        second = await dest.console.document(timeout, "the fingerprint after the migration")
        rerun_seconds = time.monotonic() - rerun_started
        if second.get("run") != token:
            raise MigrationError(f"the fingerprint after the migration carries run={second.get('run')!r}, not the "
                                 f"token {token!r} sent to the destination: it is not from the probe run that was "
                                 "asked for", console_tail=list(dest.console.tail))
        if first.get("run") != nonce:
            raise MigrationError(f"the first fingerprint carries run={first.get('run')!r}, not this boot's nonce "
                                 f"{nonce!r}: it is not from the source guest of this run")

        say("comparing")
        before, after = Fingerprint.from_document(first), Fingerprint.from_document(second)
        changes = diff(normalized(before), normalized(after))
        return MigrationOutcome(
            compiled, image, tuple(src_argv), tuple(dst_argv), source_seconds, migration_seconds, rerun_seconds,
            MigrationStats.from_qmp(info), source_status, token, before, after, tuple(changes),
            tuple(source.console.lines), tuple(dest.console.lines),
            {"source": tuple(source.events), "destination": tuple(dest.events)})


async def _wait_migrated(source: QemuInstance, dest: QemuInstance, timeout: float) -> dict[str, Any]:
    """Poll the source's ``query-migrate`` until ``completed``; anything else is a MigrationError."""
    deadline = time.monotonic() + timeout
    while True:
        if dest.exited:
            raise MigrationError(f"the destination QEMU {await dest.exit_reason()} during the migration",
                                 argv=dest.argv, console_tail=list(source.console.tail))
        info = await source.execute("query-migrate")
        status = info.get("status")
        if status == "completed":
            return info
        if status in ("failed", "cancelled"):
            why = info.get("error-desc") or "no reason given"
            if await _gone(dest):
                why += f"; the destination QEMU {await dest.exit_reason()}"
            raise MigrationError(f"the migration {status}: {why}", argv=source.argv)
        if time.monotonic() > deadline:
            await source.execute("migrate_cancel")
            raise MigrationError(f"the migration did not complete within {timeout:.0f} s (last status {status!r}, "
                                 f"{(info.get('ram') or {}).get('transferred', 0)} bytes sent)", argv=source.argv)
        await asyncio.sleep(POLL)


async def _wait_running(dest: QemuInstance, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if dest.exited:
            raise MigrationError(f"the destination QEMU {await dest.exit_reason()} after the migration",
                                 argv=dest.argv, console_tail=list(dest.console.tail))
        status = await dest.execute("query-status")
        if status.get("running"):
            return
        if status.get("status") in ("internal-error", "guest-panicked", "shutdown"):
            raise MigrationError(f"the destination is {status.get('status')!r} after the migration",
                                 argv=dest.argv, console_tail=list(dest.console.tail))
        if time.monotonic() > deadline:
            raise MigrationError(f"the destination did not start running within {timeout:.0f} s of the "
                                 f"migration (status {status.get('status')!r})", argv=dest.argv)
        await asyncio.sleep(POLL)


async def _gone(instance: QemuInstance, grace: float = 0.5) -> bool:
    return await instance.wait_exited(grace)
