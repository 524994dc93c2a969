"""What the guest's own tools said, parsed on the host into typed values.

The probe runs the real tools a migration engineer runs inside a VM
(``lspci -nnmmv``, ``dmidecode``, ``systemd-detect-virt``, ``virt-what``,
``udevadm test-builtin net_id``, open-vm-tools' ``vmware-checkvm``) and carries
their raw output (``tools/<key>/{status,centiseconds,stdout,stderr}``).  The
parsers here turn that text into values a comparison can use.

Parsers never raise on odd text: tool output is an observation, so what does
not parse is skipped and described in the returned ``errors`` (the
fingerprint lists them in ``probe_errors``).  They are written against the
real VMware captures in shared/vmware-captures/ and fuzzed in the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from .jsonmodel import hexfield

_SLOT = re.compile(r"(?:[0-9a-fA-F]{1,8}:)?[0-9a-fA-F]{2}:[0-1][0-9a-fA-F]\.[0-7]")
_ID_SUFFIX = re.compile(r"^(.*?)\s*\[([0-9a-fA-F]{4})\]$")
_HANDLE = re.compile(r"^Handle 0x([0-9A-Fa-f]{1,8}), DMI type (\d{1,3}), (\d+) bytes?$")
_SMBIOS_VERSION = re.compile(r"^SMBIOS (\d+\.\d+(?:\.\d+)?) present\.?$")
_CHECKVM_VERSION = re.compile(r"VMware software version (\d+)")


@dataclass(frozen=True)
class ToolRun:
    """One tool execution in the guest, as the probe recorded it."""

    status: int | None
    stdout: str
    stderr: str
    centiseconds: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == 0


# --------------------------------------------------------------------------
# lspci -nnmmv


@dataclass(frozen=True)
class LspciDevice:
    """One ``lspci -nnmmv`` record: names as lspci printed them (from pci.ids), ids typed."""

    slot: str                                       # as printed: "0b:00.0" (or "DDDD:BB:DD.F")
    class_name: str | None = None
    class_id: int | None = hexfield(4, default=None)
    vendor_name: str | None = None
    vendor: int | None = hexfield(4, default=None)
    device_name: str | None = None
    device: int | None = hexfield(4, default=None)
    subsystem_vendor_name: str | None = None
    subsystem_vendor: int | None = hexfield(4, default=None)
    subsystem_name: str | None = None
    subsystem_device: int | None = hexfield(4, default=None)
    revision: int | None = hexfield(2, default=None)
    prog_if: int | None = hexfield(2, default=None)
    physical_slot: str | None = None
    other: Mapping[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        """``BB:DD.F`` without a zero domain, as the fingerprint names functions."""
        return self.slot[5:] if self.slot.startswith("0000:") else self.slot


_LSPCI_NAMED = {"Class": ("class_name", "class_id"), "Vendor": ("vendor_name", "vendor"),
                "Device": ("device_name", "device"),
                "SVendor": ("subsystem_vendor_name", "subsystem_vendor"),
                "SDevice": ("subsystem_name", "subsystem_device")}


def _name_and_id(value: str) -> tuple[str, int | None]:
    m = _ID_SUFFIX.match(value)
    return (m[1], int(m[2], 16)) if m else (value, None)


def parse_lspci_vmm(text: str) -> tuple[tuple[LspciDevice, ...], tuple[str, ...]]:
    """``lspci -vmm[nn]`` records (blank-line separated ``Key:<TAB>value``) → devices, errors."""
    devices: list[LspciDevice] = []
    errors: list[str] = []
    for n, block in enumerate(re.split(r"\n[ \t]*\n", text)):
        lines = [ln for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]
        if not lines:
            continue
        values: dict[str, str] = {}
        for ln in lines:
            key, sep, value = ln.partition(":")
            if not sep or not key or key != key.strip() or " " in key:
                errors.append(f"lspci record {n}: not 'Key:<TAB>value': {ln[:60]!r}")
                continue
            values.setdefault(key, value.strip())
        slot = values.pop("Slot", None)
        if not slot:
            if values:
                errors.append(f"lspci record {n}: no Slot line")
            continue
        if not _SLOT.fullmatch(slot):
            errors.append(f"lspci record {n}: Slot {slot[:40]!r} is not a PCI address (bus:device.function)")
            continue
        kw: dict[str, object] = {}
        for key, (name_attr, id_attr) in _LSPCI_NAMED.items():
            if key in values:
                kw[name_attr], kw[id_attr] = _name_and_id(values.pop(key))
        for key, attr in (("Rev", "revision"), ("ProgIf", "prog_if")):
            if key in values:
                raw = values.pop(key)
                try:
                    kw[attr] = int(raw, 16)
                except ValueError:
                    errors.append(f"lspci {slot}: {key} {raw[:20]!r} is not hex")
        if "PhySlot" in values:
            kw["physical_slot"] = values.pop("PhySlot")
        devices.append(LspciDevice(slot=slot, other=dict(sorted(values.items())), **kw))  # type: ignore[arg-type]
    return tuple(devices), tuple(errors)


# --------------------------------------------------------------------------
# dmidecode


@dataclass(frozen=True)
class DmiStructure:
    """One structure of dmidecode's text output.

    ``fields`` holds ``Key: value`` lines; the indented items printed under a
    key (``Characteristics:``, ``Contained Elements: 1``) are in ``lists``.
    """

    handle: int = hexfield(4)
    type: int = 0
    size: int = 0
    title: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Dmidecode:
    smbios_version: str | None
    structures: tuple[DmiStructure, ...]

    def of_type(self, dmi_type: int) -> tuple[DmiStructure, ...]:
        return tuple(s for s in self.structures if s.type == dmi_type)

    def first(self, dmi_type: int) -> DmiStructure | None:
        found = self.of_type(dmi_type)
        return found[0] if found else None


def parse_dmidecode(text: str) -> tuple[Dmidecode, tuple[str, ...]]:
    """dmidecode's default text output → structures (in order), errors."""
    errors: list[str] = []
    version = None
    structures: list[DmiStructure] = []
    cur: dict | None = None
    list_key: str | None = None

    def close() -> None:
        if cur is not None:
            structures.append(DmiStructure(cur["handle"], cur["type"], cur["size"], cur["title"],
                                           cur["fields"], {k: tuple(v) for k, v in cur["lists"].items()}))

    for ln in text.splitlines():
        if not ln.strip():
            list_key = None
            continue
        if ln.startswith("Handle "):
            close()
            cur, list_key = None, None
            m = _HANDLE.match(ln.strip())
            if not m:
                errors.append(f"dmidecode: malformed handle line {ln[:60]!r}")
                continue
            cur = {"handle": int(m[1], 16), "type": int(m[2]), "size": int(m[3]), "title": None,
                   "fields": {}, "lists": {}}
            continue
        if cur is None:
            m = _SMBIOS_VERSION.match(ln.strip())
            if m:
                version = m[1]
            continue
        if cur["title"] is None:
            if ln.startswith("\t"):
                errors.append(f"dmidecode: handle 0x{cur['handle']:04X} has no title line")
                cur["title"] = ""
            else:
                cur["title"] = ln.strip()
                continue
        if ln.startswith("\t\t"):
            if list_key is None:
                errors.append(f"dmidecode: handle 0x{cur['handle']:04X}: list item outside a list: {ln.strip()[:40]!r}")
            else:
                cur["lists"].setdefault(list_key, []).append(ln.strip())
            continue
        if ln.startswith("\t"):
            key, sep, value = ln[1:].partition(":")
            if not sep:
                # raw "Header and Data" hex etc. without a key: keep it as an unnamed list item
                cur["lists"].setdefault("", []).append(ln.strip())
                continue
            key, value = key.strip(), value.strip()
            if value == "":
                list_key = key
                cur["lists"].setdefault(key, [])
            else:
                list_key = key          # "Contained Elements: 1" has items below it too
                cur["fields"].setdefault(key, value)
            continue
        # a sub-heading inside one structure ("On Board Device 2 Information", type 10)
        cur["lists"].setdefault("", []).append(ln.strip())
        list_key = None
    close()
    return Dmidecode(version, tuple(structures)), tuple(errors)


