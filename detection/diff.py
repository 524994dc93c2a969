"""Semantic differences between two fingerprints, one sentence each.

A migration engineer wants "vmxnet3 (15ad:07b0) moved from 0b:00.0 to
13:00.0" and "NIC renamed ens192 → ens224", not a JSON text diff.  So this
module matches things by *identity* before comparing them:

* PCI functions by vendor:device:subsystem + bound driver, so a device whose
  address changed is reported as a move (same address first, then remaining
  candidates in address order), never as a removal plus an addition;
* NICs by MAC (then by PCI link), named by the name udev would give them
  (``tools.net_names`` ID_NET_NAME_SLOT/PATH), since the probe's own
  interface names are the kernel's ``eth0``;
* block devices by name; DMI keys by key; kernel log lines as a set.

Pure functions: ``diff(a, b)`` returns ``Change`` values; rendering is
``Change.text``.  Sections with no semantic rule are compared leaf by leaf
on their JSON form, so nothing that changed goes unreported.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

from . import jsonmodel
from .fingerprint import Fingerprint, NetInterface, PciFunction

# Sections compared by a semantic rule below, or deliberately left out of the
# generic comparison because another section already carries their facts:
# tools.runs/lspci/dmidecode are the raw and parsed output of tools whose
# facts are compared through pci/dmi/smbios; smbios_raw is the bytes behind
# the decoded `smbios` view.
_SEMANTIC = {"arch", "kernel", "dmi", "pci", "net", "block", "kernel_log", "hypervisor_lines", "cpuid",
             "backdoor", "backdoor_error", "tools", "smbios_raw", "probe_errors", "system"}


@dataclass(frozen=True)
class Change:
    """One difference: ``kind`` groups it (pci, nic, dmi, detector, kernel, ...), ``text`` says it."""

    kind: str
    text: str


def _identity(fn: PciFunction) -> tuple:
    return (fn.vendor, fn.device, fn.subsystem_vendor, fn.subsystem_device, fn.driver)


def _pci_label(fn: PciFunction) -> str:
    name = fn.driver or f"class {fn.class_code:06x}"
    return f"{name} ({fn.vendor:04x}:{fn.device:04x})"


def match_pci(a: Iterable[PciFunction], b: Iterable[PciFunction]
              ) -> tuple[list[tuple[PciFunction, PciFunction]], list[PciFunction], list[PciFunction]]:
    """Pair functions of *a* and *b* by identity: (pairs, only in a, only in b).

    Within one identity, functions at the same address pair first; the rest
    pair in address order (so one vmxnet3 that moved is one pair)."""
    groups_a: dict[tuple, list[PciFunction]] = defaultdict(list)
    groups_b: dict[tuple, list[PciFunction]] = defaultdict(list)
    for fn in a:
        groups_a[_identity(fn)].append(fn)
    for fn in b:
        groups_b[_identity(fn)].append(fn)
    pairs, gone, new = [], [], []
    for key in sorted(set(groups_a) | set(groups_b), key=repr):
        left, right = list(groups_a.get(key, [])), list(groups_b.get(key, []))
        right_refs = {fn.ref: fn for fn in right}
        rest_left = []
        for fn in left:
            if fn.ref in right_refs:
                pairs.append((fn, right_refs.pop(fn.ref)))
            else:
                rest_left.append(fn)
        rest_right = sorted(right_refs.values(), key=lambda f: (f.domain, f.address))
        rest_left.sort(key=lambda f: (f.domain, f.address))
        for x, y in zip(rest_left, rest_right):
            pairs.append((x, y))
        gone += rest_left[len(rest_right):]
        new += rest_right[len(rest_left):]
    pairs.sort(key=lambda p: (p[0].domain, p[0].address))
    return pairs, gone, new


_PCI_FIELDS = ("class_code", "revision", "physical_slot", "header_type", "multifunction", "primary_bus",
               "secondary_bus", "subordinate_bus", "capabilities", "pcie_port_type", "pcie_slot_implemented",
               "pcie_slot_number", "config_size")
_PCI_FIELD_NAMES = {"physical_slot": "physical slot", "class_code": "class code", "pcie_slot_number": "PCIe slot number",
                    "secondary_bus": "secondary bus", "subordinate_bus": "subordinate bus",
                    "primary_bus": "primary bus", "pcie_port_type": "PCIe port type"}


def _show(value: Any, hex_width: int | None = None) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and hex_width:
        return f"0x{value:0{hex_width}x}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v, hex_width) for v in value) + "]"
    return str(value)


def diff_pci(a: Fingerprint, b: Fingerprint) -> list[Change]:
    pairs, gone, new = match_pci(a.pci, b.pci)
    out = []
    for x, y in pairs:
        if x.ref != y.ref:
            out.append(Change("pci", f"{_pci_label(x)} moved from {x.ref} to {y.ref}"))
        where = x.ref if x.ref == y.ref else f"{x.ref} (now {y.ref})"
        for name in _PCI_FIELDS:
            vx, vy = getattr(x, name), getattr(y, name)
            if vx != vy:
                width = {"class_code": 6, "revision": 2, "capabilities": 2}.get(name)
                label = _PCI_FIELD_NAMES.get(name, name.replace("_", " "))
                out.append(Change("pci", f"{label} of {where}: {_show(vx, width)} → {_show(vy, width)}"))
    for fn in gone:
        out.append(Change("pci", f"PCI function {fn.ref} ({fn.vendor:04x}:{fn.device:04x}"
                                 f"{', ' + fn.driver if fn.driver else ''}) disappeared"))
    for fn in new:
        out.append(Change("pci", f"PCI function {fn.ref} ({fn.vendor:04x}:{fn.device:04x}"
                                 f"{', ' + fn.driver if fn.driver else ''}) appeared"))
    return out


def nic_name(fp: Fingerprint, nic: NetInterface) -> str:
    """The name a systemd guest gives the NIC (slot, else path name), else the kernel's name."""
    names = fp.tools.net_names.get(nic.name) if fp.tools else None
    return (names.predictable if names else None) or nic.name


