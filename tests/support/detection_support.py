"""Shared helpers for the detection tests: running the guest-side scripts on
the host, building record streams, fake sysfs trees, config spaces and SMBIOS
tables.  (Module name is unique on purpose: tests/ has no packages.)"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from guestcompat.detection import smbios as S
from guestcompat.detection.tools import parse_dmidecode as tools_parse_dmidecode

PROBE_DIR = Path(__file__).resolve().parents[2] / "detection" / "probe"
PROBE_SH = PROBE_DIR / "probe.sh"
PROBE_AWK = PROBE_DIR / "probe.awk"
BUSYBOX = shutil.which("busybox") or "/bin/busybox"


# --------------------------------------------------------------------------
# Record streams (format in probe.awk)
# --------------------------------------------------------------------------

def records_for(tree: dict, prefix: str = "") -> list[str]:
    """Records that make probe.awk rebuild ``tree`` (nested dicts of strings)."""
    out: list[str] = []
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict):
            out += records_for(value, path)
        else:
            first, *rest = value.split("\n")
            out.append(f"s\t{path}\t{first}")
            out += [f"+\t{path}\t{line}" for line in rest]
    return out


def run_awk(records: list[str] | str, tmp: Path, awk: list[str] | None = None,
            sizes: Path | None = None, hexdump: Path | None = None) -> tuple[bytes, int]:
    """Run probe.awk on a record stream; returns (JSON bytes, byte count it reported)."""
    rec = tmp / "rec"
    text = records if isinstance(records, str) else "".join(r + "\n" for r in records)
    rec.write_bytes(text.encode("utf-8", "surrogateescape"))
    count = tmp / "count"
    argv = (awk or [BUSYBOX, "awk"]) + ["-v", f"count={count}"]
    if sizes is not None:
        argv += ["-v", f"sizes={sizes}", "-v", f"hexdump={hexdump}"]
    argv += ["-f", str(PROBE_AWK), str(rec)]
    res = subprocess.run(argv, capture_output=True, check=True, env={**os.environ, "LC_ALL": "C"})
    return res.stdout, int(count.read_text())


# --------------------------------------------------------------------------
# PCI config spaces
# --------------------------------------------------------------------------

def config_space(vendor: int, device: int, class_code: int, revision: int = 0, header_type: int = 0,
                 status: int = 0, size: int = 256) -> bytearray:
    cfg = bytearray(size)
    struct.pack_into("<HHHHBBBBBBBB", cfg, 0, vendor, device, 0x0007, status, revision,
                     class_code & 0xFF, (class_code >> 8) & 0xFF, class_code >> 16, 0, 0, header_type, 0)
    return cfg


def add_caps(cfg: bytearray, caps: list[tuple[int, int, bytes]], ptr_offset: int = 0x34) -> None:
    """caps: (offset, id, payload after the 2-byte header), chained in order."""
    struct.pack_into("<H", cfg, 6, struct.unpack_from("<H", cfg, 6)[0] | 0x10)
    cfg[ptr_offset] = caps[0][0] if caps else 0
    for i, (off, cap_id, payload) in enumerate(caps):
        nxt = caps[i + 1][0] if i + 1 < len(caps) else 0
        cfg[off] = cap_id
        cfg[off + 1] = nxt
        cfg[off + 2:off + 2 + len(payload)] = payload


def pcie_cap(port_type: int, slot: int | None = None, version: int = 2) -> bytes:
    """Payload of a PCI Express capability (after id/next)."""
    flags = version | (port_type << 4) | (0x100 if slot is not None else 0)
    body = bytearray(0x3C - 2)
    struct.pack_into("<H", body, 0, flags)
    if slot is not None:
        struct.pack_into("<I", body, 0x14 - 2, (slot << 19) | 0x60)
    return bytes(body)


def root_port(secondary: int, subordinate: int, slot: int | None, primary: int = 0,
              ssvid: tuple[int, int] | None = (0x15AD, 0x07A0), multifunction: bool = False) -> bytes:
    """A pcie-root-port-like type 1 header: PCIe cap, SSVID cap, MSI cap."""
    cfg = config_space(0x15AD, 0x07A0, 0x060400, header_type=0x81 if multifunction else 0x01)
    cfg[0x18:0x1B] = bytes([primary, secondary, subordinate])
    caps = [(0x40, 0x10, pcie_cap(4, slot))]
    if ssvid:
        caps.append((0x80, 0x0D, b"\0\0" + struct.pack("<HH", *ssvid)))
    caps.append((0x90, 0x05, bytes(12)))
    add_caps(cfg, caps)
    return bytes(cfg)


def endpoint(vendor: int, device: int, class_code: int, subsys: tuple[int, int], revision: int = 1,
             pcie: bool = True) -> bytes:
    cfg = config_space(vendor, device, class_code, revision=revision)
    struct.pack_into("<HH", cfg, 0x2C, *subsys)
    caps = [(0x40, 0x01, bytes(6))]
    if pcie:
        caps.append((0x48, 0x10, pcie_cap(0)))
    caps.append((0x9C, 0x11, bytes(10)))
    add_caps(cfg, caps)
    return bytes(cfg)


def lspci_dump(configs: dict[str, bytes]) -> str:
    """``lspci -xxx`` style dump that ``lspci -F`` reads back."""
    lines = []
    for addr, cfg in configs.items():
        lines.append(f"{addr} Device")
        for off in range(0, len(cfg), 16):
            lines.append(f"{off:02x}: " + " ".join(f"{b:02x}" for b in cfg[off:off + 16]))
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# SMBIOS tables
# --------------------------------------------------------------------------

def vmware_bios_table(uuid: bytes = bytes.fromhex("564dfd288933f8e2647401599 23b580e".replace(" ", "")),
                      serial: str = "VMware-56 4d fd 28 89 33 f8 e2-64 74 01 59 92 3b 58 0e") -> bytes:
    """Types 0, 1, 2, 3, 11, 127 with the values of the VMware Fusion capture
    (shared/vmware-captures/fusion-centos77-jc.dmidecode.txt)."""
    t0 = S.encode_structure(0, 0x0000, struct.pack(
        "<BBHBBQBBBBBB", 1, 2, 0xEA49, 3, 0, 0x000000007DDF0E90, 0x01, 0x00, 4, 6, 0, 0),
        ("Phoenix Technologies LTD", "6.00", "04/13/2018"))
    t1 = S.encode_structure(1, 0x0001, bytes([1, 2, 3, 4]) + uuid + bytes([6, 0, 0]),
                            ("VMware, Inc.", "VMware Virtual Platform", "None", serial))
    t2 = S.encode_structure(2, 0x0002, struct.pack("<BBBBBBBHBB", 1, 2, 3, 4, 0, 0x00, 0, 0x0000, 0x01, 0),
                            ("Intel Corporation", "440BX Desktop Reference Platform", "None", "None"))
    t3 = S.encode_structure(3, 0x0003, struct.pack("<BBBBBBBBBIBBBB", 1, 0x01, 2, 3, 4, 3, 3, 3, 3,
                                                   0x1234, 0, 0, 0, 0),
                            ("No Enclosure", "N/A", "None", "No Asset Tag"))
    t11 = S.encode_structure(11, 0x01A0, bytes([2]), (
        "[MS_VM_CERT/SHA1/27d66596a61c48dd3dc7216fd715126e33f59ae7]", "Welcome to the Virtual Machine"))
    t127 = S.encode_structure(127, 0x01A1, b"")
    return t0 + t1 + t2 + t3 + t11 + t127


def dmidecode_dump(table: bytes, entry_point: bytes, path: Path) -> Path:
    """The file layout ``dmidecode --dump-bin`` writes and ``--from-dump`` reads:
    the entry point at 0 with its table address rewritten to 0x20 (as
    --dump-bin does; a guest's entry point holds a physical address)."""
    ep = bytearray(entry_point)
    if ep[:4] == b"_SM_":
        struct.pack_into("<I", ep, 0x18, 0x20)
        ep[0x15] = 0
        ep[0x15] = (-sum(ep[0x10:0x1F])) % 256
        ep[0x04] = 0
        ep[0x04] = (-sum(ep[:ep[0x05]])) % 256
    elif ep[:5] == b"_SM3_":
        struct.pack_into("<Q", ep, 0x10, 0x20)
        ep[0x05] = 0
        ep[0x05] = (-sum(ep[:ep[0x06]])) % 256
    path.write_bytes(bytes(ep).ljust(0x20, b"\0") + table)
    return path


def parse_dmidecode(text: str) -> list[dict[str, str]]:
    """dmidecode's text output as a list of {"_type": n, "_title":..., field: value}
    (a view of guestcompat.detection.tools.parse_dmidecode for the SMBIOS tests)."""
    parsed, errors = tools_parse_dmidecode(text)
    assert not errors, errors
    return [{"_type": str(s.type), "_title": s.title, **s.fields} for s in parsed.structures]


# --------------------------------------------------------------------------
# Fake sysfs trees for probe.sh
# --------------------------------------------------------------------------

@dataclass
class FakeSys:
    """Builds a sysfs/proc look-alike under ``root`` with real symlinks."""

    root: Path
    dmesg: list[str] = field(default_factory=list)

    def write(self, rel: str, data: bytes | str, mode: int = 0o444) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        p.chmod(mode)
        return p

    def link(self, rel: str, target: str) -> None:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(target)

    def pci(self, path: str, vendor: int, device: int, class_code: int, revision: int,
            config: bytes, subsys: tuple[int, int] = (0, 0), driver: str | None = None) -> str:
        """``path`` like "pci0000:00/0000:00:15.0/0000:03:00.0"; returns the address."""
        addr = path.rsplit("/", 1)[-1]
        d = f"sys/devices/{path}"
        self.write(f"{d}/vendor", f"0x{vendor:04x}\n")
        self.write(f"{d}/device", f"0x{device:04x}\n")
        self.write(f"{d}/subsystem_vendor", f"0x{subsys[0]:04x}\n")
        self.write(f"{d}/subsystem_device", f"0x{subsys[1]:04x}\n")
        self.write(f"{d}/class", f"0x{class_code:06x}\n")
        self.write(f"{d}/revision", f"0x{revision:02x}\n")
        self.write(f"{d}/config", config)
        if driver:
            (self.root / f"sys/bus/pci/drivers/{driver}").mkdir(parents=True, exist_ok=True)
            depth = d.count("/") + 1
            self.link(f"{d}/driver", "../" * depth + f"sys/bus/pci/drivers/{driver}")
        self.link(f"sys/bus/pci/devices/{addr}", f"../../../devices/{path}")
        return addr

    def finish(self) -> Path:
        log = self.write("dmesg.txt", "".join(line + "\n" for line in self.dmesg))
        return log


NS = "Not Specified"


def dmidecode_of(table: bytes, ep: bytes, tmp: Path, *args: str) -> list[dict[str, str]]:
    """dmidecode --from-dump on these bytes, parsed into one dict per structure."""
    dump = dmidecode_dump(table, ep, tmp / "dump.bin")
    out = subprocess.run(["dmidecode", "--from-dump", str(dump), *args], capture_output=True, text=True,
                         check=True).stdout
    return parse_dmidecode(out)


def _ns(v: str | None) -> str:
    return NS if v is None else v


def compare_with_dmidecode(view: S.SmbiosView, parsed: list[dict[str, str]]) -> int:
    """Assert every field dmidecode printed for types 0-3 and 11 equals ours; returns #fields."""
    checked = 0
    by_type = {}
    for entry in parsed:
        by_type.setdefault(entry["_type"], entry)

    def eq(ours, theirs):
        nonlocal checked
        assert ours == theirs
        checked += 1

    if "0" in by_type and view.bios:
        d, b = by_type["0"], view.bios
        eq(_ns(b.vendor), d["Vendor"])
        eq(_ns(b.version), d["Version"])
        eq(_ns(b.release_date), d["Release Date"])
        if "Address" in d:
            eq(f"0x{b.address:05X}", d["Address"])
            size = b.runtime_size
            eq(f"{size} bytes" if size % 1024 else f"{size >> 10} kB", d["Runtime Size"])
        if "BIOS Revision" in d:
            eq(b.bios_revision, d["BIOS Revision"])
        if "Firmware Revision" in d:
            eq(b.firmware_revision, d["Firmware Revision"])
        if d.get("ROM Size", "").endswith(" kB"):
            eq(f"{b.rom_size >> 10} kB", d["ROM Size"])
    if "1" in by_type and view.system:
        d, s = by_type["1"], view.system
        eq(_ns(s.manufacturer), d["Manufacturer"])
        eq(_ns(s.product_name), d["Product Name"])
        eq(_ns(s.version), d["Version"])
        eq(_ns(s.serial_number), d["Serial Number"])
        if "UUID" in d:
            eq(s.uuid, d["UUID"])
            eq(s.wake_up_type, d["Wake-up Type"])
        if "SKU Number" in d:
            eq(_ns(s.sku_number), d["SKU Number"])
            eq(_ns(s.family), d["Family"])
    if "2" in by_type and view.baseboard:
        d, b = by_type["2"], view.baseboard
        eq(_ns(b.manufacturer), d["Manufacturer"])
        eq(_ns(b.product_name), d["Product Name"])
        eq(_ns(b.version), d["Version"])
        eq(_ns(b.serial_number), d["Serial Number"])
        if "Asset Tag" in d:
            eq(_ns(b.asset_tag), d["Asset Tag"])
        if "Type" in d:
            eq(b.board_type, d["Type"])
            eq(f"0x{b.chassis_handle:04X}", d["Chassis Handle"])
            eq(_ns(b.location_in_chassis), d["Location In Chassis"])
    if "3" in by_type and view.chassis:
        d, c = by_type["3"], view.chassis
        eq(_ns(c.manufacturer), d["Manufacturer"])
        eq(c.type, d["Type"])
        eq("Present" if c.lock else "Not Present", d["Lock"])
        eq(_ns(c.version), d["Version"])
        eq(_ns(c.serial_number), d["Serial Number"])
        eq(_ns(c.asset_tag), d["Asset Tag"])
        if "Boot-up State" in d:
            eq(c.boot_up_state, d["Boot-up State"])
            eq(c.power_supply_state, d["Power Supply State"])
            eq(c.thermal_state, d["Thermal State"])
            eq(c.security_status, d["Security Status"])
        if "OEM Information" in d:
            eq(f"0x{c.oem_information:08X}", d["OEM Information"])
        if "SKU Number" in d:
            eq(_ns(c.sku_number), d["SKU Number"])
    if "11" in by_type:
        d = by_type["11"]
        strings = [v for k, v in sorted(d.items()) if k.startswith("String ")]
        eq(list(view.oem_strings[:len(strings)]), strings)
    return checked


def _captures_dir() -> Path:
    """../shared/vmware-captures next to the checkout (as the project layout has it), else /work/shared."""
    beside = Path(__file__).resolve().parents[3] / "shared" / "vmware-captures"
    return beside if beside.is_dir() else Path("/work/shared/vmware-captures")


CAPTURES = _captures_dir()
