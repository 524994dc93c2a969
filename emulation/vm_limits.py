"""VM-wide I/O limits (issue 26): one budget shared by all of a VM's disks, as vSphere's per-VM storage
I/O limits are. The profile's top-level ``limits`` becomes one QEMU ``throttle-group`` (``throttle-vm``);
every disk's drive node is a ``throttle`` node in that group on top of the disk's own backend (and of its
own per-disk throttle node, when it has ``disks[].limits`` too), so the drives draw on one budget.

The guest measures it by reading (or writing) all the disks at once: the probe's rate spec for a group is
the disks' specs joined by ``+`` (detection/probe/probe.sh), each disk moving its share of
RATE_SECONDS × limit, and ``limits.<metric>`` is their sum over the group's elapsed time.
"""

from __future__ import annotations

from guestcompat.detection.selectors import VmLimit
from guestcompat.emulation.fidelity import Expectation
from guestcompat.emulation.qemuopts import opts
from guestcompat.profiles.model import DiskLimits, Profile

GROUP = "throttle-vm"


def plan(profile: Profile, argv: list[str]) -> list[tuple[str, int]] | None:
    """The throttle group's ``-object`` appended to *argv*; a list to collect the (address, unit) of the
    disks that join it, None when the profile has no VM-wide limits."""
    if profile.limits is None:
        return None
    argv += ["-object", opts("throttle-group", id=GROUP,
                             **{f"x-{m.replace('_', '-')}": v for m, v in profile.limits.items()})]
    return []


def inner(node: str) -> str:
    """The node name of a disk's backend under the VM-wide throttle node named *node*."""
    return f"{node}-vm"


def throttle_node(node: str, below: str) -> list[str]:
    return ["-blockdev", opts(None, **{"driver": "throttle", "node-name": node, "throttle-group": GROUP,
                                       "file": below})]


def expect(limits: DiskLimits, members: list[tuple[str, int]], expectations: list[Expectation],
           rates: list[str]) -> None:
    """One expectation per limit (the group's measured sum), and the probe's group spec for it."""
    from guestcompat.emulation.disks import RATE_SECONDS, RATE_TOLERANCE

    for metric, limit in limits.items():
        presented = limit if members else None
        expectations.append(Expectation(
            "disks", str(VmLimit(metric)), limit, presented,
            None if members else "no disk of this VM is visible to the guest on this target: nothing shares the "
                                 "limit", "limits", tolerance=RATE_TOLERANCE))
        if not members:
            continue
        block = 65536 if metric.startswith("bps") else 4096
        per_second = limit / block if metric.startswith("bps") else limit
        count = max(1, round(per_second * RATE_SECONDS / len(members)))
        rates.append("+".join(f"0000:{address}/{unit}/{metric}/{block}/{count}" for address, unit in members))