def _physical(fp: Fingerprint) -> list[NetInterface]:
    return [n for n in fp.net if n.name != "lo" and (n.pci is not None or (n.mac or "").strip("0:"))]


def diff_net(a: Fingerprint, b: Fingerprint) -> list[Change]:
    left, right = _physical(a), _physical(b)
    pairs: list[tuple[NetInterface, NetInterface]] = []
    for key in (lambda n: n.mac, lambda n: n.pci, lambda n: n.name):
        for x in list(left):
            if key(x) is None:
                continue
            y = next((y for y in right if key(y) == key(x)), None)
            if y is not None:
                pairs.append((x, y))
                left.remove(x)
                right.remove(y)
    out = []
    for x, y in sorted(pairs, key=lambda p: p[0].name):
        nx, ny = nic_name(a, x), nic_name(b, y)
        if nx != ny:
            why = f" (its PCI function moved from {x.pci} to {y.pci})" if x.pci != y.pci else ""
            out.append(Change("nic", f"NIC renamed {nx} → {ny}{why}"))
        elif x.pci != y.pci:
            out.append(Change("nic", f"NIC {nx} moved from PCI {x.pci} to {y.pci}"))
        if x.mac != y.mac:
            out.append(Change("nic", f"MAC of NIC {ny}: {x.mac} → {y.mac}"))
    for x in left:
        out.append(Change("nic", f"NIC {nic_name(a, x)} ({x.mac}, PCI {x.pci}) disappeared"))
    for y in right:
        out.append(Change("nic", f"NIC {nic_name(b, y)} ({y.mac}, PCI {y.pci}) appeared"))
    return out


def diff_dmi(a: Fingerprint, b: Fingerprint) -> list[Change]:
    out = []
    for key in sorted(set(a.dmi) | set(b.dmi)):
        va, vb = a.dmi.get(key), b.dmi.get(key)
        if va == vb:
            continue
        if va is None:
            out.append(Change("dmi", f"DMI {key} appeared: {vb}"))
        elif vb is None:
            out.append(Change("dmi", f"DMI {key} disappeared (was {va})"))
        else:
            out.append(Change("dmi", f"DMI {key}: {va} → {vb}"))
    return out


def _hv_name(line: str) -> str:
    """The name after ``Hypervisor detected:`` (a stored fingerprint may hold any line: then all of it)."""
    _, sep, rest = line.partition("Hypervisor detected:")
    return (rest if sep else line).strip()


