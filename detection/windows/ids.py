"""Windows' names for a PCI function: hardware ids, compatible ids and the instance part.

Hardware and compatible ids follow Microsoft's "Identifiers for PCI Devices"
(most specific first): driver choice walks these lists, identity does not.
The instance part is either

* the **location form** ``<parent prefix>&<locations>``: ``%02X`` of
  ``(device << 3) | function`` for the function, then for each bridge above
  it up to bus 0 (``00A8`` = 03:00.0 behind the root port at 00:15.0); bus
  numbers take no part, the parent prefix is the PnP manager's hash of the
  parent's instance path (not public: an opaque token here), or
* the **serial-number form** ``<16 hex digits of the PCIe Device Serial
  Number><00>`` on a platform Windows enumerates as PCI Express, which
  survives slot moves and changes with the MAC the serial is made of.

Sources: shared/reference/windows-view.md §1-§2 (Microsoft docs, ReactOS
``pcix`` id.c, and captures of real VMs checked in tests/data/windows/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from guestcompat.errors import ProfileError

#: An instance path's part after the device id: location form or serial form (case as Windows shows it varies)
_PREFIX = re.compile(r"^(?P<prefix>[0-9A-Fa-f]{1,2}&[0-9A-Fa-f]{1,8}&[0-9A-Fa-f]{1,4})&(?P<loc>(?:[0-9A-Fa-f]{2}){1,8})$")
_SERIAL = re.compile(r"^(?P<serial>[0-9A-Fa-f]{16})(?P<tail>[0-9A-Fa-f]{2})$")
_DEVICE_ID = re.compile(
    r"^PCI\\VEN_(?P<ven>[0-9A-Fa-f]{4})&DEV_(?P<dev>[0-9A-Fa-f]{4})"
    r"(?:&SUBSYS_(?P<subsys>[0-9A-Fa-f]{8}))?(?:&REV_(?P<rev>[0-9A-Fa-f]{2}))?$")
#: Longest instance path pci.sys produces is ~80 characters; anything much longer is not one.
MAX_INSTANCE_PATH = 200


@dataclass(frozen=True)
class PciIdentity:
    """What a PCI function tells Windows about itself (config-space ids)."""

    vendor: int
    device: int
    subsystem_vendor: int = 0
    subsystem_device: int = 0
    revision: int = 0
    class_code: int | None = None       # 24-bit base/sub/prog-if; None when the source does not show it

    @property
    def subsys(self) -> str:
        """``SUBSYS_ssssvvvv``: subsystem *device* first, then subsystem vendor."""
        return f"{self.subsystem_device:04X}{self.subsystem_vendor:04X}"

    @property
    def device_id(self) -> str:
        """The device id (first hardware id), the Enum key a function is filed under."""
        return f"PCI\\VEN_{self.vendor:04X}&DEV_{self.device:04X}&SUBSYS_{self.subsys}&REV_{self.revision:02X}"

    def short(self) -> str:
        return (f"{self.vendor:04x}:{self.device:04x} subsys {self.subsystem_vendor:04x}:{self.subsystem_device:04x} "
                f"rev {self.revision:02x}")


def hardware_ids(ids: PciIdentity, windows10: bool = True) -> tuple[str, ...]:
    """Hardware ids, most specific first (Microsoft's list; the CC_ forms need the class code).

    Windows 10 moved ``&REV_rr`` and the bare ``VEN&DEV`` form to the compatible ids (Microsoft's note;
    a Server 2016 VM on ESXi lists exactly SUBSYS&REV, SUBSYS, CC_6, CC_4: tests/data/windows/)."""
    ven_dev = f"PCI\\VEN_{ids.vendor:04X}&DEV_{ids.device:04X}"
    out = [ids.device_id, f"{ven_dev}&SUBSYS_{ids.subsys}"]
    if not windows10:
        out += [f"{ven_dev}&REV_{ids.revision:02X}", ven_dev]
    if ids.class_code is not None:
        out += [f"{ven_dev}&CC_{ids.class_code:06X}", f"{ven_dev}&CC_{ids.class_code >> 8:04X}"]
    return tuple(dict.fromkeys(out))


def compatible_ids(ids: PciIdentity, express_type: int | None = None) -> tuple[str, ...]:
    """Compatible ids, most specific first; ``express_type`` (the PCIe capability's device/port type: 0
    endpoint, 4 root port) adds the ``&DT_`` forms Windows gives a PCI Express function."""
    ven = f"PCI\\VEN_{ids.vendor:04X}"
    out = [f"{ven}&DEV_{ids.device:04X}&REV_{ids.revision:02X}", f"{ven}&DEV_{ids.device:04X}"]
    if ids.class_code is not None:
        cc6, cc4 = f"{ids.class_code:06X}", f"{ids.class_code >> 8:04X}"
        out += [f"{ven}&CC_{cc6}", f"{ven}&CC_{cc4}", ven]
        dt = [] if express_type is None else [f"&DT_{express_type:X}"]
        out += [f"PCI\\CC_{cc6}{d}" for d in dt] + [f"PCI\\CC_{cc6}"]
        out += [f"PCI\\CC_{cc4}{d}" for d in dt] + [f"PCI\\CC_{cc4}"]
    else:
        out.append(ven)
    return tuple(out)


def devfn(device: int, function: int) -> int:
    if not (0 <= device <= 31 and 0 <= function <= 7):
        raise ValueError(f"device {device:#x} function {function} is not a PCI device/function")
    return (device << 3) | function


def location(chain: tuple[int, ...]) -> str:
    """The location part from ``(own devfn, parent bridge's devfn, …, bus-0 bridge's devfn)``."""
    if not chain:
        raise ValueError("a location needs at least the function's own device/function")
    return "".join(f"{d:02X}" for d in chain)


def parse_location(text: str) -> tuple[int, ...]:
    """``"00A8"`` -> ``(0x00, 0xA8)``: own devfn first, then each bridge up to bus 0."""
    if not re.fullmatch(r"(?:[0-9A-Fa-f]{2}){1,8}", text):
        raise ValueError(f"{text!r} is not a location (pairs of hex digits, one per PCI level)")
    return tuple(int(text[i:i + 2], 16) for i in range(0, len(text), 2))


# -- serial numbers ---------------------------------------------------------------------------------------------

def _mac_bytes(mac: str) -> bytes:
    cleaned = re.sub(r"[:\-.]", "", mac.strip())
    if not re.fullmatch(r"[0-9A-Fa-f]{12}", cleaned):
        raise ValueError(f"{mac!r} is not a MAC address")
    return bytes.fromhex(cleaned)


def dsn_from_mac(formula: str, mac: str) -> int:
    """The 64-bit PCIe Device Serial Number a NIC builds from its MAC.

    ``vmxnet3``: bytes fe,m3,m4,m5,m0,m1,m2,ff (low to high), as VMware and QEMU's vmxnet3 both do;
    ``e1000e``: m0 m1 m2 ff ff m3 m4 m5 read as a big-endian number (QEMU's e1000e, VMware's e1000e).
    Checked against real instance ids (tests/data/windows/README.md)."""
    m = _mac_bytes(mac)
    if formula == "vmxnet3":
        return int.from_bytes(bytes([0xFE, m[3], m[4], m[5], m[0], m[1], m[2], 0xFF]), "little")
    if formula == "e1000e":
        return int.from_bytes(bytes([m[0], m[1], m[2], 0xFF, 0xFF, m[3], m[4], m[5]]), "big")
    raise ValueError(f"no serial-number formula {formula!r} (known: vmxnet3, e1000e)")


def serial_instance(dsn: int) -> str:
    """The serial-number instance part: 16 hex digits of the DSN and ``00`` (as every capture shows)."""
    return f"{dsn:016X}00"


# -- parsing what Windows prints -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class InstancePath:
    """A PCI device instance path as Windows prints it, split into its parts."""

    text: str                          # normalised: one backslash, device id upper case
    ids: PciIdentity                   # class_code unknown from a path alone
    form: str                          # "location" | "serial" | "other"
    prefix: str | None = None          # location form: the parent prefix as printed (3&61aaa01&0)
    chain: tuple[int, ...] = ()        # location form: own devfn first
    serial: int | None = None          # serial form: the DSN
    instance: str = ""                 # the part after the device id, as printed

    @property
    def depth(self) -> int | None:
        """The prefix's first field: the parent devnode's level (3 = the root bus's children)."""
        return int(self.prefix.split("&")[0], 16) if self.prefix else None


def parse_instance_path(text: str, where: str = "instance path") -> InstancePath:
    """``PCI\\VEN_15AD&DEV_07B0&SUBSYS_07B015AD&REV_01\\FF565000BB0895FE00`` -> its parts.

    Doubled backslashes (JSON, WMI object paths, .reg files) and surrounding quotes are undone; anything
    that is not a PCI instance path is a ProfileError naming ``where`` and what is wrong."""
    raw = text.strip().strip('"').strip("'")
    if len(raw) > MAX_INSTANCE_PATH:
        raise ProfileError(f"{where}: {raw[:40]!r}…: {len(raw)} characters, longer than any PCI instance path")
    raw = re.sub(r"\\{2,}", r"\\", raw)
    parts = raw.split("\\")
    if len(parts) != 3 or parts[0].upper() != "PCI":
        raise ProfileError(f"{where}: {raw[:80]!r} is not a PCI instance path (PCI\\VEN_vvvv&DEV_dddd&SUBSYS_…&REV_rr\\<instance>)")
    match = _DEVICE_ID.match("PCI\\" + parts[1].upper())
    if not match:
        raise ProfileError(f"{where}: {parts[1][:60]!r} is not a PCI device id (VEN_vvvv&DEV_dddd&SUBSYS_ssssvvvv&REV_rr)")
    subsys = int(match["subsys"] or "0", 16)
    ids = PciIdentity(int(match["ven"], 16), int(match["dev"], 16), subsystem_vendor=subsys & 0xFFFF,
                      subsystem_device=subsys >> 16, revision=int(match["rev"] or "0", 16))
    instance = parts[2]
    text_norm = f"{ids.device_id}\\{instance}" if match["subsys"] and match["rev"] else raw
    loc = _PREFIX.match(instance)
    if loc:
        return InstancePath(text_norm, ids, "location", loc["prefix"], parse_location(loc["loc"]), instance=instance)
    ser = _SERIAL.match(instance)
    if ser:
        return InstancePath(text_norm, ids, "serial", serial=int(ser["serial"], 16), instance=instance)
    if not instance or len(instance) > 40 or not re.fullmatch(r"[\w&.#{}-]+", instance):
        raise ProfileError(f"{where}: {instance[:40]!r} is neither a location (3&61aaa01&0&78) nor a serial "
                           f"(FF565000BB0895FE00) instance part")
    return InstancePath(text_norm, ids, "other", instance=instance)


def mac_from_dsn(formula: str, dsn: int) -> str | None:
    """The MAC a serial number was made of (inverse of :func:`dsn_from_mac`); None if ``dsn`` is not of that form."""
    if formula == "vmxnet3":
        b = dsn.to_bytes(8, "little")
        if b[0] != 0xFE or b[7] != 0xFF:
            return None
        mac = bytes([b[4], b[5], b[6], b[1], b[2], b[3]])
    elif formula == "e1000e":
        b = dsn.to_bytes(8, "big")
        if b[3:5] != b"\xff\xff":
            return None
        mac = bytes([b[0], b[1], b[2], b[5], b[6], b[7]])
    else:
        return None
    return ":".join(f"{x:02x}" for x in mac)