# --------------------------------------------------------------------------
# udevadm test-builtin net_id, systemd-detect-virt, virt-what, vmware-checkvm


@dataclass(frozen=True)
class NetNames:
    """The names systemd's net_id builtin computes for one interface (ID_NET_NAME_*)."""

    interface: str
    properties: Mapping[str, str]

    @property
    def onboard(self) -> str | None:
        return self.properties.get("ID_NET_NAME_ONBOARD")

    @property
    def slot(self) -> str | None:
        return self.properties.get("ID_NET_NAME_SLOT")

    @property
    def path(self) -> str | None:
        return self.properties.get("ID_NET_NAME_PATH")

    @property
    def mac(self) -> str | None:
        return self.properties.get("ID_NET_NAME_MAC")

    @property
    def predictable(self) -> str | None:
        """The name udev's default policy (``onboard slot path``) gives the interface."""
        return self.onboard or self.slot or self.path


def parse_net_id(interface: str, text: str) -> tuple[NetNames, tuple[str, ...]]:
    props: dict[str, str] = {}
    errors = []
    for ln in text.splitlines():
        if not ln.strip():
            continue
        key, sep, value = ln.partition("=")
        if not sep or not re.fullmatch(r"[A-Z0-9_]+", key):
            errors.append(f"net_id {interface}: not KEY=value: {ln[:60]!r}")
            continue
        props[key] = value
    return NetNames(interface, props), tuple(errors)


