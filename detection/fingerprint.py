"""The typed Fingerprint: what one guest saw, ready to compare and to store.

The probe document is raw (sysfs strings, hex blobs) so the guest side stays
tiny; this module turns it into a frozen dataclass tree once, on the host:
hex strings become integers, config spaces and SMBIOS become decoded views,
kernel log lines lose their timestamps.  ``to_json``/``from_json`` give a
stable, sorted, indented JSON that reads well in a diff — the baseline format.

Policy on bad input: a document whose *shape* is wrong (a number where a string
belongs, a blob that is not hex) raises ProbeError naming the path, since
the probe or the transport is broken.  A guest whose *firmware data* is
broken (SMBIOS table that does not decode, config space shorter than its
header) is an observation: the decoded part is None and the reason is listed
in ``probe_errors``.  Sections the guest does not have (no CPUID on ppc64, no
SMBIOS on pseries) are None or empty.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from guestcompat.errors import ProbeError

from . import frame, jsonmodel, pciconfig, smbios
from . import tools as guest_tools
from .jsonmodel import hexfield

FORMAT = "guestcompat-fingerprint"
VERSION = 1

VMWARE_BACKDOOR_MAGIC = 0x564D5868
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")
_HCTL = re.compile(r"\d{1,6}:\d{1,6}:\d{1,6}:\d{1,12}")
_PCI_ADDR = re.compile(r"^(?:([0-9a-f]{4,}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])\Z")


def pci_ref(domain: int, address: str) -> str:
    """How a PCI function is named across the fingerprint: lspci style,
    ``BB:DD.F``, with ``DDDD:`` in front only for a non-zero domain."""
    return address if domain == 0 else f"{domain:04x}:{address}"


@dataclass(frozen=True)
class PciFunction:
    """One PCI function: sysfs identity, bound driver and config-space topology facts."""

    address: str                                  # "BB:DD.F"
    domain: int = hexfield(4)
    vendor: int = hexfield(4)
    device: int = hexfield(4)
    subsystem_vendor: int | None = hexfield(4)
    subsystem_device: int | None = hexfield(4)
    class_code: int = hexfield(6)
    revision: int = hexfield(2)
    driver: str | None = None
    physical_slot: str | None = None              # /sys/bus/pci/slots name matching bus:dev
    header_type: int | None = None
    multifunction: bool | None = None
    primary_bus: int | None = hexfield(2, default=None)
    secondary_bus: int | None = hexfield(2, default=None)
    subordinate_bus: int | None = hexfield(2, default=None)
    capabilities: tuple[int, ...] = hexfield(2, default=())
    pcie_port_type: str | None = None
    pcie_slot_implemented: bool | None = None
    pcie_slot_number: int | None = None
    config_size: int | None = None

    @property
    def ref(self) -> str:
        return pci_ref(self.domain, self.address)

    @property
    def bus(self) -> int:
        return int(self.address[0:2], 16)

    @property
    def slot(self) -> int:
        return int(self.address[3:5], 16)

    @property
    def function(self) -> int:
        return int(self.address[6], 16)


@dataclass(frozen=True)
class NetInterface:
    name: str
    mac: str | None
    pci: str | None                               # pci_ref of the function, None if virtual
    ifindex: int | None


#: SCSI peripheral device types the probe reports (``/sys/block/*/device/type``) → profile media.
SCSI_MEDIA = {0: "disk", 5: "cdrom"}


@dataclass(frozen=True)
class BlockDevice:
    """A block device; SCSI INQUIRY strings (or an NVMe controller's) without their space padding,
    and where it hangs on its controller."""

    name: str
    vendor: str | None
    model: str | None
    rev: str | None
    pci: str | None
    vio: str | None = None                        # PAPR VIO unit address (hex, pseries), None if not on VIO
    serial: str | None = None                     # NVMe controller serial number
    scsi_type: int | None = None                  # SCSI peripheral device type (0 disk, 5 CD-ROM)
    hctl: tuple[int, int, int, int] | None = None  # SCSI host:channel:target:lun
    sas_phy: int | None = None                    # the HBA phy of its SAS port (mptsas)
    ata_link: int | None = None                   # index of its ATA link on the controller
    nsid: int | None = None                       # NVMe namespace id

    @property
    def media(self) -> str:
        """``disk`` or ``cdrom`` (an NVMe namespace is a disk)."""
        if self.nsid is not None or self.scsi_type is None:
            return "disk" if not self.name.startswith("sr") else "cdrom"
        return SCSI_MEDIA.get(self.scsi_type, f"scsi type {self.scsi_type}")

    def unit(self, ata_devices_per_link: int) -> int | None:
        """Where the profile's ``disks[].unit`` puts it: the NVMe namespace id - 1, the SAS phy, the
        ATA link index (× 2 + master/slave on a parallel IDE channel), else the SCSI target."""
        if self.nsid is not None:
            return self.nsid - 1
        if self.sas_phy is not None:
            return self.sas_phy
        target = self.hctl[2] if self.hctl else None
        if self.ata_link is not None:
            return self.ata_link * ata_devices_per_link + (target or 0)
        return target


@dataclass(frozen=True)
class DiskRate:
    """Timed direct I/O the probe ran on a throttled disk (``guestcompat.rate=``)."""

    pci: str | None                  # pci_ref of the controller
    target: int
    metric: str                      # bps_read, iops_write, bps_total, ...
    block_size: int
    count: int
    device: str | None               # sdX the probe found, None if none
    status: int | None               # dd's exit status
    centiseconds: int | None         # elapsed, from /proc/uptime
    group: int | None = None         # disks read at once (a VM-wide limit): the group's first index

    @property
    def value(self) -> int | None:
        """Bytes/s for bps_* metrics, operations/s for iops_*; None without a clean run."""
        if self.status != 0 or not self.centiseconds:
            return None
        per_second = self.count * 100 / self.centiseconds
        return round(per_second * (self.block_size if self.metric.startswith("bps") else 1))


@dataclass(frozen=True)
class SmbiosRaw:
    """The SMBIOS bytes exactly as the guest read them, so any decoder
    (ours, dmidecode --from-dump) can be re-run on a stored fingerprint."""

    table: bytes
    entry_point: bytes | None


@dataclass(frozen=True)
class CpuidLeaf:
    eax: int = hexfield(8)
    ebx: int = hexfield(8)
    ecx: int = hexfield(8)
    edx: int = hexfield(8)

    def text(self, *regs: str) -> str:
        """Registers as little-endian ASCII, e.g. ``text("ebx", "ecx", "edx")`` = hypervisor signature."""
        raw = b"".join(getattr(self, r).to_bytes(4, "little") for r in regs)
        return raw.decode("latin-1").rstrip("\0")


@dataclass(frozen=True)
class BackdoorReply:
    """Registers after the VMware backdoor GETVERSION call (``inl`` on port 0x5658)."""

    eax: int = hexfield(8)
    ebx: int = hexfield(8)
    ecx: int = hexfield(8)
    edx: int = hexfield(8)

    @property
    def is_vmware(self) -> bool:
        """What Linux's and open-vm-tools' checks accept: magic echoed, eax != -1."""
        return self.ebx == VMWARE_BACKDOOR_MAGIC and self.eax != 0xFFFFFFFF


@dataclass(frozen=True)
class SystemState:
    """What a full (systemd) guest reached, recorded by its probe unit (images/data/fullguest/).

    Absent (``Fingerprint.system is None``) in the initramfs probe images."""

    multi_user: str | None                        # `systemctl is-active multi-user.target`
    state: str | None                             # `systemctl is-system-running`
    failed_units: tuple[str, ...]
    wait_online: int | None                       # systemd-networkd-wait-online status, None: NIC absent
    addresses: Mapping[str, tuple[str, ...]]      # interface -> "address/prefix" (global IPv4/IPv6)


@dataclass(frozen=True)
class Fingerprint:
    """Everything the probe observed in one guest, typed."""

    arch: str | None
    kernel: str | None
    dmi: Mapping[str, str]
    smbios: smbios.SmbiosView | None
    smbios_raw: SmbiosRaw | None
    pci: tuple[PciFunction, ...]
    net: tuple[NetInterface, ...]
    block: tuple[BlockDevice, ...]
    disk_rates: tuple[DiskRate, ...]
    kernel_log: tuple[str, ...]
    hypervisor_lines: tuple[str, ...]
    cpuid: Mapping[int, CpuidLeaf] = field(metadata={"key_hex": 8})
    backdoor: BackdoorReply | None
    backdoor_error: str | None
    devicetree: Mapping[str, tuple[str, ...]]
    probe_errors: tuple[str, ...]
    tools: guest_tools.GuestTools | None = None   # the guest's own tools (x86 images), parsed
    system: SystemState | None = None             # full guests only (optional, additive)
    input_devices: tuple[str, ...] = ()           # input device names, /proc/bus/input/devices order (issue 26)
    guestinfo: Mapping[str, str | None] = field(default_factory=dict)
    """guestinfo keys the run announced, read back over the backdoor RPC channel: the value, or None
    when the channel did not answer with one (no RPC, or "0 No value found")."""

    # -- lookups ---------------------------------------------------------
    def pci_function(self, ref: str) -> PciFunction | None:
        for fn in self.pci:
            if fn.ref == ref:
                return fn
        return None

    @property
    def cpu_vendor(self) -> str | None:
        leaf = self.cpuid.get(0)
        return leaf.text("ebx", "edx", "ecx") if leaf else None

    @property
    def hypervisor_signature(self) -> str | None:
        leaf = self.cpuid.get(0x40000000)
        return leaf.text("ebx", "ecx", "edx") if leaf else None

    # -- construction ----------------------------------------------------
    @classmethod
    def from_console(cls, lines: Iterable[str]) -> "Fingerprint":
        """Extract the framed document from console lines and type it."""
        return cls.from_document(frame.extract_document(lines))

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> "Fingerprint":
        """Type a decoded probe document (see detection/README.md for its layout)."""
        return _Builder(doc).build()

    # -- baseline JSON -----------------------------------------------------
    def to_json(self) -> str:
        plain = {"format": FORMAT, "version": VERSION, **jsonmodel.to_plain(self)}
        return json.dumps(plain, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Fingerprint":
        try:
            plain = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ProbeError(f"fingerprint JSON does not parse: {exc}") from None
        if not isinstance(plain, dict) or plain.get("format") != FORMAT:
            raise ProbeError(f"not a guestcompat fingerprint (format {plain.get('format') if isinstance(plain, dict) else None!r})")
        if plain.get("version") != VERSION:
            raise ProbeError(f"fingerprint version {plain.get('version')!r}, this guestcompat reads {VERSION}")
        body = {k: v for k, v in plain.items() if k not in ("format", "version")}
        try:
            return jsonmodel.from_plain(cls, body, "")
        except ProbeError as exc:
            raise ProbeError(f"fingerprint JSON: {exc}") from None


# ---------------------------------------------------------------------------
# Probe document → Fingerprint
# ---------------------------------------------------------------------------

def _clean(s: str) -> str:
    """Guest bytes that were not UTF-8 arrive as surrogate escapes; show them as \\xNN."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class _Builder:
    """Walks the raw document, naming the path in every error."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        if not isinstance(doc, Mapping):
            raise ProbeError(f"probe document: expected an object, got {type(doc).__name__}")
        self.doc = doc
        self.errors: list[str] = []

    # typed accessors ---------------------------------------------------------
    @staticmethod
    def _fail(path: str, expected: str, value: Any) -> ProbeError:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return ProbeError(f"probe document: {path}: expected {expected}, got {type(value).__name__} {shown}")

    def obj(self, parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        value = parent.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self._fail(path, "an object", value)
        return value

    def text(self, parent: Mapping[str, Any], key: str, path: str) -> str | None:
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._fail(path, "a string", value)
        return _clean(value)

    def hexint(self, parent: Mapping[str, Any], key: str, path: str, required: bool = False) -> int | None:
        value = self.text(parent, key, path)
        if value is None or value == "":
            if required:
                raise ProbeError(f"probe document: {path}: missing")
            return None
        try:
            return int(value, 16)
        except ValueError:
            raise self._fail(path, "a hex number", value) from None

    def decint(self, parent: Mapping[str, Any], key: str, path: str) -> int | None:
        value = self.text(parent, key, path)
        if value is None or value.strip() == "":
            return None
        try:
            return int(value.strip())
        except ValueError:
            raise self._fail(path, "a decimal number", value) from None

    def blob(self, parent: Mapping[str, Any], key: str, path: str) -> bytes | None:
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or len(value) % 2:
            raise self._fail(path, "a hex string", value)
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise self._fail(path, "a hex string", value) from None

    def strings(self, parent: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
        value = parent.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self._fail(path, "a list of strings", value)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self._fail(f"{path}[{i}]", "a string", item)
        return tuple(_clean(v) for v in value)

    # sections -------------------------------------------------------------
    def build(self) -> Fingerprint:
        doc = self.doc
        self.errors.extend(self.strings(doc, "errors", "errors"))
        dmi_raw = self.obj(doc, "dmi", "dmi")
        dmi = {k: self.text(dmi_raw, k, f"dmi.{k}") or "" for k in sorted(dmi_raw)}
        klog = tuple(_TIMESTAMP.sub("", line) for line in self.strings(doc, "kernel_log", "kernel_log"))
        backdoor, backdoor_error = self.backdoor()
        tools = self.tools()
        return Fingerprint(
            arch=self.text(doc, "arch", "arch"),
            kernel=self.text(doc, "kernel", "kernel"),
            dmi=dmi,
            smbios=self.smbios(),
            smbios_raw=self.smbios_raw(),
            pci=self.pci(),
            net=self.net(),
            block=self.block(),
            disk_rates=self.disk_rates(),
            kernel_log=klog,
            hypervisor_lines=tuple(line for line in klog if "Hypervisor detected" in line),
            cpuid=self.cpuid(),
            backdoor=backdoor,
            backdoor_error=backdoor_error,
            devicetree=self.devicetree(),
            probe_errors=tuple(self.errors),
            tools=tools,
            system=self.system(),
            input_devices=self.input_devices(),
            guestinfo=self.guestinfo(),
        )

    def input_devices(self) -> tuple[str, ...]:
        """``input/<n>``: the names of the guest's input devices (at most 64, the probe's bound)."""
        sec = self.obj(self.doc, "input", "input")
        keys = sorted(sec, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
        if len(keys) > 64:
            raise self._fail("input", "at most 64 input devices", f"{len(keys)} entries")
        return tuple(self.text(sec, k, f"input.{k}") or "" for k in keys)

    def guestinfo(self) -> dict[str, str | None]:
        sec = self.obj(self.doc, "guestinfo", "guestinfo")
        out: dict[str, str | None] = {}
        for key in sorted(sec):
            entry = self.obj(sec, key, f"guestinfo.{key}")
            ok = self.text(entry, "status", f"guestinfo.{key}.status") == "0"
            out[_clean(key)] = (self.text(entry, "value", f"guestinfo.{key}.value") or "") if ok else None
        return out

    def system(self) -> SystemState | None:
        sec = self.obj(self.doc, "system", "system")
        if not sec:
            return None
        raw_ip = self.text(sec, "ip_addr", "system.ip_addr") or ""
        addresses: dict[str, tuple[str, ...]] = {}
        try:
            links = json.loads(raw_ip) if raw_ip.strip() else []
        except (json.JSONDecodeError, RecursionError) as exc:
            self.errors.append(f"system.ip_addr: `ip -j addr` output does not parse: {exc}")
            links = []
        for link in links if isinstance(links, list) else ():
            if not isinstance(link, dict) or not isinstance(link.get("ifname"), str):
                continue
            addresses[_clean(link["ifname"])] = tuple(
                f"{a.get('local')}/{a.get('prefixlen')}" for a in link.get("addr_info") or ()
                if isinstance(a, dict) and a.get("scope") == "global")
        failed = self.text(sec, "failed", "system.failed") or ""
        return SystemState(
            multi_user=self.text(sec, "multi_user", "system.multi_user"),
            state=self.text(sec, "state", "system.state"),
            failed_units=tuple(line.split()[0] for line in failed.splitlines() if line.strip()),
            wait_online=self.decint(sec, "wait_online", "system.wait_online"),
            addresses=dict(sorted(addresses.items())))

    def _run(self, d: Mapping[str, Any], path: str) -> guest_tools.ToolRun:
        return guest_tools.ToolRun(
            status=self.decint(d, "status", f"{path}.status"),
            stdout=self.text(d, "stdout", f"{path}.stdout") or "",
            stderr=self.text(d, "stderr", f"{path}.stderr") or "",
            centiseconds=self.decint(d, "centiseconds", f"{path}.centiseconds"))

    def tools(self) -> guest_tools.GuestTools | None:
        sec = self.obj(self.doc, "tools", "tools")
        if not sec:
            return None
        runs: dict[str, guest_tools.ToolRun] = {}
        for key in sec:
            if key == "net_id":
                per_if = self.obj(sec, key, "tools.net_id")
                for name in per_if:
                    runs[f"net_id/{_clean(name)}"] = self._run(
                        self.obj(per_if, name, f"tools.net_id[{name!r}]"), f"tools.net_id[{name!r}]")
            else:
                runs[_clean(key)] = self._run(self.obj(sec, key, f"tools[{key!r}]"), f"tools[{key!r}]")
        parsed, errors = guest_tools.parse_runs(runs)
        self.errors.extend(errors)
        return parsed

    def smbios_raw(self) -> SmbiosRaw | None:
        sec = self.obj(self.doc, "smbios", "smbios")
        table = self.blob(sec, "table", "smbios.table")
        if table is None:
            return None
        return SmbiosRaw(table, self.blob(sec, "entry_point", "smbios.entry_point") or None)

    def smbios(self) -> smbios.SmbiosView | None:
        sec = self.obj(self.doc, "smbios", "smbios")
        table = self.blob(sec, "table", "smbios.table")
        entry = self.blob(sec, "entry_point", "smbios.entry_point")
        if table is None:
            return None
        try:
            return smbios.decode(table, entry or None).view()
        except ProbeError as exc:
            self.errors.append(f"smbios: {exc}")
            return None

    def pci(self) -> tuple[PciFunction, ...]:
        sec = self.obj(self.doc, "pci", "pci")
        slots_raw = self.obj(self.doc, "pci_slots", "pci_slots")
        slots: dict[str, str] = {}
        for name in sorted(slots_raw, key=_natural):
            addr = self.text(slots_raw, name, f"pci_slots.{name}")
            if addr:
                slots.setdefault(addr.strip().lower(), name)
        out = []
        for sysfs_addr in sec:
            path = f"pci[{sysfs_addr!r}]"
            m = _PCI_ADDR.match(sysfs_addr)
            if not m:
                raise ProbeError(f"probe document: {path}: not a PCI address")
            fn = self.obj(sec, sysfs_addr, path)
            domain = int(m[1] or "0", 16)
            address = f"{m[2]}:{m[3]}.{m[4]}"
            cfg = None
            raw = self.blob(fn, "config", f"{path}.config")
            if raw is not None:
                try:
                    cfg = pciconfig.decode_config(raw)
                except ProbeError as exc:
                    self.errors.append(f"pci {sysfs_addr}: {exc}")
            for err in (cfg.capability_errors if cfg else ()):
                self.errors.append(f"pci {sysfs_addr}: {err}")
            driver = self.text(fn, "driver", f"{path}.driver")
            out.append(PciFunction(
                address=address,
                domain=domain,
                vendor=self.hexint(fn, "vendor", f"{path}.vendor", required=True),
                device=self.hexint(fn, "device", f"{path}.device", required=True),
                subsystem_vendor=self.hexint(fn, "subsystem_vendor", f"{path}.subsystem_vendor"),
                subsystem_device=self.hexint(fn, "subsystem_device", f"{path}.subsystem_device"),
                class_code=self.hexint(fn, "class", f"{path}.class", required=True),
                revision=self.hexint(fn, "revision", f"{path}.revision", required=True),
                driver=driver or None,
                physical_slot=slots.get(f"{domain:04x}:{m[2]}:{m[3]}"),
                header_type=cfg.header_type if cfg else None,
                multifunction=cfg.multifunction if cfg else None,
                primary_bus=cfg.primary_bus if cfg else None,
                secondary_bus=cfg.secondary_bus if cfg else None,
                subordinate_bus=cfg.subordinate_bus if cfg else None,
                capabilities=tuple(c.id for c in cfg.capabilities) if cfg else (),
                pcie_port_type=cfg.pcie.port_type_name if cfg and cfg.pcie else None,
                pcie_slot_implemented=cfg.pcie.slot_implemented if cfg and cfg.pcie else None,
                pcie_slot_number=cfg.pcie.physical_slot if cfg and cfg.pcie else None,
                config_size=cfg.size if cfg else None,
            ))
        return tuple(sorted(out, key=lambda f: (f.domain, f.address)))

    def _pci_link(self, parent: Mapping[str, Any], path: str) -> str | None:
        value = self.text(parent, "pci", path)
        if not value:
            return None
        m = _PCI_ADDR.match(value)
        if not m:
            raise ProbeError(f"probe document: {path}: not a PCI address: {value!r}")
        return pci_ref(int(m[1] or "0", 16), f"{m[2]}:{m[3]}.{m[4]}")

    def net(self) -> tuple[NetInterface, ...]:
        sec = self.obj(self.doc, "net", "net")
        out = []
        for name in sorted(sec):
            path = f"net[{name!r}]"
            d = self.obj(sec, name, path)
            out.append(NetInterface(
                name=_clean(name),
                mac=self.text(d, "mac", f"{path}.mac") or None,
                pci=self._pci_link(d, f"{path}.pci"),
                ifindex=self.decint(d, "ifindex", f"{path}.ifindex"),
            ))
        return tuple(out)

    def block(self) -> tuple[BlockDevice, ...]:
        sec = self.obj(self.doc, "block", "block")
        out = []
        for name in sorted(sec):
            path = f"block[{name!r}]"
            d = self.obj(sec, name, path)

            def stripped(key: str) -> str | None:
                v = self.text(d, key, f"{path}.{key}")
                return v.rstrip() if v is not None else None

            hctl = stripped("hctl")
            hctl_parts = tuple(int(x) for x in hctl.split(":")) if hctl and _HCTL.fullmatch(hctl) else None
            if hctl and hctl_parts is None:
                raise ProbeError(f"probe document: {path}.hctl: not host:channel:target:lun: {hctl[:40]!r}")
            out.append(BlockDevice(
                name=_clean(name),
                vendor=stripped("vendor"),
                model=stripped("model"),
                rev=stripped("rev") or stripped("firmware_rev"),
                pci=self._pci_link(d, f"{path}.pci"),
                vio=(self.text(d, "vio", f"{path}.vio") or "").lower() or None,
                serial=stripped("serial"),
                scsi_type=self.decint(d, "type", f"{path}.type"),
                hctl=hctl_parts,  # type: ignore[arg-type]
                sas_phy=self.decint(d, "sas_phy", f"{path}.sas_phy"),
                ata_link=self.decint(d, "ata_link", f"{path}.ata_link"),
                nsid=self.decint(d, "nsid", f"{path}.nsid"),
            ))
        return tuple(out)

    def disk_rates(self) -> tuple[DiskRate, ...]:
        sec = self.obj(self.doc, "rate", "rate")
        out = []
        for key in sorted(sec, key=_natural):
            path = f"rate[{key!r}]"
            d = self.obj(sec, key, path)
            spec = self.text(d, "spec", f"{path}.spec") or ""
            parts = spec.split("/")
            if len(parts) != 5 or not all(p.isdigit() for p in (parts[1], parts[3], parts[4])):
                raise ProbeError(f"probe document: {path}.spec: not PCI/target/metric/block/count: {spec!r}")
            m = _PCI_ADDR.match(parts[0])
            pci = pci_ref(int(m[1] or "0", 16), f"{m[2]}:{m[3]}.{m[4]}") if m else None
            start, end = self.text(d, "start", f"{path}.start"), self.text(d, "end", f"{path}.end")
            status = self.text(d, "status", f"{path}.status")
            elapsed = None
            if start and end:
                try:
                    elapsed = round((float(end) - float(start)) * 100)
                except ValueError:
                    raise ProbeError(f"probe document: {path}: uptime is not a number ({start!r}, {end!r})") from None
            out.append(DiskRate(pci=pci, target=int(parts[1]), metric=parts[2], block_size=int(parts[3]),
                                count=int(parts[4]), device=self.text(d, "device", f"{path}.device") or None,
                                status=int(status) if status and status.isdigit() else None,
                                centiseconds=elapsed, group=self._group(d, path)))
        return tuple(out)

    def _group(self, d: Mapping[str, Any], path: str) -> int | None:
        group = self.text(d, "group", f"{path}.group")
        if group is None:
            return None
        if not group.isdigit() or len(group) > 6:
            raise ProbeError(f"probe document: {path}.group: not an index: {group[:20]!r}")
        return int(group)

    def _regs(self, d: Mapping[str, Any], path: str) -> tuple[int, int, int, int] | None:
        regs = [self.hexint(d, r, f"{path}.{r}") for r in ("eax", "ebx", "ecx", "edx")]
        if any(r is None for r in regs):
            return None
        return regs[0], regs[1], regs[2], regs[3]  # type: ignore[return-value]

    def cpuid(self) -> dict[int, CpuidLeaf]:
        sec = self.obj(self.doc, "cpuid", "cpuid")
        out = {}
        for leaf in sec:
            path = f"cpuid[{leaf!r}]"
            try:
                number = int(leaf, 16)
            except ValueError:
                raise ProbeError(f"probe document: {path}: not a hex leaf number") from None
            d = self.obj(sec, leaf, path)
            err = self.text(d, "error", f"{path}.error")
            if err:
                self.errors.append(f"cpuid {leaf}: {err}")
            regs = self._regs(d, path)
            if regs is not None:
                out[number] = CpuidLeaf(*regs)
        return dict(sorted(out.items()))

    def backdoor(self) -> tuple[BackdoorReply | None, str | None]:
        sec = self.obj(self.doc, "backdoor", "backdoor")
        d = self.obj(sec, "getversion", "backdoor.getversion")
        regs = self._regs(d, "backdoor.getversion")
        return (BackdoorReply(*regs) if regs else None,
                self.text(d, "error", "backdoor.getversion.error") or None)

    def devicetree(self) -> dict[str, tuple[str, ...]]:
        sec = self.obj(self.doc, "devicetree", "devicetree")
        out: dict[str, tuple[str, ...]] = {}
        root = self.obj(sec, "root", "devicetree.root")
        for prop in root:
            raw = self.blob(root, prop, f"devicetree.root.{prop}")
            if raw is not None:
                out[prop] = _dt_value(raw)
        vdev = self.obj(sec, "vdevice", "devicetree.vdevice")
        for node in vdev:
            props = self.obj(vdev, node, f"devicetree.vdevice.{node}")
            for prop in props:
                raw = self.blob(props, prop, f"devicetree.vdevice.{node}.{prop}")
                if raw is not None:
                    out[f"vdevice/{node}/{prop}"] = _dt_value(raw)
        return dict(sorted(out.items()))


def _dt_value(raw: bytes) -> tuple[str, ...]:
    """A device-tree property: NUL-terminated strings when it looks like text, else one hex string."""
    if raw.endswith(b"\0") and all(32 <= b < 127 for b in raw.replace(b"\0", b"")) and b"\0\0" not in raw:
        return tuple(p.decode("ascii") for p in raw[:-1].split(b"\0"))
    return ("0x" + raw.hex(),)


def _natural(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))
