#!/usr/bin/env python3
"""Wall time of the bundled matrix on 1 and on 2 libvirt daemons (docs/guide-fleets.md).

Starts the test suite's daemons (tests/support/libvirt_daemons.py: a libvirtd with private state on
this machine, and one in a network namespace over qemu+tcp), runs ``guestcompat matrix --libvirt …
--jobs-per-host N`` over every concrete bundled profile, prints the wall time, the verdicts and how
many cells each host ran, runs ``fleet clean`` and tears the daemons down. The first run on a fresh
daemon uploads the images (a few MB each, through the storage API); ``--warm`` runs the matrix twice
and reports the second (volumes found by content hash). The load average is printed before and after.

    .venv/bin/python bench/fleet.py --daemons 1
    .venv/bin/python bench/fleet.py --daemons 2 --jobs-per-host 1
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))

from libvirt_daemons import local_daemon, namespace_daemon  # noqa: E402

GUESTCOMPAT = str(Path(sys.executable).with_name("guestcompat"))


def run(uris: list[str], jobs: int, profiles: list[str]) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.json"
        began = time.monotonic()
        cli = subprocess.run([GUESTCOMPAT, "matrix", *profiles, *(a for u in uris for a in ("--libvirt", u)),
                              "--jobs-per-host", str(jobs), "--timeout", "300", "--json", str(out)],
                             capture_output=True, text=True)
        wall = time.monotonic() - began
        if not out.exists():
            sys.exit(f"matrix failed ({cli.returncode}): {cli.stderr[-3000:]}")
        return wall, json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--daemons", type=int, choices=(1, 2), default=2)
    parser.add_argument("--jobs-per-host", type=int, default=1)
    parser.add_argument("--warm", action="store_true", help="run twice, report the second run")
    parser.add_argument("profiles", nargs="*")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    with contextlib.ExitStack() as stack:
        daemons = [stack.enter_context(local_daemon())]
        if args.daemons == 2:
            daemons.append(stack.enter_context(namespace_daemon()))
        uris = [d.uri for d in daemons]
        wall, doc = run(uris, args.jobs_per_host, args.profiles)
        if args.warm:
            print(f"cold run: {wall:.1f} s")
            wall, doc = run(uris, args.jobs_per_host, args.profiles)
        subprocess.run([GUESTCOMPAT, "fleet", "clean", *uris], check=True)
    verdicts = collections.Counter(c["verdict"] for c in doc["cells"])
    per_host = collections.Counter(c["host_name"] or c["host"] for c in doc["cells"])
    print(f"{args.daemons} daemon(s) x {args.jobs_per_host} jobs: wall {wall:.1f} s (matrix's own: "
          f"{doc['wall_seconds']:.1f} s, runs {doc['run_seconds']:.1f} s), {dict(verdicts)}, per host {dict(per_host)}")
    for cell in doc["cells"]:
        if cell["verdict"] not in ("pass", "skipped"):
            print(f"  {cell['profile']}: {cell['verdict']}: {cell['reason'][:300]}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
