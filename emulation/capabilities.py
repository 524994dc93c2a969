"""What one QEMU binary can present, asked through QMP and cached per binary.

The compiler checks every machine type, ``-device`` driver, property and CPU
model it emits against these capabilities, so a QEMU build without a device
gives a clear "unsupported by this QEMU" verdict before anything boots
instead of a QEMU start failure.

The probe starts the binary with ``-machine none`` (no guest, no firmware)
under a :class:`~guestcompat.qemu_process.QemuProcess` (QMP monitor, private
temp dir, process group, all gone on return); it takes ~0.1 s.
The answer is cached as JSON under ``cache_root()/capabilities/``, keyed by
the binary's resolved path, size and mtime (an upgraded QEMU is probed again)
and by what was asked (a catalogue that names a new driver is probed again).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import time
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient
from qemu.qmp.error import QMPError

from guestcompat.errors import QemuStartError, QemuUnusableError
from guestcompat.paths import cache_root
from guestcompat.qemu_process import QemuProcess

PROBE_TIMEOUT = 20.0
CACHE_FORMAT = 2


@dataclass(frozen=True)
class ProbeRequest:
    """The QOM types whose properties the probe lists (everything else: existence only)."""

    devices: tuple[str, ...]
    objects: tuple[str, ...]
    machines: tuple[str, ...]
    cpus: tuple[str, ...] = ()

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Capabilities:
    binary: str
    """Resolved path of the probed binary."""
    version: str
    package: str
    machines: dict[str, str]
    """Every machine type and alias → the machine it names (``pc`` → ``pc-i440fx-7.2``)."""
    machine_properties: dict[str, tuple[str, ...]]
    """Properties of the requested machine types (by the name the catalogue uses)."""
    device_types: tuple[str, ...]
    device_properties: dict[str, tuple[str, ...]]
    object_properties: dict[str, tuple[str, ...]]
    cpu_models: dict[str, str]
    """CPU model name → its QOM type."""
    cpu_properties: dict[str, tuple[str, ...]] = field(default_factory=dict)
    probe_seconds: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.binary} {self.version}"

    def has_device(self, driver: str) -> bool:
        return driver in self.device_types

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Capabilities":
        tuples = {k: tuple(v) for k, v in data.items() if k == "device_types"}
        maps = {k: {n: tuple(p) for n, p in data[k].items()}
                for k in ("machine_properties", "device_properties", "object_properties", "cpu_properties")}
        return cls(**{**data, **tuples, **maps})


def default_request() -> ProbeRequest:
    """What to ask about: the catalogue's drivers and machines, and the compiler's other types."""
    from guestcompat.profiles.catalog import load_catalog

    catalog = load_catalog()
    extra = tomllib.loads(resources.files("guestcompat.profiles").joinpath("catalog/qemu.toml").read_text())["probe"]
    drivers = {k.qemu.driver for k in catalog.kinds.values() if k.qemu and k.qemu.driver}
    drivers |= {b.qemu_device for b in catalog.disk_buses.values()}
    drivers |= {b.cdrom_device for b in catalog.disk_buses.values() if b.cdrom_device}
    drivers |= set(extra["devices"])
    return ProbeRequest(tuple(sorted(drivers)), tuple(sorted(extra["objects"])), tuple(sorted(catalog.machines)),
                        tuple(sorted(extra.get("cpus", ()))))


def resolve_binary(binary: str) -> Path:
    found = shutil.which(binary)
    if found is None:
        raise QemuUnusableError(f"QEMU binary {binary!r} not found (run `make setup`, or name one with --qemu)")
    return Path(found).resolve()


def capabilities_for(binary: str, request: ProbeRequest | None = None, *, use_cache: bool = True) -> Capabilities:
    """The capabilities of *binary*, from the cache when the binary has not changed."""
    request = request or default_request()
    path = resolve_binary(binary)
    st = path.stat()
    key = hashlib.sha256(f"{CACHE_FORMAT}|{path}|{st.st_size}|{st.st_mtime_ns}|{request.digest()}".encode()).hexdigest()
    cache = cache_root() / "capabilities" / f"{path.name}-{key[:24]}.json"
    if use_cache and cache.is_file():
        with contextlib.suppress(ValueError, TypeError, KeyError, OSError):
            return Capabilities.from_json(json.loads(cache.read_text()))
    caps = probe(path, request)
    with contextlib.suppress(OSError):  # a read-only cache only costs the next probe
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
        tmp.write_text(json.dumps(caps.to_json(), indent=1, sort_keys=True))
        os.replace(tmp, cache)
    return caps


def probe(binary: Path, request: ProbeRequest) -> Capabilities:
    return asyncio.run(_probe(binary, request))


async def _probe(binary: Path, request: ProbeRequest) -> Capabilities:
    started = time.monotonic()
    argv = [str(binary), "-machine", "none", "-nodefaults", "-display", "none", "-S"]
    try:
        async with QemuProcess(argv, purpose="caps", connect_timeout=PROBE_TIMEOUT) as qemu:
            return await asyncio.wait_for(_ask(qemu.qmp, binary, request, started), PROBE_TIMEOUT)
    except QemuStartError as exc:
        if not exc.spawned:
            raise QemuUnusableError(f"cannot start {binary} to probe its capabilities: {exc.args[0]}") from None
        detail = [ln for ln in exc.stderr if ln.strip()][-1:] or [exc.args[0]]
        exited = f", exit code {exc.returncode}" if exc.returncode is not None else ""
        raise QemuUnusableError(f"{binary} does not answer as a QEMU system emulator "
                                f"(`-machine none` with a QMP monitor{exited}): {detail[0]}") from None
    except (asyncio.TimeoutError, QMPError, OSError, KeyError, TypeError) as exc:
        raise QemuUnusableError(f"{binary} does not answer as a QEMU system emulator "
                                f"(`-machine none` with a QMP monitor): {exc or type(exc).__name__}") from None


async def _names(qmp: QMPClient, command: str, typename: str) -> tuple[str, ...] | None:
    try:
        return tuple(sorted(p["name"] for p in await qmp.execute(command, {"typename": typename})))
    except QMPError:  # the type does not exist in this build
        return None


async def _ask(qmp: QMPClient, binary: Path, request: ProbeRequest, started: float) -> Capabilities:
    version = await qmp.execute("query-version")
    v = version["qemu"]
    machines: dict[str, str] = {}
    for m in await qmp.execute("query-machines"):
        machines[m["name"]] = m["name"]
        if m.get("alias"):
            machines[m["alias"]] = m["name"]
    devices = tuple(sorted(t["name"] for t in await qmp.execute("qom-list-types",
                                                                 {"implements": "device", "abstract": False})))
    device_properties = {}
    for driver in request.devices:
        if driver in devices:
            props = await _names(qmp, "device-list-properties", driver)
            if props is not None:
                device_properties[driver] = props
    object_properties = {}
    for typename in request.objects:
        props = await _names(qmp, "qom-list-properties", typename)
        if props is not None:
            object_properties[typename] = props
    machine_properties = {}
    for name in request.machines:
        if name in machines:
            props = await _names(qmp, "qom-list-properties", f"{machines[name]}-machine")
            if props is not None:
                machine_properties[name] = props
    cpus = {c["name"]: c.get("typename", "") for c in await qmp.execute("query-cpu-definitions")}
    cpu_properties = {}
    for model in request.cpus:
        if cpus.get(model):
            props = await _names(qmp, "device-list-properties", cpus[model])
            if props is not None:
                cpu_properties[model] = props
    return Capabilities(str(binary), f"{v['major']}.{v['minor']}.{v['micro']}", version.get("package", ""),
                        machines, machine_properties, devices, device_properties, object_properties, cpus,
                        cpu_properties, round(time.monotonic() - started, 3))
