"""Files a run needs, shipped to a libvirt host through its storage API: nothing shared by path.

A host of a fleet (``qemu+tcp://…``, ``qemu+ssh://…``) sees none of this machine's files. Each
host gets a directory storage pool named ``guestcompat`` (defined on first use at
:data:`POOL_DIR` and built by libvirt); every kernel, initramfs and ACPI table a cell needs is
uploaded into it once, as a volume named by the sha256 of its content (``storageVolCreateXML``
then ``virStorageVolUpload`` over a ``virStream``), and found there by name by every later run.
A run's own scratch files (the sparse disks, a console file) are volumes named after the run's
domain and deleted with it. ``guestcompat fleet clean`` (:func:`clean`) removes what guestcompat
left on a host: its domains, every volume of the pool, the pool.

A volume appears under its final name when its upload *starts* (libvirt cannot rename a volume),
so a concurrent run could find a half-written one: uploads of one process are serialised per host
and name (a lock); a volume another process is still writing is recognised by its allocation
(created sparse, it is fully allocated only once every byte arrived) and waited for up to
:data:`UPLOAD_WAIT` seconds, after which it counts as the remains of an interrupted upload and is
replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from guestcompat.harness.libvirt_embed import libvirt
from guestcompat.errors import RunError
from guestcompat.harness import libvirt_owner as owner
from guestcompat.harness.libvirt_owner import DOMAIN_PREFIX

POOL_NAME = "guestcompat"
POOL_DIR = "/var/lib/libvirt/images/guestcompat"
CHUNK = 1 << 20
UPLOAD_WAIT = 120.0
POLL = 0.2

_digests: dict[tuple[str, int, int], str] = {}
_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


def digest(path: Path) -> str:
    """sha256 of a file's content, remembered per (path, size, mtime) for the life of the process."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _digests:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
        _digests[key] = h.hexdigest()
    return _digests[key]


def _lock(uri: str, name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault((uri, name), threading.Lock())


def _message(exc: libvirt.libvirtError) -> str:
    return exc.get_error_message() or str(exc)


def pool(conn: libvirt.virConnect, uri: str) -> libvirt.virStoragePool:
    """The host's guestcompat pool, defined at :data:`POOL_DIR`, built and started when missing."""
    with _lock(uri, "\0pool"):
        try:
            found = conn.storagePoolLookupByName(POOL_NAME)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
                raise RunError(f"libvirt host {uri}: cannot look up storage pool {POOL_NAME}: {_message(exc)}") from None
            found = None
        try:
            if found is None:
                root = ET.Element("pool", type="dir")
                ET.SubElement(root, "name").text = POOL_NAME
                ET.SubElement(ET.SubElement(root, "target"), "path").text = POOL_DIR
                found = conn.storagePoolDefineXML(ET.tostring(root, encoding="unicode"), 0)
                found.build(0)
            _start(found)
        except libvirt.libvirtError as exc:
            raise RunError(f"libvirt host {uri}: cannot set up storage pool {POOL_NAME} at {POOL_DIR}: "
                           f"{_message(exc)}") from None
        return found


def _start(pool: libvirt.virStoragePool) -> None:
    """Make *pool* active and its volume list current, also when its directory was removed behind
    libvirt's back (seen in the suite: "cannot open directory …/guestcompat: No such file or
    directory" from a defined pool whose directory was gone): ``build`` makes the directory again."""
    try:
        if not pool.isActive():
            pool.create(0)
        pool.refresh(0)
        return
    except libvirt.libvirtError:
        pass
    with contextlib.suppress(libvirt.libvirtError):
        if pool.isActive():
            pool.destroy()
    pool.build(0)
    pool.create(0)
    pool.refresh(0)


def _volume_xml(name: str, capacity: int) -> str:
    root = ET.Element("volume")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "capacity", unit="bytes").text = str(capacity)
    ET.SubElement(root, "allocation", unit="bytes").text = "0"
    ET.SubElement(ET.SubElement(root, "target"), "format", type="raw")
    return ET.tostring(root, encoding="unicode")


