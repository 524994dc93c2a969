"""How fast a VMware guest's clock runs against the host's, on stock and on patched QEMU.

See harness/guest_clock.py for the method (two NMIs over QMP, their printk
times against the host's monotonic clock).

    .venv/bin/python bench/guest_clock.py [--profile vmware/esxi-6.5] [--seconds 30] [--qemu stock patched]

Prints per build the guest seconds, host seconds, their ratio and the drift in
parts per million; the console's latency (a few ms) bounds the precision.
"""

from __future__ import annotations

import argparse

from guestcompat.harness.guest_clock import measure

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="vmware/esxi-6.5")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--qemu", nargs="+", default=["stock", "patched"])
    args = parser.parse_args()
    for qemu in args.qemu:
        run = measure(args.profile, qemu, args.seconds)
        print(f"{args.profile} on {qemu} ({run.binary}): guest {run.guest_seconds:.4f} s, "
              f"host {run.host_seconds:.4f} s, ratio {run.guest_seconds / run.host_seconds:.6f}, "
              f"drift {run.drift_ppm:+.0f} ppm")


if __name__ == "__main__":
    main()