def parse_detect_virt(run: ToolRun) -> str | None:
    """systemd-detect-virt's verdict ("vmware", "none", ...); None if it printed nothing usable."""
    words = run.stdout.split()
    return words[0] if len(words) == 1 else None


def parse_virt_what(run: ToolRun) -> tuple[str, ...] | None:
    """virt-what's facts, most specific hypervisor first; None if it failed."""
    if run.status != 0:
        return None
    return tuple(ln.strip() for ln in run.stdout.splitlines() if ln.strip())


@dataclass(frozen=True)
class VmwareCheck:
    """open-vm-tools' vmware-checkvm: did the backdoor answer, with which version."""

    ok: bool
    version: int | None
    message: str


def parse_checkvm(run: ToolRun) -> VmwareCheck:
    m = _CHECKVM_VERSION.search(run.stdout)
    message = (run.stdout.strip() or run.stderr.strip()).splitlines()
    return VmwareCheck(run.ok and "(good)" in run.stdout, int(m[1]) if m else None,
                       message[0] if message else f"exit status {run.status}")


@dataclass(frozen=True)
class GuestTools:
    """Everything the guest's own tools reported, parsed; ``runs`` keeps the raw output."""

    runs: Mapping[str, ToolRun]
    lspci: tuple[LspciDevice, ...] = ()
    dmidecode: Dmidecode | None = None
    detect_virt: str | None = None
    virt_what: tuple[str, ...] | None = None
    vmware_checkvm: VmwareCheck | None = None
    vmware_checkvm_ioperm: VmwareCheck | None = None
    net_names: Mapping[str, NetNames] = field(default_factory=dict)

    def lspci_device(self, address: str) -> LspciDevice | None:
        for dev in self.lspci:
            if dev.address == address or dev.slot == address:
                return dev
        return None


def parse_runs(runs: Mapping[str, ToolRun]) -> tuple[GuestTools, tuple[str, ...]]:
    """Parse every known tool among *runs* (keys as in the probe document)."""
    errors: list[str] = []

    def failed(key: str) -> bool:
        run = runs[key]
        if not run.ok:
            errors.append(f"tool {key} exited with status {run.status}: "
                          f"{(run.stderr.strip().splitlines() or [''])[-1][:120]}")
        return not run.ok

    lspci: tuple[LspciDevice, ...] = ()
    if "lspci" in runs and not failed("lspci"):
        lspci, errs = parse_lspci_vmm(runs["lspci"].stdout)
        errors += errs
    dmi = None
    if "dmidecode" in runs and not failed("dmidecode"):
        dmi, errs = parse_dmidecode(runs["dmidecode"].stdout)
        errors += errs
    net: dict[str, NetNames] = {}
    for key in sorted(runs):
        if key.startswith("net_id/") and not failed(key):
            names, errs = parse_net_id(key[len("net_id/"):], runs[key].stdout)
            net[names.interface] = names
            errors += errs
    return GuestTools(
        runs=dict(sorted(runs.items())),
        lspci=lspci,
        dmidecode=dmi,
        detect_virt=parse_detect_virt(runs["systemd-detect-virt"]) if "systemd-detect-virt" in runs else None,
        virt_what=parse_virt_what(runs["virt-what"]) if "virt-what" in runs else None,
        vmware_checkvm=parse_checkvm(runs["vmware-checkvm"]) if "vmware-checkvm" in runs else None,
        vmware_checkvm_ioperm=(parse_checkvm(runs["vmware-checkvm-ioperm"])
                               if "vmware-checkvm-ioperm" in runs else None),
        net_names=net,
    ), tuple(errors)
