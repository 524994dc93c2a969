"""Where one boot's time went: host marks, console line times and the probe's guest clock, as phases.

``bench/boot.py --breakdown`` needs each boot split into what QEMU, the
firmware, the kernel, /init's module loading, each probe step, the frame and
the harness spent. Three clocks meet here:

* the host's ``time.monotonic()`` at the runner's steps (``BootResult.marks``)
  and at each console line the host read (the bench's console callback);
* the guest's ``/proc/uptime`` at the probe's step boundaries (the document's
  ``timing/uptime/<step>``, detection/probe/probe.sh) and at the console line
  ``gc-probe: uptime U`` it prints just before the frame;
* the kernel's printk timestamps (``initcall_debug`` lines in ``timing/kernel_log``
  of a measurement boot).

The guest's uptime starts (``local_clock()`` at ``timekeeping_init``) within
milliseconds of kernel entry and runs at the host's rate under TCG, so the
host time of kernel entry is the host time of the ``gc-probe`` line minus
``U``; "firmware" is therefore QEMU's ``cont`` to that moment (SeaBIOS/SLOF/VOF
plus the kernel's first milliseconds before its clock starts). Uptime has
10 ms steps; console latency is a few ms.

Pure functions over already collected data: unit-tested without a guest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PROBE_UPTIME = re.compile(r"^gc-probe: uptime ([0-9]+\.[0-9]+)((?: [a-z]+ \S+)*)\s*$")
END_LINE = "@@GUESTCOMPAT-END"
#: The probe's step stamps in order; each phase runs from the previous stamp to this one.
PROBE_STEPS = ("start", "settle", "sysfs", "rates_devicetree", "helper", "input", "tools", "dmesg")
STEP_LABELS = {
    "start": "/init: insmod modules",
    "settle": "probe: settle (wait for disks/NICs)",
    "sysfs": "probe: sysfs walk (DMI, PCI, net, block)",
    "rates_devicetree": "probe: disk rates, device tree",
    "helper": "probe: gcprobe (CPUID, backdoor)",
    "input": "probe: input devices (wait for psmouse)",
    "tools": "probe: guest tools (all)",
    "dmesg": "probe: dmesg",
}
_INITCALL = re.compile(r"^\[\s*([0-9]+\.[0-9]+)\]\s+initcall\s+(\S+?)(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?(?:\s+\[\S+\])?"
                       r"\s+returned\s+-?\d+\s+after\s+(\d+)\s+usecs")
_RUN_INIT = re.compile(r"^\[\s*([0-9]+\.[0-9]+)\]\s+Run /init as init process")


@dataclass(frozen=True)
class Phase:
    """One phase of a boot: ``seconds`` it took; ``group`` is ``harness``, ``qemu``, ``guest`` or ``tool``."""

    name: str
    seconds: float
    group: str


@dataclass(frozen=True)
class Initcall:
    name: str
    seconds: float


def guest_clock_offset(lines: Iterable[tuple[float, str]]) -> tuple[float, float] | None:
    """(host monotonic time of guest uptime 0, uptime printed) from the ``gc-probe: uptime`` line."""
    for when, line in lines:
        m = PROBE_UPTIME.match(line.strip())
        if m:
            uptime = float(m[1])
            return when - uptime, uptime
    return None


def frame_stamps(lines: Iterable[tuple[float, str]]) -> dict[str, float]:
    """The further ``STEP UPTIME`` pairs of the ``gc-probe`` line (``od``: wc+od done, ``awk``: awk done)."""
    for _, line in lines:
        m = PROBE_UPTIME.match(line.strip())
        if m:
            words = m[2].split()
            out = {}
            for step, value in zip(words[::2], words[1::2]):
                try:
                    out[step] = float(value)
                except ValueError:
                    continue
            return out
    return {}


def line_time(lines: Iterable[tuple[float, str]], text: str) -> float | None:
    """Host time of the first console line that starts with ``text``."""
    return next((when for when, line in lines if line.startswith(text)), None)


def uptimes(document: Mapping[str, Any]) -> dict[str, float]:
    """The probe's step stamps (``timing.uptime``) as floats; missing or malformed ones are left out."""
    timing = document.get("timing")
    raw = timing.get("uptime") if isinstance(timing, Mapping) else None
    out: dict[str, float] = {}
    for key, value in (raw or {}).items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def tool_seconds(document: Mapping[str, Any]) -> dict[str, float]:
    """Each guest tool's own run time (``tools/<key>/centiseconds``), ``net_id/<if>`` flattened."""
    out: dict[str, float] = {}
    tools = document.get("tools")

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        for key, value in node.items():
            if not isinstance(value, Mapping):
                continue
            if "centiseconds" in value:
                try:
                    out[prefix + key] = int(value["centiseconds"]) / 100
                except (TypeError, ValueError):
                    pass
            else:
                walk(f"{prefix}{key}/", value)

    if isinstance(tools, Mapping):
        walk("", tools)
    return out


