"""NIC names from ``ip -o link``, ``ip link``/``ip a`` and ``ls -l /sys/class/net``.

``ls -l /sys/class/net`` is the best of them: each link's target is the
device path, ``../../devices/pci0000:00/0000:00:16.0/0000:0b:00.0/net/ens192``,
so the name comes with its PCI address (read).  ``ip`` shows the name, the
MAC and (iproute2 ≥ 5.5 with systemd ≥ 245) the ``altname``s; a path name
``enp11s0`` or ``enp11s0f1`` says the function's address (inferred from the
name: bus 0x0b, device 0, function 1); a slot name ``ens192`` says only the
physical slot.  Loopback, bridges, bonds and tunnels are not NICs of the VM.
"""

from __future__ import annotations

import re

from guestcompat.profiles.importers.facts import FROM_NAME, READ, CaptureFacts, NicFact, Provenance

_IP_LINK = re.compile(r"^(?P<index>\d+): (?P<name>[^:@\s]+)(?:@\S+)?: <(?P<flags>[^>]*)>")
_LINK_ETHER = re.compile(r"link/ether (?P<mac>[0-9a-f]{2}(?::[0-9a-f]{2}){5})", re.IGNORECASE)
_ALTNAME = re.compile(r"altname (?P<alt>\S+)")
#: anchored at a blank or the line start: unanchored, a long line without " -> " took quadratic time
_SYSFS = re.compile(r"(?:^|(?<=\s))(?P<name>[^\s/]+) -> \S*?/devices/(?P<path>\S+)/net/(?P=name)\s*$")
_SYSFS_PCI = re.compile(r"(?:(?P<dom>[0-9a-f]{4}):)?(?P<addr>[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7])$", re.IGNORECASE)
_PATH_NAME = re.compile(r"^en(?:P\d+)?p(?P<bus>\d+)s(?P<slot>\d+)(?:f(?P<fn>\d+))?$")
_NOT_NICS = re.compile(r"^(lo|docker\d*|virbr\d+|br-?\w*|bond\d+|tun\d+|tap\w*|veth\w*|wg\d+|vxlan\w*|cni\w*|flannel\w*)$")


def looks_like_ip(text: str) -> int:
    links = [ln for ln in text.splitlines() if _IP_LINK.match(ln.strip())]
    return 85 if links and ("link/" in text or "mtu " in text) else 0


def looks_like_sysfs(text: str) -> int:
    return 90 if any(" -> " in ln and _SYSFS.search(ln) for ln in text.splitlines()) else 0


def address_from_path_name(name: str) -> str | None:
    """``enp11s0f1`` → ``0b:00.1`` (systemd's net_id path name of a domain-0 function)."""
    match = _PATH_NAME.match(name)
    if not match:
        return None
    bus, slot, fn = int(match["bus"]), int(match["slot"]), int(match["fn"] or 0)
    if bus > 255 or slot > 31 or fn > 7:
        return None
    return f"{bus:02x}:{slot:02x}.{fn}"


def read_ip(text: str, source: str) -> CaptureFacts:
    """``ip -o link``, ``ip link``, ``ip -o a``, ``ip a``: one record per index, its lines joined."""
    records: dict[str, dict] = {}
    order: list[str] = []
    current = None
    for line in text.splitlines():
        head = _IP_LINK.match(line.strip())
        if head:
            current = head["name"]
            if current not in records:
                records[current] = {"mac": None, "alt": []}
                order.append(current)
        if current is None:
            continue
        mac = _LINK_ETHER.search(line)
        if mac and not records[current]["mac"]:
            records[current]["mac"] = mac["mac"].lower()
        records[current]["alt"] += [a["alt"] for a in _ALTNAME.finditer(line)]
    nics, provenance = [], []
    for name in order:
        if _NOT_NICS.match(name):
            continue
        alts = tuple(dict.fromkeys(records[name]["alt"]))
        pci = next((a for a in (address_from_path_name(n) for n in (name, *alts)) if a), None)
        if pci:
            provenance.append(Provenance(f"nic {name} at {pci}", FROM_NAME,
                                         f"systemd's path name {next(n for n in (name, *alts) if address_from_path_name(n))}"))
        nics.append(NicFact(name, records[name]["mac"], pci, alts))
    problems = () if nics else (f"{source}: the ip output lists no Ethernet interface besides lo",)
    return CaptureFacts(sources=((source, "ip link"),), nics=tuple(nics), provenance=tuple(provenance),
                        problems=problems)


def read_sysfs(text: str, source: str) -> CaptureFacts:
    nics, provenance, problems = [], [], []
    for number, line in enumerate(text.splitlines(), 1):
        match = _SYSFS.search(line)
        if not match:
            if "->" in line and "virtual/net" not in line:
                problems.append(f"{source}: line {number}: not a /sys/class/net link: {line.strip()[:70]!r}")
            continue
        last = match["path"].split("/")[-1]
        pci = _SYSFS_PCI.match(last)
        if pci is None:
            continue            # a virtual device (lo, bridges) or a non-PCI NIC
        address = pci["addr"].lower() if (pci["dom"] or "0000") == "0000" else f"{pci['dom']}:{pci['addr']}".lower()
        nics.append(NicFact(match["name"], pci=address))
        provenance.append(Provenance(f"nic {match['name']} at {address}", READ, "its /sys/class/net link"))
    return CaptureFacts(sources=((source, "ls -l /sys/class/net"),), nics=tuple(nics), provenance=tuple(provenance),
                        problems=tuple(problems))