def _lookup(found: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
    try:
        return found.storageVolLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return None
        raise


def _complete(vol: libvirt.virStorageVol, size: int, deadline: float) -> bool:
    """True once ``vol`` holds all ``size`` bytes (another process may still be uploading it)."""
    while True:
        _kind, capacity, allocation = vol.info()
        if capacity != size:
            return False
        if allocation >= size:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)


@dataclass(frozen=True)
class Shipped:
    path: str
    """The file's path on the host (the volume's)."""
    uploaded: bool
    """False when the host had it already."""


def ship(conn: libvirt.virConnect, uri: str, found: libvirt.virStoragePool, local: Path) -> Shipped:
    """Make ``local`` a volume of the host's pool (uploaded unless its content is there) and return its path."""
    size = local.stat().st_size
    name = digest(local) + (local.suffix if local.suffix in (".aml", ".fd", ".bin") else "")
    with _lock(uri, name):
        try:
            vol = _lookup(found, name)
            if vol is not None and _complete(vol, size, time.monotonic() + UPLOAD_WAIT):
                return Shipped(vol.path(), False)
            if vol is not None:  # the remains of an interrupted upload
                vol.delete(0)
            vol = found.createXML(_volume_xml(name, size), 0)
        except libvirt.libvirtError as exc:
            raise RunError(f"libvirt host {uri}: cannot create volume {name} for {local.name}: {_message(exc)}") from None
        stream = conn.newStream(0)
        try:
            vol.upload(stream, 0, size, 0)
            with open(local, "rb") as fh:
                stream.sendAll(lambda _st, n, f: f.read(n), fh)
            stream.finish()
        except (libvirt.libvirtError, OSError) as exc:
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()
            with contextlib.suppress(libvirt.libvirtError):
                vol.delete(0)
            why = _message(exc) if isinstance(exc, libvirt.libvirtError) else str(exc)
            raise RunError(f"libvirt host {uri}: uploading {local} failed: {why}") from None
        return Shipped(vol.path(), True)


def scratch(found: libvirt.virStoragePool, uri: str, name: str, size: int) -> libvirt.virStorageVol:
    """A run's own (sparse, zero-filled) volume; the caller deletes it with the run."""
    try:
        return found.createXML(_volume_xml(name, size), 0)
    except libvirt.libvirtError as exc:
        raise RunError(f"libvirt host {uri}: cannot create volume {name}: {_message(exc)}") from None


def delete_quietly(vols: list[libvirt.virStorageVol]) -> None:
    """Delete a run's scratch volumes; a host that is gone keeps them until ``fleet clean``."""
    for vol in vols:
        with contextlib.suppress(libvirt.libvirtError):
            vol.delete(0)


@dataclass(frozen=True)
class Cleaned:
    uri: str
    domains: tuple[str, ...]
    volumes: tuple[str, ...]
    pool: bool
    """True when the guestcompat pool existed and was removed."""


def clean(conn: libvirt.virConnect, uri: str) -> Cleaned:
    """Destroy and undefine every ``guestcompat-*`` domain, delete the pool's volumes and the pool."""
    try:
        domains = owner.remove(conn, lambda name: name.startswith(DOMAIN_PREFIX))
        volumes: list[str] = []
        try:
            found = conn.storagePoolLookupByName(POOL_NAME)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
                raise
            return Cleaned(uri, tuple(domains), (), False)
        _start(found)
        for vol in found.listAllVolumes(0):
            volumes.append(vol.name())
            vol.delete(0)
        found.destroy()
        with contextlib.suppress(libvirt.libvirtError):
            found.delete(0)  # the pool's (now empty) directory
        found.undefine()
    except libvirt.libvirtError as exc:
        raise RunError(f"libvirt host {uri}: cleaning failed: {_message(exc)}") from None
    return Cleaned(uri, tuple(domains), tuple(volumes), True)
