"""guestinfo keys given on the command line (``--guestinfo KEY=VALUE``, ``--guestinfo-file KEY=PATH``).

They extend the profile's ``[guestinfo]`` table for one run (a key given both ways: the command line
wins), the way a vSphere admin sets ``guestinfo.*`` on one VM; the merged table is checked against the
same bounds as a profile's (:func:`guestcompat.profiles.model.check_guestinfo`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from guestcompat.errors import GuestcompatError
from guestcompat.profiles.model import GUESTINFO_MAX_VALUE, Profile, check_guestinfo


class GuestinfoError(GuestcompatError):
    """A malformed or oversized --guestinfo / --guestinfo-file argument."""


def _split(item: str, option: str) -> tuple[str, str]:
    key, eq, rest = item.partition("=")
    if not eq or not key:
        raise GuestinfoError(f"{option} {item[:80]!r}: expected KEY=" + ("PATH" if option.endswith("file") else "VALUE"))
    return key.removeprefix("guestinfo."), rest


def parse(values: Iterable[str] = (), files: Iterable[str] = ()) -> dict[str, str]:
    """KEY=VALUE and KEY=PATH arguments → a table; a file is read as UTF-8 text, at most
    GUESTINFO_MAX_VALUE bytes (read one byte further, so a larger file is refused, not truncated)."""
    table: dict[str, str] = {}
    for item in values:
        key, value = _split(item, "--guestinfo")
        table[key] = value
    for item in files:
        key, path = _split(item, "--guestinfo-file")
        try:
            with open(Path(path), "rb") as fh:
                data = fh.read(GUESTINFO_MAX_VALUE + 1)
        except OSError as exc:
            raise GuestinfoError(f"--guestinfo-file {key}: cannot read {path!r}: {exc.strerror}") from None
        if len(data) > GUESTINFO_MAX_VALUE:
            raise GuestinfoError(f"--guestinfo-file {key}: {path!r} is larger than {GUESTINFO_MAX_VALUE} bytes")
        try:
            table[key] = data.decode("utf-8")
        except UnicodeDecodeError:
            raise GuestinfoError(f"--guestinfo-file {key}: {path!r} is not UTF-8 text "
                                 f"(encode binary data as base64 and set {key}.encoding=base64)") from None
    return table


def with_guestinfo(profile: Profile, extra: dict[str, str]) -> Profile:
    """``profile`` with ``extra`` merged into its guestinfo table, bounds checked."""
    if not extra:
        return profile
    try:
        merged = check_guestinfo({**profile.guestinfo, **extra})
    except ValueError as exc:
        raise GuestinfoError(str(exc)) from None
    return profile.model_copy(update={"guestinfo": merged})