def diff_kernel(a: Fingerprint, b: Fingerprint) -> list[Change]:
    out = []
    for name in ("arch", "kernel"):
        if getattr(a, name) != getattr(b, name):
            out.append(Change("kernel", f"{'kernel release' if name == 'kernel' else name}: "
                                        f"{getattr(a, name)} → {getattr(b, name)}"))
    hv_a, hv_b = [_hv_name(x) for x in a.hypervisor_lines], [_hv_name(x) for x in b.hypervisor_lines]
    if hv_a != hv_b:
        if hv_b and hv_a:
            out.append(Change("kernel", f"kernel now says Hypervisor detected: {', '.join(hv_b)} (was {', '.join(hv_a)})"))
        elif hv_b:
            out.append(Change("kernel", f"kernel now says Hypervisor detected: {', '.join(hv_b)} (said nothing before)"))
        else:
            out.append(Change("kernel", f"kernel no longer says Hypervisor detected: {', '.join(hv_a)}"))
    hv_set = set(a.hypervisor_lines) | set(b.hypervisor_lines)
    la, lb = [x for x in a.kernel_log if x not in hv_set], [x for x in b.kernel_log if x not in hv_set]
    for line in la:
        if line not in lb:
            out.append(Change("kernel", f"kernel no longer logs: {line}"))
    for line in lb:
        if line not in la:
            out.append(Change("kernel", f"kernel now logs: {line}"))
    return out


def _words(v: tuple[str, ...] | None) -> str:
    return "failed" if v is None else (", ".join(v) or "nothing")


def diff_detectors(a: Fingerprint, b: Fingerprint) -> list[Change]:
    out = []
    if a.cpu_vendor != b.cpu_vendor:
        out.append(Change("cpuid", f"CPU vendor: {a.cpu_vendor} → {b.cpu_vendor}"))
    if a.hypervisor_signature != b.hypervisor_signature:
        out.append(Change("cpuid", f"CPUID hypervisor signature: {a.hypervisor_signature!r} → {b.hypervisor_signature!r}"))
    bit_a, bit_b = (_hv_bit(a), _hv_bit(b))
    if bit_a != bit_b:
        out.append(Change("cpuid", f"CPUID hypervisor bit: {_show(bit_a)} → {_show(bit_b)}"))
    for leaf in sorted(set(a.cpuid) | set(b.cpuid)):
        x, y = a.cpuid.get(leaf), b.cpuid.get(leaf)
        if x != y:
            out.append(Change("cpuid", f"CPUID leaf 0x{leaf:08x}: {_regs(x)} → {_regs(y)}"))
    ba, bb = _backdoor(a), _backdoor(b)
    if ba != bb:
        out.append(Change("detector", f"VMware backdoor GETVERSION: {ba} → {bb}"))
    ta, tb = a.tools, b.tools
    if ta is None or tb is None:
        if (ta is None) != (tb is None):
            out.append(Change("detector", f"guest tools: {'ran' if ta else 'not run'} → {'ran' if tb else 'not run'}"))
        return out
    if ta.detect_virt != tb.detect_virt:
        out.append(Change("detector", f"systemd-detect-virt: {ta.detect_virt} → {tb.detect_virt}"))
    if ta.virt_what != tb.virt_what:
        out.append(Change("detector", f"virt-what: {_words(ta.virt_what)} → {_words(tb.virt_what)}"))
    for attr, label in (("vmware_checkvm", "vmware-checkvm"), ("vmware_checkvm_ioperm", "vmware-checkvm (with ioperm)")):
        x, y = getattr(ta, attr), getattr(tb, attr)
        if x != y:
            out.append(Change("detector", f"{label}: {x.message if x else 'not run'} → {y.message if y else 'not run'}"))
    return out


def _hv_bit(fp: Fingerprint) -> bool | None:
    leaf = fp.cpuid.get(1)
    return bool(leaf.ecx >> 31 & 1) if leaf else None


def _regs(leaf: Any) -> str:
    if leaf is None:
        return "absent"
    return " ".join(f"{r}=0x{getattr(leaf, r):08x}" for r in ("eax", "ebx", "ecx", "edx"))


