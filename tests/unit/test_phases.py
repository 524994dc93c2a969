"""harness/phases.py: a boot's phases from host marks, console line times and the probe's uptime stamps."""

from __future__ import annotations

import pytest

from guestcompat.harness import phases as ph

MARKS = {"launch": 100.0, "artefacts": 100.01, "qmp": 100.2, "cont": 100.21, "document": 105.0,
         "query_pci": 105.01, "closed": 105.03}
DOC = {"timing": {"uptime": {"init": "2.10", "start": "2.50", "settle": "2.52", "sysfs": "2.90",
                             "rates_devicetree": "2.90", "helper": "2.92", "tools": "4.00", "dmesg": "4.01",
                             "broken": "x"}},
       "tools": {"lspci": {"centiseconds": "21"}, "net_id": {"eth0": {"centiseconds": "9"}}}}
# guest uptime 0 at host 100.5: the gc-probe line (uptime 4.40) arrives at 104.9
LINES = [(100.6, "noise"), (104.9, "gc-probe: uptime 4.40 od 4.10 awk 4.35"), (104.92, "@@GUESTCOMPAT-BEGIN v1"),
         (104.99, "@@GUESTCOMPAT-END")]


def by_name(phases):
    return {p.name: p.seconds for p in phases}


def test_phases_follow_the_three_clocks():
    got = by_name(ph.boot_phases(MARKS, LINES, DOC, [ph.Phase("harness: compile", 0.01, "harness")]))
    assert got["harness: compile"] == 0.01
    assert got["QEMU: spawn to QMP + cont"] == pytest.approx(0.2)
    assert got["firmware (cont to kernel clock 0)"] == pytest.approx(0.29)
    assert got["kernel: entry to /init"] == pytest.approx(2.10)
    assert got["/init: insmod modules"] == pytest.approx(0.40)
    assert got["probe: sysfs walk (DMI, PCI, net, block)"] == pytest.approx(0.38)
    assert got["probe: guest tools (all)"] == pytest.approx(1.08)
    assert got["probe: wc + od of the binary files"] == pytest.approx(0.09)
    assert got["probe: awk builds the JSON"] == pytest.approx(0.25)
    assert got["probe: sha256sum"] == pytest.approx(0.05)
    assert got["frame: base64 + console to host"] == pytest.approx(0.09)
    assert got["  tool lspci"] == 0.21 and got["  tool net_id/eth0"] == 0.09
    assert got["harness: query-pci + quit QEMU"] == pytest.approx(0.03)


def test_a_document_without_timing_still_gives_the_host_phases():
    got = by_name(ph.boot_phases(MARKS, [(104.99, "@@GUESTCOMPAT-END")], {}))
    assert got["guest (no probe timing)"] == pytest.approx(104.99 - 100.21)
    assert "kernel: entry to /init" not in got


def test_initcalls_slowest_first_and_run_init():
    log = "\n".join([
        "[    0.300000] calling  acpi_init+0x0/0x4e0 @ 1",
        "[    0.668000] initcall acpi_init+0x0/0x4e0 returned 0 after 368012 usecs",
        "[    0.700000] initcall crc64_rocksoft_mod_init+0x0/0x1000 [crc64_rocksoft] returned 0 after 1200 usecs",
        "[    0.800000] initcall pcie_portdrv_init+0x0/0x50 returned -19 after 109000 usecs",
        "[    2.270000] Run /init as init process",
    ])
    calls = ph.initcalls(log)
    assert [(c.name, c.seconds) for c in calls] == [("acpi_init", 0.368012), ("pcie_portdrv_init", 0.109),
                                                    ("crc64_rocksoft_mod_init", 0.0012)]
    assert ph.run_init_time(log) == 2.27
    assert ph.run_init_time("") is None
