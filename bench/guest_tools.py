"""Boot-time cost of the guest tools: interleaved boots of vmware/esxi-6.5 with and
without them (the strategy's ``guest_tools`` emptied for the "without" boots).

    .venv/bin/python bench/guest_tools.py [PAIRS]

Prints each boot's seconds to the fingerprint, each tool's own run time in
the guest (centiseconds of /proc/uptime, from the document), and the medians.
Interleaving matters on a shared machine: load drifts more than the effect.
"""

from __future__ import annotations

import statistics
import sys

from guestcompat.emulation.arches.x86_64 import X86_64
from guestcompat.emulation.target import Target
from guestcompat.harness.run import run_profile


def main(pairs: int) -> None:
    tools = X86_64.guest_tools
    times: dict[str, list[float]] = {"without": [], "with": []}
    for i in range(pairs):
        for label in ("without", "with"):
            X86_64.guest_tools = tools if label == "with" else ()
            outcome = run_profile("vmware/esxi-6.5", Target("x86_64", "pc", "tcg"), timeout=240)
            times[label].append(outcome.boot.seconds_to_document)
            runs = outcome.fingerprint.tools.runs if outcome.fingerprint.tools else {}
            cs = {k: r.centiseconds for k, r in runs.items()}
            print(f"{i} {label:7} tools: {outcome.boot.seconds_to_document:.2f} s  {cs}", flush=True)
    X86_64.guest_tools = tools
    for label, values in times.items():
        print(f"median {label} tools: {statistics.median(values):.2f} s "
              f"({', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
