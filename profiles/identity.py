"""System identity derived the way VMware derives it from one UUID.

A VMware VM has one 16-byte UUID (the .vmx's ``uuid.bios``, written as
``42 1e 5b 8f 9c 3a 1d 2e-7f 41 3b 2a 6c 5d 4e 3f``). The guest sees it
twice in SMBIOS type 1, and the two must stay consistent or licensing and
inventory tools treat the guest as a new machine:

* the serial number ``VMware-42 1e 5b 8f 9c 3a 1d 2e-7f 41 3b 2a 6c 5d 4e 3f``
  (the bytes in that order, a dash after the eighth);
* the UUID field. BIOS firmware stores the bytes in serial order. SMBIOS
  readers decode the first three fields big-endian for tables older than
  2.6 and little-endian from 2.6 on, so a 2.4-era VMware BIOS guest displays
  ``421e5b8f-9c3a-1d2e-…`` while a 2018+ BIOS (SMBIOS 2.7) guest displays
  ``8f5b1e42-3a9c-2e1d-…``. EFI firmware encodes the UUID properly
  (little-endian), so EFI guests display the serial order again.
  (vmware-ground-truth.md §4, with the captures cited there.)

A profile states ``smbios.system.uuid_bios`` and the SMBIOS version it
presents; ``effective_smbios`` fills in the serial and the displayed UUID,
unless the profile states them explicitly (an imported guest may disagree
with the rule; its own values win).
"""

from __future__ import annotations

import re
import uuid as uuidlib

from guestcompat.profiles.model import Profile, Smbios

_UUID_BIOS = re.compile(r"^[0-9a-fA-F]{2}( [0-9a-fA-F]{2}){7}-[0-9a-fA-F]{2}( [0-9a-fA-F]{2}){7}$")


def parse_uuid_bios(text: str) -> bytes:
    """The 16 bytes of a .vmx-style ``uuid.bios`` value; ValueError names the expected form."""
    if not _UUID_BIOS.match(text.strip()):
        raise ValueError(f"{text!r} is not a VMware uuid.bios like '42 1e 5b 8f 9c 3a 1d 2e-7f 41 3b 2a 6c 5d 4e 3f'")
    return bytes.fromhex(text.replace("-", " "))


def vmware_serial(raw: bytes) -> str:
    """SMBIOS type 1 serial as VMware writes it."""
    return "VMware-" + " ".join(f"{b:02x}" for b in raw[:8]) + "-" + " ".join(f"{b:02x}" for b in raw[8:])


def displayed_uuid(raw: bytes, *, firmware: str, smbios_version: str | None) -> str:
    """The UUID a guest's dmidecode or /sys/class/dmi/id/product_uuid shows."""
    swapped = firmware == "bios" and smbios_version is not None and _at_least(smbios_version, (2, 6))
    return str(uuidlib.UUID(bytes_le=raw) if swapped else uuidlib.UUID(bytes=raw))


def _at_least(version: str, floor: tuple[int, int]) -> bool:
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) >= floor


def effective_smbios(profile: Profile) -> Smbios:
    """The profile's SMBIOS with serial and UUID derived from ``uuid_bios`` where not stated."""
    smbios = profile.smbios
    system = smbios.system
    if system.uuid_bios is None:
        return smbios
    raw = parse_uuid_bios(system.uuid_bios)
    update: dict[str, str] = {}
    if system.serial is None:
        update["serial"] = vmware_serial(raw)
    if system.uuid is None:
        update["uuid"] = displayed_uuid(raw, firmware=profile.platform.firmware, smbios_version=smbios.version)
    return smbios.model_copy(update={"system": system.model_copy(update=update)})
