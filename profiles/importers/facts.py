"""What a capture says about the source VM, each fact with where it came from.

Every reader (one per form, forms.py) returns a :class:`CaptureFacts`;
:func:`merge` combines the readings of one VM's files (refusing two VMs in
one capture), capture.py turns the result into a profile and replay.py into
the source fingerprint it scores against.  A fact is one of

* ``read``: the capture shows it literally (an id in brackets, a dmidecode field);
* ``inferred from a name``: lspci/lshw printed a pci.ids name and the id comes
  from the same database, or a NIC name implies its PCI address;
* ``inferred from the hardware version``: what every VMware VM of that
  virtual hardware shows (the base layout, the BIOS strings);
* ``defaulted``: the capture cannot tell and the bundled base profile's value is used.

Replay scores only ``read`` facts; it lists the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from guestcompat.detection.tools import Dmidecode, LspciDevice
from guestcompat.errors import ProfileError

READ = "read"
FROM_NAME = "inferred from a name"
FROM_HARDWARE = "inferred from the hardware version"
DEFAULTED = "defaulted"
KINDS = (READ, FROM_NAME, FROM_HARDWARE, DEFAULTED)


@dataclass(frozen=True)
class Provenance:
    """Where one fact (a profile key or a captured field) came from."""

    key: str
    how: str
    why: str

    def line(self) -> str:
        return f"{self.key}: {self.how} ({self.why})"


@dataclass(frozen=True)
class NicFact:
    """A network interface the source guest listed (``ip link``, ``ls -l /sys/class/net``, lshw)."""

    name: str
    mac: str | None = None
    pci: str | None = None          # BB:DD.F
    altnames: tuple[str, ...] = ()
    driver: str | None = None


@dataclass(frozen=True)
class DiskFact:
    """A disk the source guest named with the controller it hangs on (``/dev/disk/by-path``, systemd
    device units, lshw -short): where the disk is, not what is on it."""

    name: str                       # sda, sr0, nvme0n1
    pci: str | None = None          # BB:DD.F of the controller
    bus: str | None = None          # scsi, ata, nvme, usb
    target: str | None = None       # scsi H:C:T:L / ata port / nvme namespace, as shown
    model: str | None = None


@dataclass(frozen=True)
class KernelFacts:
    """What the source kernel logged that a profile or a detector cares about."""

    hypervisor: str | None = None   # "Hypervisor detected: VMware"
    cpu_model: str | None = None    # "smpboot: CPU0: Intel(R) Xeon(R) …"
    tsc_khz: int | None = None      # "vmware: TSC freq read from hypervisor : 2399.999 MHz"
    lines: tuple[str, ...] = ()     # the lines that said so, as logged


@dataclass(frozen=True)
class CaptureFacts:
    sources: tuple[tuple[str, str], ...] = ()          # (file or section label, form name)
    pci: tuple[LspciDevice, ...] = ()
    pci_form: str | None = None
    #: address -> fields of that function that were inferred from names (not read)
    pci_inferred: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dmi: Dmidecode | None = None
    dmi_form: str | None = None
    nics: tuple[NicFact, ...] = ()
    kernel: KernelFacts | None = None
    provenance: tuple[Provenance, ...] = ()
    problems: tuple[str, ...] = ()
    disks: tuple[DiskFact, ...] = ()
    #: the guest's architecture as a form shows it (hostnamectl ``Architecture``, inxi, uname -a): x86-64, arm64…
    arch: tuple[str, str] | None = None     # (architecture, where it was read)
    #: systemd-detect-virt's answer as a form shows it (hostnamectl ``Virtualization: vmware``)
    detect_virt: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.pci or (self.dmi and self.dmi.structures) or self.nics or self.kernel or self.disks
                    or self.arch)

    def read_pci(self) -> tuple[LspciDevice, ...]:
        """The PCI functions with inferred ids blanked: what replay may score."""
        out = []
        for d in self.pci:
            inferred = self.pci_inferred.get(d.address, ())
            out.append(replace(d, **{f: None for f in inferred}) if inferred else d)
        return tuple(out)


def _identity_of(dmi: Dmidecode | None) -> str | None:
    system = dmi.first(1) if dmi else None
    if system is None:
        return None
    for key in ("UUID", "Serial Number"):
        value = system.fields.get(key, "")
        if value and value not in ("Not Settable", "Not Specified", "None", "0"):
            return f"{key} {value}"
    return None


def merge(readings: list[CaptureFacts], label: str) -> CaptureFacts:
    """One VM's facts from several readings; two VMs' facts in one capture are a ProfileError."""
    result = CaptureFacts()
    for r in readings:
        if r.pci and result.pci:
            _same_machine_pci(result, r, label)
        if r.dmi and r.dmi.structures and result.dmi and result.dmi.structures:
            a, b = _identity_of(result.dmi), _identity_of(r.dmi)
            if a and b and a.split(" ", 1)[0] == b.split(" ", 1)[0] and a.lower() != b.lower():
                raise ProfileError(f"{label}: two VMs in one capture: {_src(result, 'dmi')} shows {a}, "
                                   f"{_src(r, 'dmi')} shows {b}; replay or import one VM at a time")
        nics = {n.name: n for n in result.nics}
        for nic in r.nics:
            old = nics.get(nic.name)
            if old and old.mac and nic.mac and old.mac.lower() != nic.mac.lower():
                raise ProfileError(f"{label}: two VMs in one capture: {nic.name} has MAC {old.mac} and {nic.mac}")
            nics[nic.name] = NicFact(nic.name, (old.mac if old else None) or nic.mac,
                                     (old.pci if old else None) or nic.pci,
                                     tuple(dict.fromkeys((*(old.altnames if old else ()), *nic.altnames))),
                                     (old.driver if old else None) or nic.driver)
        kernel = result.kernel
        if r.kernel:
            kernel = r.kernel if kernel is None else KernelFacts(
                kernel.hypervisor or r.kernel.hypervisor, kernel.cpu_model or r.kernel.cpu_model,
                kernel.tsc_khz or r.kernel.tsc_khz, kernel.lines + r.kernel.lines)
        pci, pci_form, inferred = result.pci, result.pci_form, result.pci_inferred
        if r.pci and _richer(r, result):
            pci, pci_form, inferred = r.pci, r.pci_form, r.pci_inferred
        dmi, dmi_form = result.dmi, result.dmi_form
        if r.dmi and r.dmi.structures:
            if dmi is None or not dmi.structures:
                dmi, dmi_form = r.dmi, r.dmi_form
            else:   # dmidecode -t 0 and -t 1 of one VM, or a dmidecode and a banner: per type, the fuller one
                dmi = _union(dmi, r.dmi)
                dmi_form = f"{dmi_form} + {r.dmi_form}" if dmi_form != r.dmi_form else dmi_form
        disks = {d.name: d for d in result.disks}
        for disk in r.disks:
            old_disk = disks.get(disk.name)
            disks[disk.name] = disk if old_disk is None else DiskFact(
                disk.name, old_disk.pci or disk.pci, old_disk.bus or disk.bus, old_disk.target or disk.target,
                old_disk.model or disk.model)
        result = CaptureFacts(result.sources + r.sources, pci, pci_form, inferred, dmi, dmi_form,
                              tuple(nics.values()), kernel, result.provenance + r.provenance,
                              result.problems + r.problems, tuple(disks.values()), result.arch or r.arch,
                              result.detect_virt or r.detect_virt)
    return result


def _union(a: Dmidecode, b: Dmidecode) -> Dmidecode:
    groups: dict[int, tuple] = {}
    for dmi in (a, b):
        for number in dict.fromkeys(st.type for st in dmi.structures):
            mine = dmi.of_type(number)
            have = groups.get(number)
            if have is not None and len(have) == 1 and len(mine) == 1:
                # one structure each (dmidecode -s answers, a banner and hostnamectl): the fields of both
                groups[number] = (replace(have[0], fields={**mine[0].fields, **have[0].fields}),)
            elif have is None or sum(len(st.fields) for st in mine) > sum(len(st.fields) for st in have):
                groups[number] = mine
    return Dmidecode(a.smbios_version or b.smbios_version, tuple(st for g in groups.values() for st in g))


def _richer(new: CaptureFacts, old: CaptureFacts) -> bool:
    """Of two PCI listings of one VM, the one with more read ids wins (-nnmmv over a tree)."""
    def weight(f: CaptureFacts) -> int:
        return sum(sum(getattr(d, a) is not None for a in ("vendor", "device", "class_id", "subsystem_vendor",
                                                          "revision", "physical_slot"))
                   - len(f.pci_inferred.get(d.address, ())) for d in f.pci)
    return not old.pci or weight(new) > weight(old)


def _same_machine_pci(old: CaptureFacts, new: CaptureFacts, label: str) -> None:
    here = {d.address: (d.vendor, d.device) for d in old.pci if d.vendor is not None and d.device is not None}
    for d in new.pci:
        want = here.get(d.address)
        if want and d.vendor is not None and d.device is not None and want != (d.vendor, d.device):
            raise ProfileError(
                f"{label}: two VMs in one capture: {_src(old, 'pci')} has {want[0]:04x}:{want[1]:04x} at "
                f"{d.address}, {_src(new, 'pci')} has {d.vendor:04x}:{d.device:04x}; replay or import one VM at a time")


def _src(facts: CaptureFacts, family: str) -> str:
    wanted = {"pci": ("lspci", "lshw", "dmesg"), "dmi": ("dmidecode", "DMI", "dmesg")}[family]
    names = [f"{label} ({form})" for label, form in facts.sources if form.startswith(wanted)]
    return names[-1] if names else "one listing"
