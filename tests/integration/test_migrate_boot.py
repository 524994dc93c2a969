"""Live migration for real: boot a source QEMU, migrate to a destination QEMU, probe again there."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from qemu.qmp import QMPClient

from guestcompat.emulation.target import Target
from guestcompat.errors import MigrationError
from guestcompat.harness.migrate import migrate_profile

pytestmark = pytest.mark.boot

PC = Target("x86_64", "pc", "tcg")
PSERIES = Target("ppc64", "pseries", "tcg")


@pytest.mark.parametrize("profile,target", [("vmware/esxi-6.5", PC), ("power/pseries-vscsi", PSERIES)],
                         ids=["esxi-6.5", "pseries-vscsi"])
def test_the_guest_sees_the_same_machine_after_migration(profile, target, leaves_nothing_behind):
    phases: list[tuple[str, dict[str, int]]] = []
    outcome = migrate_profile(profile, target, timeout=240, on_phase=lambda p, pids: phases.append((p, dict(pids))))
    assert outcome.unchanged, [c.text for c in outcome.changes]
    assert outcome.stats.status == "completed" and outcome.stats.downtime_ms is not None
    assert outcome.stats.transferred_bytes and outcome.stats.transferred_bytes > 1 << 20
    # The second fingerprint is from after the move: the source was left in postmigrate, the
    # destination's QMP resumed the guest, and the document carries the token sent only to the
    # destination's console after that.
    assert outcome.source_status == "postmigrate"
    assert "RESUME" in outcome.events["destination"] and "STOP" in outcome.events["source"]
    assert [p for p, _ in phases] == ["source-ready", "migrating", "destination-running"]
    assert phases[1][1]["source"] != phases[1][1]["destination"]
    assert outcome.token and not any(outcome.token in line for line in outcome.source_console)
    assert any(line.endswith(f"gc-rerun {outcome.token}") for line in outcome.dest_console)  # the tty's echo
    assert outcome.after.kernel == outcome.before.kernel and outcome.after.pci == outcome.before.pci


def test_a_destination_that_dies_mid_way_is_an_error_and_leaves_nothing(leaves_nothing_behind):
    def kill_destination(phase: str, pids: dict[str, int]) -> None:
        if phase == "migrating":
            os.killpg(pids["destination"], signal.SIGKILL)

    with pytest.raises(MigrationError, match=r"(the migration failed|the destination QEMU was killed by signal 9)"):
        migrate_profile("power/pseries-vscsi", PSERIES, timeout=240, on_phase=kill_destination)


def test_a_destination_binary_that_fails_is_an_error_exit_2(tmp_path, leaves_nothing_behind):
    """--dest-qemu pointing at a wrapper that starts QEMU and dies: a clear error, exit 2, nothing left."""
    wrapper = tmp_path / "qemu-system-ppc64"
    wrapper.write_text("#!/bin/sh\necho 'qemu: simulated crash of the destination' >&2\nexit 3\n")
    wrapper.chmod(0o755)
    # The capabilities check refuses a binary that does not answer QMP, before any boot.
    res = subprocess.run([sys.executable, "-m", "guestcompat.harness.cli", "migrate", "power/pseries-vscsi",
                          "--dest-qemu", str(wrapper)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "error:" in res.stderr and str(wrapper) in res.stderr and "Traceback" not in res.stderr


async def _locking_handover(image: Path) -> tuple[bool, str, str]:
    """A running VM with a writable raw disk, an incoming VM on the same file, a migration between them."""
    workdir = Path(tempfile.mkdtemp(prefix="guestcompat-locktest-"))
    base = ["qemu-system-x86_64", "-machine", "pc", "-nodefaults", "-display", "none", "-m", "64",
            "-blockdev", f"driver=file,filename={image},node-name=f", "-blockdev", "driver=raw,file=f,node-name=d",
            "-device", "virtio-blk-pci,drive=d"]
    procs = []
    clients = []
    try:
        async def start(name: str, *extra: str) -> QMPClient:
            sock = workdir / f"{name}.sock"
            procs.append(await asyncio.create_subprocess_exec(
                *base, *extra, "-qmp", f"unix:{sock},server=on,wait=off", stderr=asyncio.subprocess.PIPE,
                start_new_session=True))
            qmp = QMPClient(name)
            clients.append(qmp)
            for _ in range(500):
                try:
                    await qmp.connect(str(sock))
                    return qmp
                except Exception:
                    await asyncio.sleep(0.02)
            raise AssertionError(f"{name} did not open QMP")

        src = await start("src", "-S")
        dst = await start("dst", "-incoming", "defer")          # same image, source holds the write lock
        await dst.execute("migrate-incoming", {"uri": f"unix:{workdir / 'm.sock'}"})
        await src.execute("migrate", {"uri": f"unix:{workdir / 'm.sock'}"})
        for _ in range(1000):
            if (await src.execute("query-migrate")).get("status") in ("completed", "failed"):
                break
            await asyncio.sleep(0.02)
        status = (await src.execute("query-migrate"))["status"]
        await dst.execute("cont")
        # A third VM now conflicts with the destination, which took the lock over.
        third = subprocess.run([*base, "-S", "-qmp", "stdio"], input="", capture_output=True, text=True, timeout=30)
        return status == "completed", (await dst.execute("query-status"))["status"], third.stderr
    finally:
        for qmp in clients:
            await qmp.disconnect()
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def test_image_locks_pass_from_source_to_incoming_destination(tmp_path):
    """Measured fact the migration check relies on: an incoming QEMU opens a shared image without its
    locks (no conflict with the running source), and takes the write lock when the migration completes."""
    image = tmp_path / "disk.raw"
    image.write_bytes(b"\0" * (1 << 20))
    completed, dest_status, third_stderr = asyncio.run(_locking_handover(image))
    assert completed and dest_status == "running"
    assert 'Failed to get "write" lock' in third_stderr