def _backdoor(fp: Fingerprint) -> str:
    if fp.backdoor is None:
        return f"no answer ({fp.backdoor_error})" if fp.backdoor_error else "not probed"
    if fp.backdoor.is_vmware:
        return f"VMware version {fp.backdoor.eax}, type {fp.backdoor.ecx}"
    return f"not VMware (eax=0x{fp.backdoor.eax:08x} ebx=0x{fp.backdoor.ebx:08x})"


def diff_block(a: Fingerprint, b: Fingerprint) -> list[Change]:
    out = []
    da, db = {d.name: d for d in a.block}, {d.name: d for d in b.block}
    for name in sorted(set(da) | set(db)):
        x, y = da.get(name), db.get(name)
        if x is None:
            out.append(Change("disk", f"disk {name} ({y.vendor} {y.model}) appeared on {y.pci or y.vio}"))
        elif y is None:
            out.append(Change("disk", f"disk {name} ({x.vendor} {x.model}) disappeared from {x.pci or x.vio}"))
        else:
            for f in ("vendor", "model", "rev", "pci", "vio"):
                if getattr(x, f) != getattr(y, f):
                    label = {"pci": "controller", "vio": "VIO unit"}.get(f, f)
                    out.append(Change("disk", f"{label} of disk {name}: {getattr(x, f)} → {getattr(y, f)}"))
    return out


def _leaves(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_leaves(v, f"{prefix}.{k}"))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(_leaves(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def diff_generic(a: Fingerprint, b: Fingerprint) -> list[Change]:
    """Leaf-by-leaf differences of the sections no semantic rule covers (smbios, devicetree, disk_rates)."""
    pa, pb = jsonmodel.to_plain(a), jsonmodel.to_plain(b)
    out = []
    for section in sorted(set(pa) - _SEMANTIC):
        la, lb = _leaves(pa[section], section), _leaves(pb[section], section)
        for path in sorted(set(la) | set(lb)):
            if la.get(path, "<absent>") != lb.get(path, "<absent>"):
                out.append(Change(section, f"{path}: {la.get(path, '<absent>')} → {lb.get(path, '<absent>')}"))
    pe_a, pe_b = set(a.probe_errors), set(b.probe_errors)
    out += [Change("probe", f"probe no longer reports: {e}") for e in a.probe_errors if e not in pe_b]
    out += [Change("probe", f"probe now reports: {e}") for e in b.probe_errors if e not in pe_a]
    return out


def diff_system(a: Fingerprint, b: Fingerprint) -> list[Change]:
    """A full guest's state: multi-user reached, failed units, the addresses its network configuration set."""
    sa, sb = a.system, b.system
    if sa is None and sb is None:
        return []
    if sa is None or sb is None:
        return [Change("system", "full-guest system state " + ("appeared" if sa is None else "disappeared"))]
    out = []
    if sa.multi_user != sb.multi_user:
        out.append(Change("system", f"multi-user.target: {sa.multi_user} → {sb.multi_user}"))
    for unit in sorted(set(sb.failed_units) - set(sa.failed_units)):
        out.append(Change("system", f"unit {unit} now fails"))
    for unit in sorted(set(sa.failed_units) - set(sb.failed_units)):
        out.append(Change("system", f"unit {unit} no longer fails"))
    where_b = {addr: name for name, addrs in sb.addresses.items() for addr in addrs}
    where_a = {addr: name for name, addrs in sa.addresses.items() for addr in addrs}
    for addr, name in sorted(where_a.items()):
        if addr not in where_b:
            gone = "" if name in sb.addresses else f"; interface {name} no longer exists"
            out.append(Change("system", f"address {addr} of {name} is no longer configured{gone}"))
        elif where_b[addr] != name:
            out.append(Change("system", f"address {addr} moved from {name} to {where_b[addr]}"))
    for addr, name in sorted(where_b.items()):
        if addr not in where_a:
            out.append(Change("system", f"address {addr} now configured on {name}"))
    return out


def diff(a: Fingerprint, b: Fingerprint) -> tuple[Change, ...]:
    """Every semantic difference from *a* (before) to *b* (after); empty when they match."""
    return tuple(diff_pci(a, b) + diff_net(a, b) + diff_detectors(a, b) + diff_dmi(a, b)
                 + diff_kernel(a, b) + diff_block(a, b) + diff_system(a, b) + diff_generic(a, b))
