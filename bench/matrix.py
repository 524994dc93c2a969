#!/usr/bin/env python3
"""Wall time of a 12-run matrix against the sum of its runs' times (target: ratio <= 0.6 on 2 cores).

The 12 runs are every concrete bundled profile on its own target: eight x86_64
BIOS profiles (~8 s each alone), two x86_64 EFI/OVMF profiles (~20 s each) and
two ppc64 pseries profiles (~4-10 s each), so the mix has long and short
runs, two architectures and two firmware paths. Images are built before the
clock starts (as `guestcompat matrix` does).

Each run's time is measured inside the matrix, so it includes the slowdown
of sharing the cores; ``--sequential`` also runs the same 12 one at a time
and prints parallel wall / sequential wall, the stricter comparison.
The load average is printed before and after: the machine may be shared.

    .venv/bin/python bench/matrix.py                   # async mode, one job per core
    .venv/bin/python bench/matrix.py --mode process
    .venv/bin/python bench/matrix.py --sequential
"""

from __future__ import annotations

import argparse
import os
import sys

from guestcompat.harness.matrix import default_jobs, run_matrix
from guestcompat.harness.matrix_plan import plan
from guestcompat.harness.matrix_report import PlainReporter

RUNS = (
    "vmware/esxi-4.0", "vmware/esxi-5.0", "vmware/esxi-5.1", "vmware/esxi-5.5", "vmware/esxi-6.0",
    "vmware/esxi-6.5", "vmware/workstation-17", "vmware/ws-hw4",          # x86_64, SeaBIOS
    "vmware/esxi-7.0-efi", "vmware/esxi-8.0-efi",                          # x86_64, OVMF
    "power/pseries-pci", "power/pseries-vscsi",                            # ppc64, pseries
)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=default_jobs())
    parser.add_argument("--mode", choices=("async", "process"), default="async")
    parser.add_argument("--sequential", action="store_true", help="also run the 12 one at a time")
    parser.add_argument("--quiet", action="store_true", help="no per-run progress lines")
    args = parser.parse_args()

    planned = plan(RUNS)
    assert len(planned) == 12 and all(p.compiled is not None for p in planned), \
        [(p.cell, p.skip_reason, p.error) for p in planned]
    reporter = PlainReporter(open(os.devnull, "w") if args.quiet else sys.stderr)
    print(f"load average before: {load()}  (cores: {os.cpu_count()})")
    matrix = run_matrix(planned, reporter, jobs=args.jobs, mode=args.mode)
    bad = [r for r in matrix.results if r.verdict != "pass"]
    for r in matrix.results:
        print(f"  {r.cell.profile:24} {str(r.cell.target):20} {r.verdict:8} {r.seconds:6.1f} s")
    ratio = matrix.wall_seconds / matrix.run_seconds
    print(f"{args.mode}, {args.jobs} jobs: wall {matrix.wall_seconds:.1f} s, sum of runs {matrix.run_seconds:.1f} s, "
          f"ratio {ratio:.2f} (target <= 0.6)")
    print(f"load average after: {load()}")
    if args.sequential:
        alone = run_matrix(planned, reporter, jobs=1, mode=args.mode)
        print(f"sequential: wall {alone.wall_seconds:.1f} s; parallel wall / sequential wall "
              f"{matrix.wall_seconds / alone.wall_seconds:.2f}")
        print(f"load average after: {load()}")
    if bad:
        print(f"{len(bad)} runs did not pass: " + ", ".join(f"{r.cell.profile} ({r.verdict})" for r in bad))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
