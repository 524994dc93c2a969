"""The blocked-feature data agrees with QEMU: its nvme really refuses live migration, pvscsi does not."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest
from qemu.qmp import QMPClient
from qemu.qmp.error import QMPError

from guestcompat.profiles.blocked import load_blocked
from guestcompat.profiles.catalog import load_catalog


async def migrate_error(driver_opts: str) -> str | None:
    """Start a paused pc machine with one device and ask QEMU to migrate it to /dev/null."""
    workdir = Path(tempfile.mkdtemp(prefix="guestcompat-migrate-"))
    sock = workdir / "qmp.sock"
    proc = await asyncio.create_subprocess_exec(
        "qemu-system-x86_64", "-machine", "pc", "-nodefaults", "-display", "none", "-S", "-m", "128",
        "-device", driver_opts, "-qmp", f"unix:{sock},server=on,wait=off", start_new_session=True)
    qmp = QMPClient("migrate-test")
    try:
        for _ in range(500):
            if sock.exists():
                try:
                    await qmp.connect(str(sock))
                    break
                except QMPError:
                    pass
            await asyncio.sleep(0.01)
        try:
            await qmp.execute("migrate", {"uri": "exec:cat > /dev/null"})
            return None
        except QMPError as exc:
            return str(exc)
    finally:
        await qmp.disconnect()
        proc.kill()
        await proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.parametrize("kind", sorted({b.device for b in load_blocked().blocked if b.feature == "live-migration"}))
def test_devices_listed_as_unmigratable_are(kind):
    qemu = load_catalog().kinds[kind].qemu
    props = "".join(f",{k}={v}" for k, v in qemu.properties.items())
    props += ",serial=guestcompat" if qemu.controller_serial else ""   # QEMU's nvme requires one
    error = asyncio.run(migrate_error(qemu.driver + props))
    assert error is not None and "non-migratable device" in error


def test_a_migratable_device_migrates():
    assert asyncio.run(migrate_error("pvscsi")) is None
