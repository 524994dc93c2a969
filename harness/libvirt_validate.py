"""Validate a rendered domain with libvirt itself, and say which profile key libvirt objects to.

``defineXML`` in a throwaway embedded root runs libvirt's own parser and
post-parse validation (PCI placement rules, models, addresses); the
domain capabilities of the target's emulator/arch/machine/virt type are then
cross-checked for what libvirt would only refuse at start (firmware, CPU
model, video model). A refusal reaches the user as libvirt's reason plus the
profile key the offending element comes from.
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from guestcompat.harness.libvirt_embed import libvirt

from guestcompat.emulation.compiler import CompiledMachine
from guestcompat.emulation.libvirt_xml import ACCEL_DOMAIN_TYPE, ALIAS_PREFIX, render
from guestcompat.errors import CompileError
from guestcompat.harness.libvirt_embed import Connection, connect

# Element named in a libvirt message -> profile key it comes from.
ELEMENT_KEYS = {"BIOS 'date'": "smbios.bios.date", "BIOS 'release'": "smbios.bios.release",
                "sysinfo": "smbios", "smbios": "smbios", "cpu": "cpu", "vmport": "backdoor.enabled",
                "loader": "platform.firmware", "memory": "platform.memory_mb", "vcpu": "cpu.count",
                "machine": "platform (machine type)", "uuid": "smbios.system.uuid"}


class LibvirtRejected(CompileError):
    """libvirt refuses the rendered domain."""


@dataclass(frozen=True)
class Validation:
    machine: str
    """The machine type libvirt resolved the alias to (``pc`` → ``pc-i440fx-7.2``)."""
    checks: tuple[str, ...]
    """What was cross-checked against the domain capabilities."""


def profile_keys(compiled: CompiledMachine) -> dict[str, str]:
    """QEMU id / alias / PCI address → profile key."""
    keys: dict[str, str] = {}
    profile = compiled.profile
    for bridge in profile.pci.bridges:
        keys[bridge.name] = f"pci.bridges[{bridge.name}]"
        keys[f"0000:{bridge.address}"] = f"pci.bridges[{bridge.name}]"
    for device in profile.pci.devices:
        keys[device.name] = f"pci.devices[{device.name}]"
        if getattr(device, "mac", None):
            keys[device.mac.lower()] = f"pci.devices[{device.name}].mac"
        keys[f"0000:{device.address}"] = f"pci.devices[{device.name}]"
    for device in getattr(profile.vio, "devices", ()):
        keys[device.name] = f"vio.devices[{device.name}]"
        if getattr(device, "mac", None):
            keys[device.mac.lower()] = f"vio.devices[{device.name}].mac"
    for disk in profile.disks:
        keys[disk.name] = f"disks[{disk.name}]"
        if disk.image:
            keys[disk.image] = f"disks[{disk.name}].image"
    for dev, name in render(compiled).disk_targets:
        keys[dev] = f"disks[{name}]"
    return keys


def key_for(compiled: CompiledMachine, message: str) -> str | None:
    keys = profile_keys(compiled)
    for token in re.findall(r"[A-Za-z0-9_.:/-]+", message):
        token = token.strip("'.:").lower() if re.fullmatch(r"[0-9A-Fa-f:]{17}", token.strip("'.:")) else \
            token.strip("'.:")
        if token.startswith(ALIAS_PREFIX):
            token = token[len(ALIAS_PREFIX):]
        if token.startswith("pciBridge") and "-" in token and token not in keys:
            token = token.rsplit("-", 1)[0]
        if token in keys:
            return keys[token]
    for element, key in ELEMENT_KEYS.items():
        if re.search(rf"\b{re.escape(element)}", message, re.IGNORECASE):
            return key
    return None


def explain(compiled: CompiledMachine, message: str, what: str = "libvirt rejects the domain of") -> str:
    key = key_for(compiled, message)
    where = f" (profile key {key})" if key else " (no single profile key; see the message)"
    return f"{what} {compiled.profile.name}: {message.strip()}{where}"


def validate(compiled: CompiledMachine, uri: str | None = None, conn: Connection | None = None) -> Validation:
    """Define the domain in a throwaway libvirt (or ``conn``) and cross-check the domain capabilities."""
    if conn is not None:
        return _validate(compiled, conn)
    with connect(uri) as fresh:
        return _validate(compiled, fresh)


def _validate(compiled: CompiledMachine, conn: Connection) -> Validation:
    domain = render(compiled)
    target = compiled.target
    try:
        dom = conn.conn.defineXML(domain.xml)
    except libvirt.libvirtError as exc:
        raise LibvirtRejected(explain(compiled, exc.get_error_message())) from None
    try:
        defined = ET.fromstring(dom.XMLDesc())
    finally:
        dom.undefine()
    machine = defined.find("os/type").get("machine")
    emulator = target.qemu_binary or defined.findtext("devices/emulator") or shutil.which(compiled.argv[0])
    try:
        caps = ET.fromstring(conn.conn.getDomainCapabilities(
            emulator, compiled.arch.name, machine, ACCEL_DOMAIN_TYPE.get(target.accel, "qemu"), 0))
    except libvirt.libvirtError as exc:
        raise LibvirtRejected(explain(compiled, exc.get_error_message())) from None
    checks = _cross_check(compiled, ET.fromstring(domain.xml), caps)
    return Validation(machine, tuple(checks))


def _values(caps: ET.Element, path: str) -> set[str]:
    return {v.text or "" for v in caps.findall(f"{path}/value")}


def _cross_check(compiled: CompiledMachine, xml: ET.Element, caps: ET.Element) -> list[str]:
    checks: list[str] = []
    loader = xml.find("os/loader")
    if loader is not None:
        el = caps.find("os/loader")
        if el is None or el.get("supported") != "yes" or loader.get("type") not in _values(el, "enum[@name='type']"):
            raise LibvirtRejected(explain(compiled, f"this emulator's domain capabilities offer no <loader> "
                                                    f"of type {loader.get('type')} (firmware {loader.text})"))
        checks.append(f"firmware loader type {loader.get('type')}")
    model = xml.findtext("cpu/model")
    if model is not None:
        usable = {m.text: m.get("usable") for m in caps.findall("cpu/mode[@name='custom']/model")}
        if model not in usable:
            raise LibvirtRejected(explain(compiled, f"CPU model {model} is not in the domain capabilities "
                                                    f"of {caps.findtext('machine')}"))
        checks.append(f"CPU model {model}")
    for video in xml.findall("devices/video/model"):
        offered = _values(caps, "devices/video/enum[@name='modelType']")
        if video.get("type") not in offered:
            raise LibvirtRejected(explain(compiled, f"video model {video.get('type')} is not offered "
                                                    f"(offered: {', '.join(sorted(offered))})"))
        checks.append(f"video model {video.get('type')}")
    for disk in xml.findall("devices/disk/target"):
        if disk.get("bus") not in _values(caps, "devices/disk/enum[@name='bus']"):
            raise LibvirtRejected(explain(compiled, f"disk bus {disk.get('bus')} is not offered"))
        checks.append(f"disk bus {disk.get('bus')}")
    return checks
