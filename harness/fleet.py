"""Where a matrix's cells can run on a fleet of libvirt hosts, and how many at a time each host takes.

Asked of each daemon host itself, once, before anything boots (one connection from this process):

* capacity: ``virNodeGetInfo`` (CPUs) and ``virNodeGetFreeMemory``; a TCG guest keeps one host
  CPU busy, so a host runs at most one cell per CPU, and no more than its free memory holds
  (the largest guest's memory plus :data:`QEMU_OVERHEAD_MIB` each). ``--jobs-per-host`` overrides.
* what its QEMU can run: ``virConnectGetDomainCapabilities`` for each distinct (emulator, arch,
  machine, domain type) of the cells. A host without the emulator (guestcompat's patched build
  installed on some hosts only), the machine type or the architecture answers with an error,
  and the cell is placed on a host that can run it, the least loaded first (:func:`place`).
  A cell no host can run is an error naming every host's reason (never silently dropped).

An embedded driver (``qemu:///embed?root=…``) lives in the worker process that opens it (libvirt
allows one embed root per process), so it is not probed here: it runs anything this machine's
QEMU runs, ``--jobs-per-host`` (default 1) at a time. A host that cannot be reached here keeps its
round-robin share, which its worker then reports as errors naming the host (a host that is
down must show in the report, not vanish from it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from guestcompat.emulation.libvirt_xml import ACCEL_DOMAIN_TYPE
from guestcompat.errors import GuestcompatError
from guestcompat.harness.matrix_plan import PlannedCell

QEMU_OVERHEAD_MIB = 256
"""What a TCG QEMU needs beyond its guest's RAM (translation cache, device models), rounded up."""

Need = tuple[str, str, str, str]
"""(emulator, arch, machine, libvirt domain type) a cell asks of a host."""


@dataclass(frozen=True)
class HostInfo:
    uri: str
    jobs: int
    """Cells run at a time on this host."""
    hostname: str | None = None
    cpus: int | None = None
    free_mib: int | None = None
    error: str | None = None
    """Why the host could not be asked (it is then given its share to report as errors)."""
    cannot: Mapping[Need, str] = field(default_factory=dict)
    """What this host's QEMU cannot run, and libvirt's reason."""

    @property
    def probed(self) -> bool:
        return self.cpus is not None

    def to_json(self) -> dict:
        return {"uri": self.uri, "hostname": self.hostname, "jobs": self.jobs, "cpus": self.cpus,
                "free_memory_mib": self.free_mib, "error": self.error}


def need(item: PlannedCell) -> Need:
    assert item.compiled is not None
    target = item.compiled.target
    return (item.compiled.argv[0], target.arch, target.machine, ACCEL_DOMAIN_TYPE.get(target.accel, "qemu"))


def probe(uri: str, needs: set[Need], memory_mib: int, jobs_per_host: int | None) -> HostInfo:
    """Ask one host for its numbers and which ``needs`` its QEMU cannot meet."""
    from guestcompat.harness.libvirt_embed import connect, embed_uri_root, libvirt

    if embed_uri_root(uri) is not None:
        return HostInfo(uri, jobs_per_host or 1)
    try:
        with connect(uri) as conn:
            info = conn.conn.getInfo()
            free = conn.conn.getFreeMemory() // (1 << 20)
            hostname = None
            with contextlib.suppress(libvirt.libvirtError):
                hostname = conn.conn.getHostname()
            cannot: dict[Need, str] = {}
            for emulator, arch, machine, virttype in sorted(needs):
                # a bare name is found on the host's PATH (as libvirt does for <emulator>); libvirt's
                # domcapabilities wants a path, else it picks the architecture's emulator itself
                binary = emulator if emulator.startswith("/") else None
                try:
                    conn.conn.getDomainCapabilities(binary, arch, machine, virttype, 0)
                except libvirt.libvirtError as exc:
                    if conn.conn.isAlive() != 1:  # the host went away while answering: not a "cannot"
                        raise
                    cannot[(emulator, arch, machine, virttype)] = exc.get_error_message()
    except GuestcompatError as exc:
        return HostInfo(uri, jobs_per_host or 1, error=str(exc))
    except libvirt.libvirtError as exc:
        return HostInfo(uri, jobs_per_host or 1, error=f"libvirt host {uri}: {exc.get_error_message()}")
    cpus = int(info[2])
    jobs = jobs_per_host or max(1, min(cpus, free // (memory_mib + QEMU_OVERHEAD_MIB)))
    return HostInfo(uri, jobs, hostname, cpus, int(free), None, cannot)


def place(indices: Sequence[int], planned: Sequence[PlannedCell],
          hosts: Sequence[HostInfo]) -> tuple[dict[str, list[int]], dict[int, str]]:
    """Each cell, in plan order, to the host able to run it that has the fewest cells per job so far
    (the first such host on a tie): round-robin when every host can run everything.

    Returns the hosts' shares and, for cells no host can run, why (every host's reason)."""
    if not hosts:
        raise GuestcompatError("no libvirt host given")
    shares: dict[str, list[int]] = {h.uri: [] for h in hosts}
    unplaceable: dict[int, str] = {}
    for index in indices:
        wanted = need(planned[index])
        able = [h for h in hosts if wanted not in h.cannot]
        if not able:
            reasons = "; ".join(f"{h.uri}: {h.cannot[wanted]}" for h in hosts)
            unplaceable[index] = f"no libvirt host can run {wanted[0]} ({wanted[1]}/{wanted[2]}): {reasons}"
            continue
        chosen = min(able, key=lambda h: len(shares[h.uri]) / h.jobs)
        shares[chosen.uri].append(index)
    return shares, unplaceable
