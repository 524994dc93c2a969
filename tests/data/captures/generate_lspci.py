"""Render the lspci samples of this directory with the real lspci (pciutils) from config-space dumps.

Each VM below is a list of functions with the ids, classes and bridge buses of a real VMware guest
(shared/reference/vmware-ground-truth.md §2 and the shared Fusion capture); ``lspci -F`` reads the
``lspci -x`` dump written here and prints every output mode exactly as it would inside the guest
(with this host's pci.ids).  Physical slots and drivers come from sysfs, which a dump does not have,
so these samples have none.  Run: python3 tests/data/captures/generate_lspci.py
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
CHIPSET = 0x15AD1976
# (address, vendor, device, revision, class(24 bit), subsystem (vendor<<16|device) or None, (secondary, subordinate) or None)
BUS0 = [("00:00.0", 0x8086, 0x7190, 0x01, 0x060000, CHIPSET, None),
        ("00:01.0", 0x8086, 0x7191, 0x01, 0x060400, None, (0x01, 0x01)),
        ("00:07.0", 0x8086, 0x7110, 0x08, 0x060100, CHIPSET, None),
        ("00:07.1", 0x8086, 0x7111, 0x01, 0x01018A, CHIPSET, None),
        ("00:07.3", 0x8086, 0x7113, 0x08, 0x068000, CHIPSET, None),
        ("00:07.7", 0x15AD, 0x0740, 0x10, 0x088000, 0x15AD0740, None),
        ("00:0f.0", 0x15AD, 0x0405, 0x00, 0x030000, 0x15AD0405, None)]
BRIDGES = [("00:11.0", 0x15AD, 0x0790, 0x02, 0x060401, None, (0x02, 0x02))] + [
    (f"00:{0x15 + i // 8:02x}.{i % 8}", 0x15AD, 0x07A0, 0x01, 0x060400, None, (3 + i, 3 + i)) for i in range(32)]
VMS = {
    "esxi65": BUS0 + BRIDGES + [("03:00.0", 0x15AD, 0x07C0, 0x02, 0x010700, 0x15AD07C0, None),
                                ("0b:00.0", 0x15AD, 0x07B0, 0x01, 0x020000, 0x15AD07B0, None)],
    "ws16": BUS0 + [("00:10.0", 0x1000, 0x0030, 0x01, 0x010000, CHIPSET, None)] + BRIDGES + [
        ("02:00.0", 0x15AD, 0x0774, 0x00, 0x0C0300, CHIPSET, None),
        ("02:01.0", 0x8086, 0x100F, 0x01, 0x020000, 0x15AD0750, None),
        ("02:02.0", 0x1274, 0x1371, 0x02, 0x040100, 0x12741371, None),
        ("02:03.0", 0x15AD, 0x0770, 0x00, 0x0C0320, 0x15AD0770, None)],
}
MODES = {"lspci": [], "lspci-v": ["-v"], "lspci-vv": ["-vv"], "lspci-nnvvv": ["-nnvvv"], "lspci-n": ["-n"],
         "lspci-nn": ["-nn"], "lspci-mm": ["-mm"], "lspci-nnmm": ["-nnmm"], "lspci-vmm": ["-vmm"],
         "lspci-nnmmv": ["-nnmmv"], "lspci-t": ["-t"], "lspci-tv": ["-tv"]}


def dump(functions) -> str:
    multi = {a[:5] + a[5:7] for a, *_ in functions if not a.endswith(".0")}
    out = []
    for address, vendor, device, rev, klass, subsystem, buses in functions:
        cfg = bytearray(64)
        cfg[0:2], cfg[2:4] = vendor.to_bytes(2, "little"), device.to_bytes(2, "little")
        cfg[4:6] = (0x0007).to_bytes(2, "little")
        cfg[8] = rev
        cfg[9:12] = (klass & 0xFF, klass >> 8 & 0xFF, klass >> 16)
        cfg[0xE] = (0x01 if buses else 0x00) | (0x80 if address[:7] in multi else 0)
        if buses:
            cfg[0x18], cfg[0x19], cfg[0x1A] = int(address[:2], 16), *buses
        elif subsystem:
            cfg[0x2C:0x2E], cfg[0x2E:0x30] = (subsystem >> 16).to_bytes(2, "little"), \
                (subsystem & 0xFFFF).to_bytes(2, "little")
        out.append(f"{address} dump")
        out += [f"{row:02x}: " + " ".join(f"{b:02x}" for b in cfg[row:row + 16]) for row in range(0, 64, 16)]
        out.append("")
    return "\n".join(out)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for vm, functions in VMS.items():
            source = Path(tmp) / f"{vm}.x"
            source.write_text(dump(functions))
            for name, args in MODES.items():
                text = subprocess.run(["lspci", "-F", str(source), *args], check=True, capture_output=True,
                                      text=True).stdout
                (HERE / f"{vm}.{name}.txt").write_text(text)


if __name__ == "__main__":
    main()
