"""Identity and NICs in a Windows capture: ``systeminfo``, ``wmic … get`` (table or ``/format:list``),
``Get-CimInstance Win32_BIOS | Format-List``, WMI query dumps (pipe tables) and ``Get-NetAdapter``.

What Windows activation and a profile's ``[smbios]`` care about: system manufacturer and model, the BIOS
vendor, version and date (as dmidecode prints dates, mm/dd/yyyy), serial and UUID, the SMBIOS version and
the OS name (which Windows it is); and each NIC's MAC with the PCI function it sits on. windows_text.py
reads the device listings around these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MAC = re.compile(r"\b([0-9A-Fa-f]{2}(?:[-:][0-9A-Fa-f]{2}){5})\b")


@dataclass(frozen=True)
class WindowsIdentity:
    system_manufacturer: str | None = None
    system_product: str | None = None
    system_serial: str | None = None
    system_uuid: str | None = None
    bios_vendor: str | None = None
    bios_version: str | None = None
    bios_date: str | None = None          # mm/dd/yyyy, as dmidecode prints it
    smbios_version: str | None = None
    os_name: str | None = None

    @property
    def empty(self) -> bool:
        return not any(getattr(self, f) for f in self.__dataclass_fields__)


@dataclass(frozen=True)
class WindowsNic:
    name: str
    mac: str | None
    instance: str | None


def _date(text: str) -> str | None:
    """WMI ``20250118000000.000000+000`` or systeminfo ``4/5/2016`` / ``2016-04-05`` → ``04/05/2016``."""
    text = text.strip()
    m = re.match(r"^(\d{4})(\d{2})(\d{2})\d{6}\.", text)
    if m:
        return f"{m[2]}/{m[3]}/{m[1]}"
    m = re.search(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b", text)
    if m:
        return f"{int(m[1]):02d}/{int(m[2]):02d}/{m[3]}"
    m = re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", text)
    if m:
        return f"{m[2]}/{m[3]}/{m[1]}"
    return None


def _wmic_tables(lines: list[str]) -> dict[str, str]:
    """``wmic … get a,b,c`` prints a header line and a value line aligned by column; ``/format:list`` prints
    ``Key=Value``. Both into one dict (last wins)."""
    out: dict[str, str] = {}
    for line in lines:
        m = re.match(r"^\s*([A-Za-z][A-Za-z0-9]+)=(.*)$", line)
        if m:
            out[m[1]] = m[2].strip()
    header: list[str] | None = None
    for line in lines:          # impacket-wmiquery / markdown tables: | Caption | … | then | value | … |
        if not line.strip().startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if len(cells) == len(header):
            for key, value in zip(header, cells):
                if value and value != "None" and re.fullmatch(r"[A-Za-z][A-Za-z0-9]+", key):
                    out.setdefault(key, value)
    known = {"IdentifyingNumber", "Name", "UUID", "Vendor", "Version", "Manufacturer", "SerialNumber",
             "SMBIOSBIOSVersion", "ReleaseDate", "SMBIOSMajorVersion", "SMBIOSMinorVersion", "Caption"}
    for i, line in enumerate(lines[:-1]):
        words = line.split()
        if len(words) < 1 or not set(words) <= known or not words:
            continue
        value_line = next((ln for ln in lines[i + 1:i + 3] if ln.strip()), "")
        starts = [line.index(w) for w in words]
        for j, word in enumerate(words):
            end = starts[j + 1] if j + 1 < len(starts) else None
            cell = value_line[starts[j]:end].strip() if len(value_line) > starts[j] else ""
            if cell:
                out.setdefault(word, cell)
    return out


def read_identity(lines: list[str], label: str) -> tuple[WindowsIdentity, list[str]]:
    values: dict[str, str] = {}
    problems: list[str] = []
    for line in lines:
        m = re.match(r"^\s*(System Manufacturer|System Model|BIOS Version|OS Name|OS Version)\s*:\s*(.+?)\s*$", line)
        if m:
            values.setdefault(m[1], m[2])
    wmic = _wmic_tables(lines)
    for line in lines:          # Format-List of Win32_BIOS / Win32_ComputerSystemProduct
        m = re.match(r"^\s*(SMBIOSBIOSVersion|Manufacturer|ReleaseDate|IdentifyingNumber|UUID|Vendor|SerialNumber|"
                     r"SMBIOSMajorVersion|SMBIOSMinorVersion)\s+:\s+(.+?)\s*$", line)
        if m:
            wmic.setdefault(m[1], m[2])
    bios_vendor = bios_version = bios_date = None
    if "BIOS Version" in values:
        m = re.match(r"^(?P<rest>.+?),\s*(?P<date>\S+)$", values["BIOS Version"])
        rest = m["rest"] if m else values["BIOS Version"]
        bios_date = _date(m["date"]) if m else None
        vendor, _, version = rest.rpartition(" ")
        bios_vendor, bios_version = (vendor or None), version or None
    bios_version = wmic.get("SMBIOSBIOSVersion") or bios_version
    bios_vendor = wmic.get("Manufacturer") if wmic.get("SMBIOSBIOSVersion") and wmic.get("Manufacturer") else bios_vendor
    if wmic.get("ReleaseDate"):
        bios_date = _date(wmic["ReleaseDate"]) or bios_date
    smbios = None
    if wmic.get("SMBIOSMajorVersion") and wmic.get("SMBIOSMinorVersion"):
        smbios = f"{wmic['SMBIOSMajorVersion']}.{wmic['SMBIOSMinorVersion']}"
    serial = wmic.get("IdentifyingNumber") or wmic.get("SerialNumber")
    uuid = wmic.get("UUID")
    if uuid and not re.fullmatch(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}", uuid):
        problems.append(f"{label}: UUID {uuid[:40]!r} is not a UUID; ignored")
        uuid = None
    identity = WindowsIdentity(
        system_manufacturer=values.get("System Manufacturer") or wmic.get("Vendor"),
        system_product=values.get("System Model") or (wmic.get("Name") if wmic.get("IdentifyingNumber") else None),
        system_serial=serial, system_uuid=uuid, bios_vendor=bios_vendor, bios_version=bios_version,
        bios_date=bios_date, smbios_version=smbios,
        os_name=values.get("OS Name") or next((v for v in (wmic.get("Caption"),) if v and "Windows" in v), None))
    return identity, problems


def read_nics(lines: list[str], path_pattern: re.Pattern) -> tuple[WindowsNic, ...]:
    """``Get-NetAdapter | Format-List Name,MacAddress,PnPDeviceID`` records (other forms name no PnP instance)."""
    out: list[WindowsNic] = []
    cur: dict[str, str] = {}

    def close() -> None:
        if cur.get("macaddress") or cur.get("pnpdeviceid"):
            mac = _MAC.search(cur.get("macaddress", ""))
            path = path_pattern.search(cur.get("pnpdeviceid", ""))
            out.append(WindowsNic(cur.get("name", "?"), mac[1].replace("-", ":").lower() if mac else None,
                                  re.sub(r"\\+", r"\\", path[0]) if path else None))

    for line in lines + [""]:
        if not line.strip():
            close()
            cur = {}
            continue
        m = re.match(r"^\s*(Name|MacAddress|PnPDeviceID|InterfaceDescription)\s*:\s*(.*)$", line)
        if m:
            cur[m[1].lower()] = m[2].strip()
    return tuple(out)
