"""Config space decoding: against this host's sysfs, and against lspci on synthetic bridges."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detection_support import config_space, endpoint, lspci_dump, root_port, add_caps
from guestcompat.detection.pciconfig import CAP_PCIE, decode_config
from guestcompat.errors import ProbeError

SYS_PCI = Path("/sys/bus/pci/devices")
HOST_FUNCS = sorted(SYS_PCI.iterdir()) if SYS_PCI.is_dir() else []
LSPCI = shutil.which("lspci") or "/usr/bin/lspci"  # pciutils: installed by scripts/setup.sh


def _sysfs_hex(dev: Path, name: str) -> int | None:
    p = dev / name
    return int(p.read_text().strip(), 16) if p.exists() else None


@pytest.mark.skipif(not HOST_FUNCS, reason="no PCI functions on this machine")
@pytest.mark.parametrize("dev", HOST_FUNCS, ids=lambda p: p.name)
def test_host_config_matches_sysfs(dev):
    cfg = decode_config((dev / "config").read_bytes())
    assert cfg.vendor == _sysfs_hex(dev, "vendor")
    assert cfg.device == _sysfs_hex(dev, "device")
    assert cfg.class_code == _sysfs_hex(dev, "class")
    assert cfg.revision == _sysfs_hex(dev, "revision")
    if cfg.header_type == 0:
        assert cfg.subsystem_vendor == _sysfs_hex(dev, "subsystem_vendor")
        assert cfg.subsystem_device == _sysfs_hex(dev, "subsystem_device")
    for name, attr in (("secondary_bus_number", "secondary_bus"), ("subordinate_bus_number", "subordinate_bus")):
        if (dev / name).exists() and cfg.header_type == 1:
            assert getattr(cfg, attr) == int((dev / name).read_text())
    assert not cfg.capability_errors


def test_root_port_with_slot_and_ssvid():
    cfg = decode_config(root_port(secondary=3, subordinate=3, slot=160))
    assert (cfg.header_type, cfg.multifunction) == (1, False)
    assert (cfg.primary_bus, cfg.secondary_bus, cfg.subordinate_bus) == (0, 3, 3)
    assert (cfg.subsystem_vendor, cfg.subsystem_device) == (0x15AD, 0x07A0)
    assert [(c.id, c.offset) for c in cfg.capabilities] == [(0x10, 0x40), (0x0D, 0x80), (0x05, 0x90)]
    assert cfg.pcie.port_type_name == "Root Port" and cfg.pcie.slot_implemented
    assert cfg.pcie.physical_slot == 160
    assert cfg.class_code == 0x060400


def test_bridge_without_ssvid_and_endpoint():
    cfg = decode_config(root_port(2, 2, slot=None, ssvid=None, multifunction=True))
    assert cfg.multifunction and cfg.subsystem_vendor is None
    assert cfg.pcie.slot_implemented is False and cfg.pcie.physical_slot is None
    ep = decode_config(endpoint(0x15AD, 0x07B0, 0x020000, (0x15AD, 0x07B0)))
    assert ep.header_type == 0 and ep.secondary_bus is None
    assert (ep.subsystem_vendor, ep.subsystem_device) == (0x15AD, 0x07B0)
    assert ep.pcie.port_type_name == "Endpoint"
    assert [c.id for c in ep.capabilities] == [0x01, 0x10, 0x11]


def test_loops_and_wild_pointers_are_reported():
    cfg = config_space(0x1234, 0x5678, 0x020000)
    add_caps(cfg, [(0x40, 0x01, b""), (0x50, 0x05, b"")])
    cfg[0x51] = 0x40                                  # 0x50 → 0x40 → 0x50 ...
    d = decode_config(bytes(cfg))
    assert [c.offset for c in d.capabilities] == [0x40, 0x50]
    assert any("loops" in e for e in d.capability_errors)
    cfg[0x51] = 0x10
    assert any("into the header" in e for e in decode_config(bytes(cfg)).capability_errors)
    short = decode_config(bytes(cfg[:64]))            # unprivileged read: header only
    assert short.capabilities == () and any("beyond" in e for e in short.capability_errors)


def test_extended_capabilities():
    cfg = bytearray(root_port(1, 1, slot=5)) + bytearray(4096 - 256)
    struct.pack_into("<I", cfg, 0x100, 0x0001 | (1 << 16) | (0x148 << 20))   # AER → 0x148
    struct.pack_into("<I", cfg, 0x148, 0x000D | (1 << 16) | (0x100 << 20))   # ACS → loops back
    d = decode_config(bytes(cfg))
    assert [(c.id, c.offset, c.version) for c in d.extended_capabilities] == [(1, 0x100, 1), (0xD, 0x148, 1)]
    assert any("loops" in e for e in d.capability_errors)


def test_too_short_blob_is_an_error():
    with pytest.raises(ProbeError, match="at least the 64-byte header"):
        decode_config(b"\x86\x80" * 10)


@given(st.binary(min_size=64, max_size=300))
def test_garbage_never_crashes(blob):
    decode_config(blob)


def test_synthetic_configs_match_lspci(tmp_path):
    configs = {
        "00:15.0": root_port(3, 3, slot=160),
        "00:16.0": root_port(0x0B, 0x0B, slot=192, multifunction=True),
        "00:11.0": root_port(2, 2, slot=None, ssvid=None),
        "03:00.0": endpoint(0x15AD, 0x07B0, 0x020000, (0x15AD, 0x07B0), revision=1),
    }
    dump = tmp_path / "dump"
    dump.write_text(lspci_dump(configs))
    out = subprocess.run([LSPCI, "-F", str(dump), "-vvv", "-nn"], capture_output=True, text=True,
                         check=True).stdout
    blocks = {b.split(" ", 1)[0]: b for b in out.strip().split("\n\n")}
    assert set(blocks) == set(configs)
    for addr, raw in configs.items():
        cfg = decode_config(raw)
        text = blocks[addr]
        ids = re.search(r"\[([0-9a-f]{4}):([0-9a-f]{4})\]", text.splitlines()[0])
        assert (int(ids[1], 16), int(ids[2], 16)) == (cfg.vendor, cfg.device)
        bus = re.search(r"Bus: primary=(\w+), secondary=(\w+), subordinate=(\w+)", text)
        if cfg.header_type == 1:
            assert tuple(int(x, 16) for x in bus.groups()) == \
                (cfg.primary_bus, cfg.secondary_bus, cfg.subordinate_bus)
        else:
            assert bus is None
        sub = re.search(r"Subsystem: .*\[([0-9a-f]{4}):([0-9a-f]{4})\]", text)
        if cfg.subsystem_vendor is None:
            assert sub is None
        else:
            assert (int(sub[1], 16), int(sub[2], 16)) == (cfg.subsystem_vendor, cfg.subsystem_device)
        offsets = [int(x, 16) for x in re.findall(r"Capabilities: \[([0-9a-f]+)\]", text)]
        assert offsets == [c.offset for c in cfg.capabilities]
        express = re.search(r"Express \(v(\d)\) ([\w ]+?)(?: \(Slot([+-])\))?, MSI", text)
        if cfg.capability(CAP_PCIE):
            assert int(express[1]) == cfg.pcie.version
            assert express[2] == cfg.pcie.port_type_name
            if cfg.pcie.port_type == 4:
                assert (express[3] == "+") == cfg.pcie.slot_implemented
        slot = re.search(r"SltCap:.*?\n\s+Slot #(\d+)", text, re.S)
        if cfg.pcie and cfg.pcie.slot_implemented:
            assert int(slot[1]) == cfg.pcie.physical_slot