def boot_phases(marks: Mapping[str, float], lines: list[tuple[float, str]], document: Mapping[str, Any],
                before: Iterable[Phase] = (), after: Iterable[Phase] = ()) -> list[Phase]:
    """The phases of one boot, in time order. ``before``/``after``: the harness's own work measured
    by the caller (compile, image lookup / parse, compare); ``marks``: ``BootResult.marks``."""
    phases = list(before)
    phases.append(Phase("harness: build artefacts (SSDT)", marks["artefacts"] - marks["launch"], "harness"))
    phases.append(Phase("QEMU: spawn to QMP + cont", marks["cont"] - marks["artefacts"], "qemu"))
    clock = guest_clock_offset(lines)
    stamps = uptimes(document)
    end = line_time(lines, END_LINE)
    if clock is not None:
        kernel0, frame_uptime = clock
        phases.append(Phase("firmware (cont to kernel clock 0)", kernel0 - marks["cont"], "qemu"))
        previous = 0.0
        if "init" in stamps:
            phases.append(Phase("kernel: entry to /init", stamps["init"], "guest"))
            previous = stamps["init"]
        for step in PROBE_STEPS:
            if step in stamps:
                label = STEP_LABELS[step] if step != "start" or "init" in stamps else "kernel + /init to probe"
                phases.append(Phase(label, stamps[step] - previous, "guest"))
                previous = stamps[step]
        for step, label in (("od", "probe: wc + od of the binary files"), ("awk", "probe: awk builds the JSON")):
            if step in (extra := frame_stamps(lines)):
                phases.append(Phase(label, extra[step] - previous, "guest"))
                previous = extra[step]
        phases.append(Phase("probe: sha256sum" if "awk" in frame_stamps(lines)
                            else "probe: build document (od, awk, sha256)", frame_uptime - previous, "guest"))
        if end is not None:
            phases.append(Phase("frame: base64 + console to host", end - (kernel0 + frame_uptime), "guest"))
    elif end is not None:
        phases.append(Phase("guest (no probe timing)", end - marks["cont"], "guest"))
    for tool, seconds in tool_seconds(document).items():
        phases.append(Phase(f"  tool {tool}", seconds, "tool"))
    if "closed" in marks and "document" in marks:
        phases.append(Phase("harness: query-pci + quit QEMU", marks["closed"] - marks["document"], "harness"))
    phases += list(after)
    return phases


def initcalls(kernel_log: str) -> list[Initcall]:
    """``initcall_debug``'s ``initcall F returned R after N usecs`` lines, slowest first."""
    found = []
    for line in kernel_log.splitlines():
        m = _INITCALL.match(line.strip())
        if m:
            found.append(Initcall(m[2], int(m[3]) / 1e6))
    return sorted(found, key=lambda c: -c.seconds)


def run_init_time(kernel_log: str) -> float | None:
    """The printk time of ``Run /init as init process``."""
    for line in kernel_log.splitlines():
        m = _RUN_INIT.match(line.strip())
        if m:
            return float(m[1])
    return None
