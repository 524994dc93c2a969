"""The files the full guest gets on top of debootstrap: identity, network, the probe unit.

Templates live in images/data/fullguest/ (the unit, the .network file and the
wrapper script that runs the probe); ``@NAME@`` placeholders are filled from
the guest configuration here.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from guestcompat.detection.payload import ProbePayload

#: Where the probe payload (probe.sh, probe.awk, gcprobe) lives in the guest.
PROBE_PREFIX = "/usr/lib/guestcompat"


TEMPLATES = ("fullguest.sh", "guestcompat-probe.service", "10-nic.network", "guestcompat-modprobe.conf",
             "guestcompat-journald.conf")


def templates_text() -> str:
    """All templates, for the cache key: editing one rebuilds the guest."""
    return "".join(_template(name) for name in TEMPLATES)


def _template(name: str, **values: str) -> str:
    text = (resources.files("guestcompat.images") / "data" / "fullguest" / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def _write(root: Path, path: str, content: bytes | str, mode: int = 0o644) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    target.write_bytes(content.encode() if isinstance(content, str) else content)
    target.chmod(mode)


def write_guest_files(root: Path, config: Any, payload: ProbePayload, machine_id: str) -> None:
    """Write identity, networkd configuration, the probe and its unit into the tree at *root*."""
    _write(root, "/etc/hostname", f"{config.hostname}\n")
    _write(root, "/etc/hosts", f"127.0.0.1\tlocalhost\n{config.address.split('/')[0]}\t{config.hostname}\n")
    # A fixed machine id: the disk is attached read-only (shared cache), so systemd
    # could not commit a generated one; an empty file would also mean "first boot".
    _write(root, "/etc/machine-id", f"{machine_id[:32]}\n", 0o444)
    _write(root, f"/etc/systemd/network/10-{config.nic_name}.network",
           _template("10-nic.network", NIC=config.nic_name, ADDRESS=config.address, GATEWAY=config.gateway))
    for path, (content, mode) in payload.files.items():
        _write(root, f"{PROBE_PREFIX}{path}", content, mode)
    _write(root, f"{PROBE_PREFIX}/fullguest.sh", _template("fullguest.sh", NIC=config.nic_name), 0o755)
    _write(root, "/etc/systemd/system/guestcompat-probe.service", _template("guestcompat-probe.service"))
    _write(root, "/etc/modprobe.d/guestcompat.conf", _template("guestcompat-modprobe.conf"))
    _write(root, "/etc/systemd/journald.conf.d/guestcompat.conf", _template("guestcompat-journald.conf"))


def write_text_files(root: Path, files: dict[str, str]) -> None:
    """Write *files* (path in the guest → content) into the tree at *root*."""
    for path, content in files.items():
        _write(root, path, content)
