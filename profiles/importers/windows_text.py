"""Read what a person can run on a Windows source VM without installing anything.

Device listings (each names PCI functions by their instance path, some add
hardware/compatible ids, the service, the location):

* ``pnputil /enum-devices [/bus PCI] [/connected] [/ids] [/relations]`` (Windows 10 2004+),
* PowerShell ``Get-PnpDevice [-PresentOnly]`` (table or ``Format-List``) and
  ``Get-CimInstance``/``Get-WmiObject Win32_PnPEntity`` (list or WMI query dumps),
* ``devcon findall`` / ``devcon hwids``,
* ``reg export HKLM\\SYSTEM\\CurrentControlSet\\Enum\\PCI`` (``hex(7)`` multi-strings, wrapped),
* ``setupapi.dev.log`` / ``setupapi.log`` excerpts.

Identity: ``systeminfo``, ``wmic bios get …`` / ``wmic csproduct get …`` (table or
``/format:list``), ``Get-CimInstance Win32_BIOS``/``Win32_ComputerSystemProduct``;
NICs: ``Get-NetAdapter`` (MAC and PnP instance).

Pastes arrive damaged (CRLF, markdown backticks, doubled backslashes from JSON
or WMI object paths, PowerShell's ``...`` truncation of long columns, wrapped
lines, a second VM's output): every instance path is found wherever it sits,
every record's keys are read when present, and what cannot be read is listed
with its line number instead of being guessed. A truncated instance path (``…``
or ``...``) is refused by name: its location would be wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from guestcompat.detection.windows.ids import InstancePath, parse_instance_path
from guestcompat.errors import ProfileError
from guestcompat.profiles.importers.windows_identity import WindowsIdentity, WindowsNic, read_identity, read_nics

#: an instance path anywhere in a line (doubled backslashes allowed), and a cut one
_PATH = re.compile(r"PCI\\{1,4}VEN_[0-9A-Fa-f]{4}&DEV_[0-9A-Fa-f]{4}(?:&SUBSYS_[0-9A-Fa-f]{8})?(?:&REV_[0-9A-Fa-f]{2})?"
                   r"\\{1,4}[0-9A-Za-z&_]+", re.IGNORECASE)
_CUT = re.compile(r"PCI\\{1,4}VEN_[0-9A-Fa-f]{4}[^\s\"'|]*?(?:\.\.\.|…)", re.IGNORECASE)
_KEY_VALUE = re.compile(r"^\s*(?P<key>[A-Za-z][A-Za-z0-9 ()_/.-]{0,40}?)\s*(?::|=)\s?(?P<value>.*)$")
_REG_KEY = re.compile(r"^\[(?P<path>HKEY_[^\]]+)\]\s*$", re.IGNORECASE)
_REG_VALUE = re.compile(r'^"(?P<name>[^"]+)"=(?P<value>.*)$')
_CC = re.compile(r"&CC_([0-9A-Fa-f]{6})\b")
#: "PCI bus 11, device 0, function 0" as shown, or as the registry stores it since Windows 8, an indirect string
#: with its arguments: "@System32\drivers\pci.sys,#65536;PCI bus %1, device %2, function %3;(11,0,0)"
_LOCATION_INFO = re.compile(r"PCI bus (\d+), device (\d+), function (\d+)"
                            r"|PCI bus %1, device %2, function %3;\((\d+),(\d+),(\d+)\)", re.IGNORECASE)
_LOCATION_PATH = re.compile(r"PCIROOT\(\d+\)((?:#PCI\([0-9A-Fa-f]{4}\))+)", re.IGNORECASE)
MAX_TEXT = 16 * 1024 * 1024
MAX_DEVICES = 4096

#: record keys (lower case, spaces removed) -> what they hold
_INSTANCE_KEYS = {"instanceid", "deviceid", "pnpdeviceid", "deviceinstanceid", "device", "instance"}
_HW_KEYS = {"hardwareids", "hardwareid"}
_COMPAT_KEYS = {"compatibleids", "compatibleid"}
_SERVICE_KEYS = {"service", "servicename"}
_NAME_KEYS = {"devicedescription", "friendlyname", "name", "description", "caption", "devicedesc"}
_LOCINFO_KEYS = {"locationinformation", "locationinfo", "location"}
_LOCPATH_KEYS = {"locationpaths", "locationpath"}
_STATUS_KEYS = {"status", "present", "problem"}


@dataclass(frozen=True)
class ListedDevice:
    """One PCI function a Windows listing names."""

    path: InstancePath
    line: int
    name: str | None = None
    service: str | None = None
    hardware_ids: tuple[str, ...] = ()
    compatible_ids: tuple[str, ...] = ()
    location_info: tuple[int, int, int] | None = None      # bus, device, function ("PCI bus 11, device 0, …")
    location_path: tuple[int, ...] | None = None            # devfns from bus 0 down (PCIROOT(0)#PCI(1600)#PCI(0000))
    present: bool | None = None
    parent: str | None = None                               # pnputil /relations, DEVPKEY_Device_Parent

    @property
    def class_code(self) -> int | None:
        for hid in self.hardware_ids + self.compatible_ids:
            m = _CC.search(hid)
            if m:
                return int(m[1], 16)
        return None


@dataclass(frozen=True)
class WindowsCapture:
    devices: tuple[ListedDevice, ...] = ()
    identity: WindowsIdentity = WindowsIdentity()
    nics: tuple[WindowsNic, ...] = ()
    forms: tuple[str, ...] = ()
    root_path: str | None = None          # ACPI\PNP0A03\… when the listing shows the root bridge
    problems: tuple[str, ...] = ()

    @property
    def windows_version(self) -> str | None:
        """A catalogue name (2016, 2019, 10, …) from the OS name systeminfo/WMI printed."""
        text = self.identity.os_name or ""
        m = re.search(r"Windows Server (\d{4}(?: R2)?)", text)
        if m:
            return m[1].replace(" R2", "r2").lower()
        m = re.search(r"Windows (XP|Vista|7|8|10|11)\b", text)
        return m[1].lower() if m else None


# -- sniffing ------------------------------------------------------------------------------------------------------

_MARKERS = (
    ("pnputil", re.compile(r"^\s*Instance ID:\s", re.M)),
    ("Get-PnpDevice", re.compile(r"^\s*(?:Status\s+Class\s+FriendlyName\s+InstanceId|InstanceId\s*:)", re.M)),
    ("Win32_PnPEntity", re.compile(r"Win32_PnPEntity|^\s*PNPDeviceID\s*:|^\s*DeviceID\s*:\s*PCI\\", re.M)),
    ("devcon", re.compile(r"^\s*PCI\\VEN_\S+\s*:\s|matching device\(s\) found|^\s+Hardware IDs?:\s*$", re.M)),
    ("reg export", re.compile(r"^\[HKEY_LOCAL_MACHINE\\SYSTEM\\(?:CurrentControlSet|ControlSet\d{3})\\Enum\\PCI", re.M | re.I)),
    ("setupapi", re.compile(r"Device Install|dvi:|#-019 Searching for hardware ID", re.M)),
    ("systeminfo", re.compile(r"^\s*(?:System Manufacturer|System Model|BIOS Version|OS Name):\s", re.M)),
    ("wmic", re.compile(r"^\s*(?:IdentifyingNumber|SMBIOSBIOSVersion|SerialNumber)\b.*$|^\s*(?:UUID|Vendor|Manufacturer)=",
                        re.M)),
    ("Get-NetAdapter", re.compile(r"^\s*MacAddress\s*:|InterfaceDescription\s+ifIndex\s+Status\s+MacAddress", re.M)),
)


def detected_forms(text: str) -> tuple[str, ...]:
    return tuple(name for name, pattern in _MARKERS if pattern.search(text))


def sniff(text: str) -> int:
    """0..100: how sure we are this is a Windows-side capture (instance paths, or Windows tools' labels)."""
    forms = detected_forms(text)
    paths = len(_PATH.findall(text))
    if paths and forms:
        return 95
    if paths >= 2 or (paths and "PCI\\" in text):
        return 80
    if {"systeminfo", "wmic", "Get-NetAdapter"} & set(forms):
        return 75
    return 40 if _CUT.search(text) else 0


# -- reading -------------------------------------------------------------------------------------------------------

def _records(lines: list[str]) -> list[tuple[int, list[str]]]:
    """Blank-line separated blocks, ``[HKEY…]`` sections, and devcon's unindented instance lines."""
    out: list[tuple[int, list[str]]] = []
    cur: list[str] = []
    start = 1
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        new_block = (not stripped or _REG_KEY.match(stripped)
                     or (line[:1] not in " \t" and re.match(r"PCI\\VEN_", stripped, re.I) and cur
                         and any(ln.startswith((" ", "\t")) for ln in cur)))
        if new_block:
            if cur:
                out.append((start, cur))
            cur = [] if not stripped else [line]
            start = number + (0 if stripped else 1)
            continue
        cur.append(line)
    if cur:
        out.append((start, cur))
    return out


def _norm(key: str) -> str:
    return re.sub(r"[\s_]", "", key).lower()


def _split_list(value: str) -> list[str]:
    value = value.strip().strip("{}")
    return [v.strip().strip('"') for v in re.split(r"[,\s]+(?=PCI\\)|\s{2,}|,\s*|\s(?=PCI\\)", value) if v.strip()]


def _reg_string(value: str) -> list[str]:
    """A .reg value: "text", hex(7):… (UTF-16LE multi-string), dword:…"""
    value = value.strip()
    if value.startswith('"'):
        return [value.strip('"').replace("\\\\", "\\")]
    m = re.match(r"hex\((?:7|2)\):(?P<bytes>[0-9a-fA-F,\s\\]*)", value)
    if m:
        raw = bytes(int(b, 16) for b in re.findall(r"[0-9a-fA-F]{2}", m["bytes"]))
        text = raw.decode("utf-16-le", errors="replace")
        return [s for s in text.split("\x00") if s]
    return [value]


def _join_reg_continuations(lines: list[str]) -> list[str]:
    """.reg files wrap long hex values: a line ending in a backslash (paste.py strips it) continues indented."""
    out: list[str] = []
    for line in lines:
        if out and re.match(r"^\s{2,}[0-9a-fA-F]{2},", line) and re.search(r"hex\([0-9a-f]\):|[0-9a-fA-F]{2},?\s*\\?$",
                                                                             out[-1]):
            out[-1] = out[-1].rstrip().rstrip("\\").rstrip() + (
                "," if not out[-1].rstrip().rstrip("\\").rstrip().endswith(",") else "") + line.strip()
        else:
            out.append(line)
    return out


def _location_path(value: str) -> tuple[int, ...] | None:
    m = _LOCATION_PATH.search(value)
    if not m:
        return None
    out = []
    for part in re.findall(r"PCI\(([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})\)", m[1]):
        device, function = int(part[0], 16), int(part[1], 16)
        if device > 31 or function > 7:
            return None
        out.append((device << 3) | function)
    return tuple(out)


def read(text: str, label: str) -> WindowsCapture:
    """Every Windows fact ``text`` holds; problems name ``label`` and the line."""
    if len(text) > MAX_TEXT:
        raise ProfileError(f"{label}: {len(text)} characters; a Windows capture is far smaller (limit {MAX_TEXT})")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = _join_reg_continuations(text.split("\n"))
    problems: list[str] = []
    devices: dict[str, ListedDevice] = {}
    root_path = None
    for m in re.finditer(r"ACPI\\{1,2}PNP0A0[38]\\{1,2}[0-9A-Za-z&]+", text):
        root_path = re.sub(r"\\+", r"\\", m[0])
        break
    for start, block in _records(lines):
        _read_record(start, block, label, devices, problems)
        if len(devices) > MAX_DEVICES:
            raise ProfileError(f"{label}: more than {MAX_DEVICES} PCI functions: not one VM's listing")
    for number, line in enumerate(lines, 1):
        kv = _KEY_VALUE.match(line)
        if kv and _norm(kv["key"]) in _HW_KEYS | _COMPAT_KEYS:
            continue                # an id list PowerShell cut ($FormatEnumerationLimit): the ids kept are whole
        for cut in _CUT.finditer(line):
            if not _PATH.match(cut[0]) or cut[0].endswith(("...", "…")):
                problems.append(f"{label} line {number}: {cut[0][:60]!r} is cut short (PowerShell's table truncates "
                                f"long columns): skipped; use `Format-List` or `| Select -Expand InstanceId`")
    identity, os_problems = read_identity(lines, label)
    problems += os_problems
    nics = read_nics(lines, _PATH)
    return WindowsCapture(tuple(sorted(devices.values(), key=lambda d: d.line)), identity, nics, detected_forms(text),
                          root_path, tuple(dict.fromkeys(problems)))


def _read_record(start: int, block: list[str], label: str, devices: dict[str, ListedDevice],
                 problems: list[str]) -> None:
    primary: tuple[InstancePath, int] | None = None
    fields: dict[str, list[str]] = {}
    last_key: str | None = None
    header = _REG_KEY.match(block[0].strip())
    if header:
        # only Enum\PCI\<device id>\<instance> keys are functions; the device-id key above and the
        # "Device Parameters"/"LogConf" keys below them are not
        _, sep, rest = header["path"].partition("\\Enum\\PCI\\")
        if not sep or rest.count("\\") != 1:
            return
        parsed = _parse("PCI\\" + rest, f"{label} line {start}", problems)
        if parsed is None:
            return
        primary = (parsed, start)
        for offset, line in enumerate(block[1:], 1):
            value = _REG_VALUE.match(line.strip())
            if value:
                fields.setdefault(_norm(value["name"]), []).extend(_reg_string(value["value"]))
    else:
        for offset, line in enumerate(block):
            kv = _KEY_VALUE.match(line)
            key = _norm(kv["key"]) if kv and not kv["key"].upper().startswith("PCI") else None
            if key and (key in _INSTANCE_KEYS | _HW_KEYS | _COMPAT_KEYS | _SERVICE_KEYS | _NAME_KEYS | _LOCINFO_KEYS
                        | _LOCPATH_KEYS | _STATUS_KEYS | {"parent", "children"}):
                last_key = key
                if kv["value"].strip():
                    fields.setdefault(key, []).extend(_split_list(kv["value"]) if key in _HW_KEYS | _COMPAT_KEYS
                                                      | {"children"} else [kv["value"].strip()])
                continue
            if last_key and line[:1] in " \t" and line.strip() and not kv:
                fields.setdefault(last_key, []).append(line.strip())       # pnputil/devcon continuation lines
                continue
            last_key = None if not (kv and key) else last_key
            for m in _PATH.finditer(line):
                parsed = _parse(m[0], f"{label} line {start + offset}", problems)
                if parsed is None:
                    continue
                after = re.match(r"^\s*:\s*([^\"'|{}]+?)\s*`?\s*$", line[m.end():])
                name = after[1] if after else None
                if primary is None and (offset == 0 or not any(k in fields for k in _INSTANCE_KEYS)):
                    primary = (parsed, start + offset)
                    if name and len(name) < 100:
                        fields.setdefault("name", []).append(name)
                elif parsed.text.upper() not in devices:
                    devices[parsed.text.upper()] = ListedDevice(parsed, start + offset, name=name)
        for key in _INSTANCE_KEYS:          # "Instance ID:", "InstanceId :", "DeviceID :", "PNPDeviceID :" name the record
            for value in fields.get(key, []):
                m = _PATH.search(value)
                parsed = _parse(m[0], f"{label} line {start}", problems) if m else None
                if parsed is None:
                    continue
                if primary is not None and primary[0].text.upper() != parsed.text.upper():
                    devices.setdefault(primary[0].text.upper(), ListedDevice(primary[0], primary[1]))
                primary = (parsed, start)
    if primary is None:
        return
    path, line = primary
    locinfo = next((m for v in fields.get("locationinformation", []) + fields.get("locationinfo", [])
                    + fields.get("location", []) if (m := _LOCATION_INFO.search(v))), None)
    locpath = next((p for v in fields.get("locationpaths", []) + fields.get("locationpath", [])
                    if (p := _location_path(v)) is not None), None)
    status = " ".join(fields.get("status", []) + fields.get("present", [])).lower()
    device = ListedDevice(
        path, line, name=_display(next(iter(fields.get("devicedescription", []) + fields.get("friendlyname", [])
                                            + fields.get("name", []) + fields.get("caption", [])
                                            + fields.get("devicedesc", [])), None)),
        service=next((s for s in fields.get("service", []) + fields.get("servicename", []) if s and s != "None"), None),
        hardware_ids=_ids(fields.get("hardwareids", []) + fields.get("hardwareid", [])),
        compatible_ids=_ids(fields.get("compatibleids", []) + fields.get("compatibleid", [])),
        location_info=_location_info(locinfo),
        location_path=locpath,
        parent=next((re.sub(r"\\+", r"\\", m[0]) for v in fields.get("parent", []) if (m := _PATH.search(v))), None),
        present=False if ("disconnected" in status or "unknown" in status or "false" in status) else
        (True if status else None))
    old = devices.get(path.text.upper())
    if old is None or _richness(device) >= _richness(old):
        devices[path.text.upper()] = device


def _display(name: str | None) -> str | None:
    """A registry DeviceDesc is an indirect string, "@oem6.inf,%vmxnet3.devicedesc%;vmxnet3 Ethernet Adapter": its
    text is after the last semicolon."""
    if name and name.startswith("@") and ";" in name:
        return name.rsplit(";", 1)[1] or None
    return name


def _location_info(m: re.Match | None) -> tuple[int, int, int] | None:
    if m is None:
        return None
    groups = m.groups()[:3] if m[1] is not None else m.groups()[3:]
    return int(groups[0]), int(groups[1]), int(groups[2])


def _ids(values: list[str]) -> tuple[str, ...]:
    """PCI ids of a list, without the one PowerShell cut short (``…CC_0200...``) and without duplicates."""
    return tuple(dict.fromkeys(v for v in values if v.upper().startswith("PCI\\") and not v.endswith(("...", "…"))))


def _richness(d: ListedDevice) -> int:
    return sum(bool(x) for x in (d.name, d.service, d.hardware_ids, d.compatible_ids, d.location_info, d.location_path))


def _parse(text: str, where: str, problems: list[str]) -> InstancePath | None:
    try:
        return parse_instance_path(text, where)
    except ProfileError as exc:
        if where:
            problems.append(str(exc))
        return None
