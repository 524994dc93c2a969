"""Compare two fingerprints of the same profile from two boots (e.g. the QEMU and libvirt backends).

Only fields that legitimately vary between boots of the same machine are
left out, each listed here with why; ids, addresses, slots, bus numbers,
DMI/SMBIOS, device tree, drivers and detection results are all compared.
"""

from __future__ import annotations

import json
import re
from typing import Any

from guestcompat.detection.fingerprint import Fingerprint

# (path regex over the flattened JSON, why it varies between boots)
VOLATILE: tuple[tuple[str, str], ...] = (
    (r"^tools\.runs\.[^.]+\.centiseconds$", "wall time of a guest tool under TCG, depends on host load"),
    (r"^disk_rates\[\d+\]\.(value|centiseconds)$", "a measured I/O rate and its duration (the limit check has its own tolerance)"),
)
# kernel log lines whose numbers come from timing: the TSC calibration against the PIT
# under TCG gives a slightly different MHz (and derived clocksource constants) every boot.
VOLATILE_KERNEL_LOG: tuple[tuple[str, str], ...] = (
    (r"^tsc: (Detected|Refined TSC clocksource calibration:) [\d.]+ MHz", "TSC calibration result"),
    (r"^clocksource: tsc(-early)?: mask: 0x[0-9a-f]+ max_cycles: 0x[0-9a-f]+, max_idle_ns: \d+ ns$",
     "constants derived from the calibrated TSC frequency"),
    (r"^Calibrating delay loop .*BogoMIPS", "BogoMIPS from a timed loop"),
)


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{path}.{key}" if path else key, out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _flatten(item, f"{path}[{i}]", out)
    else:
        out[path] = value


def semantic(fingerprint: Fingerprint) -> dict[str, Any]:
    """The fingerprint flattened, without the volatile fields (kernel log volatile lines masked)."""
    flat: dict[str, Any] = {}
    _flatten(json.loads(fingerprint.to_json()), "", flat)
    out = {}
    for path, value in flat.items():
        if any(re.search(pattern, path) for pattern, _ in VOLATILE):
            continue
        if path.startswith("kernel_log[") and isinstance(value, str) and any(
                re.search(pattern, value) for pattern, _ in VOLATILE_KERNEL_LOG):
            value = "<volatile>"
        out[path] = value
    return out


def differences(a: Fingerprint, b: Fingerprint) -> list[str]:
    sa, sb = semantic(a), semantic(b)
    return [f"{k}: {sa.get(k)!r} != {sb.get(k)!r}" for k in sorted(set(sa) | set(sb)) if sa.get(k) != sb.get(k)]
