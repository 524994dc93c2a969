"""Kernel log excerpts (``dmesg``, ``journalctl -k``, a panic's or a bug report's lines).

What a kernel log tells about the VM, each read as logged:

* ``Hypervisor detected: VMware`` (the kernel's own detection);
* the DMI banner ``DMI: <vendor> <product>/<board>, BIOS <version> <date>`` (dmidecode_text.py);
* ``pci 0000:0b:00.0: [15ad:07b0] type 00 class 0x020000``: every PCI function with its ids and class;
* ``vmxnet3 0000:0b:00.0 ens192: renamed from eth0``: a NIC's name, driver and address;
* ``smpboot: CPU0: Intel(R) Xeon(R) … (family: …)``: the CPU brand string VMware passes through;
* ``vmware: TSC freq read from hypervisor : 2399.999 MHz``: the TSC frequency GETHZ answered.
"""

from __future__ import annotations

import re

from guestcompat.detection.tools import LspciDevice
from guestcompat.profiles.importers.dmidecode_text import read_banner
from guestcompat.profiles.importers.facts import FROM_NAME, CaptureFacts, KernelFacts, NicFact, Provenance

_HYPERVISOR = re.compile(r"Hypervisor detected: (?P<name>.+?)\s*$")
_PCI = re.compile(r"\bpci (?P<dom>[0-9a-f]{4}):(?P<addr>[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]): "
                  r"\[(?P<v>[0-9a-f]{4}):(?P<d>[0-9a-f]{4})\] type (?P<type>[0-9a-f]{2}) "
                  r"class 0x(?P<cls>[0-9a-f]{6})", re.IGNORECASE)
_RENAMED = re.compile(r"^(?P<driver>[\w-]+) (?P<dom>[0-9a-f]{4}):(?P<addr>[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]) "
                      r"(?P<name>[\w.-]+): renamed from (?P<old>\S+)", re.IGNORECASE)
_CPU = re.compile(r"smpboot: CPU0: (?P<model>.+?) \(family: ")
_TSC = re.compile(r"vmware: TSC freq read from hypervisor\s*: (?P<mhz>\d+)\.(?P<frac>\d{3}) MHz")
#: kernels before 2.6.x log no ``pci 0000:…: [vvvv:dddd]`` lines; their SCSI drivers say where the adapter is
_BUSLOGIC = re.compile(r"^scsi(?P<host>\d+):\s+Configuring BusLogic Model (?P<model>BT-\w+)")
_BUSLOGIC_AT = re.compile(r"^scsi(?P<host>\d+):\s+PCI Bus: (?P<bus>\d+), Device: (?P<dev>\d+),")
_VMWARE_DISK = re.compile(r"Vendor: VMware,?\s+Model: VMware Virtual S")
#: BusLogic's PCI ids by model (pci.ids 104b: 1040 is the MultiMaster BT-946C/948/958 VMware emulates)
BUSLOGIC_IDS = {"BT-958": (0x104B, 0x1040), "BT-948": (0x104B, 0x1040), "BT-946C": (0x104B, 0x1040)}
_SIGNS = (_HYPERVISOR, _PCI, _RENAMED, _CPU, _TSC, _BUSLOGIC, _VMWARE_DISK,
          re.compile(r"\b(?:vmxnet3|vmw_pvscsi|vmw_vmci|vmwgfx|e1000|mptspi|mptsas|Linux version|Command line:|"
                     r"DMI:|Hardware name:|ACPI: |BIOS-e820|x86/fpu|clocksource|Booting paravirtualized)\b"))


def looks_like_dmesg(text: str, stamped: bool = False) -> int:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return 0
    hits = sum(1 for ln in lines if any(s.search(ln) for s in _SIGNS))
    if hits == 0:
        return 40 if stamped else 0
    return min(95, 50 + 10 * hits + (20 if stamped else 0))


def read_dmesg(text: str, source: str) -> CaptureFacts:
    hypervisor = cpu = None
    tsc = None
    kept: list[str] = []
    devices: dict[str, LspciDevice] = {}
    buslogic: dict[str, str] = {}
    inferred: dict[str, tuple[str, ...]] = {}
    nics: list[NicFact] = []
    for line in text.splitlines():
        line = line.strip()
        if (m := _HYPERVISOR.search(line)) and hypervisor is None:
            hypervisor = m["name"]
            kept.append(line)
        if (m := _CPU.search(line)) and cpu is None:
            cpu = m["model"].strip()
            kept.append(line)
        if (m := _TSC.search(line)) and tsc is None:
            tsc = int(m["mhz"]) * 1000 + int(m["frac"])
            kept.append(line)
        if m := _PCI.search(line):
            slot = m["addr"].lower() if m["dom"] == "0000" else f"{m['dom']}:{m['addr']}".lower()
            cls = int(m["cls"], 16)
            devices.setdefault(slot, LspciDevice(slot=slot, class_id=cls >> 8, prog_if=cls & 0xFF,
                                                 vendor=int(m["v"], 16), device=int(m["d"], 16)))
        if m := _RENAMED.search(line):
            address = m["addr"].lower() if m["dom"] == "0000" else f"{m['dom']}:{m['addr']}".lower()
            nics.append(NicFact(m["name"], pci=address, driver=m["driver"]))
        if m := _BUSLOGIC.match(line):
            buslogic[m["host"]] = m["model"]
        if (m := _BUSLOGIC_AT.match(line)) and m["host"] in buslogic and int(m["bus"]) < 256 and int(m["dev"]) < 32:
            slot = f"{int(m['bus']):02x}:{int(m['dev']):02x}.0"
            ids = BUSLOGIC_IDS.get(buslogic[m["host"]])
            if ids and slot not in devices:
                devices[slot] = LspciDevice(slot=slot, class_id=0x0100, vendor=ids[0], device=ids[1],
                                            device_name=f"BusLogic {buslogic[m['host']]}")
                inferred[slot] = ("vendor", "device", "class_id")
                kept.append(line)
    banner = read_banner(text, source)
    dmi = banner.dmi if banner.dmi.structures else None
    kernel = KernelFacts(hypervisor, cpu, tsc, tuple(kept)) if (hypervisor or cpu or tsc) else None
    problems = () if (kernel or devices or nics or dmi) else (
        f"{source}: a kernel log with nothing this tool reads (no 'Hypervisor detected', DMI banner, "
        f"'pci 0000:…: [vvvv:dddd]' or NIC rename line)",)
    provenance = tuple(Provenance(f"pci[{slot}] {' '.join(fields)}", FROM_NAME,
                                  "the BusLogic driver logs its model and PCI device number, not ids")
                       for slot, fields in inferred.items())
    return CaptureFacts(sources=((source, "dmesg"),), pci=tuple(devices.values()),
                        pci_form="dmesg" if devices else None, pci_inferred=inferred, dmi=dmi,
                        dmi_form="DMI banner" if dmi else None, nics=tuple(nics), kernel=kernel,
                        provenance=provenance, problems=problems + (banner.problems if dmi else ()))
