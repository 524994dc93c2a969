"""``guestcompat windows``: the Windows verdict of a move, and the Windows view of one machine.

A *side* (the source or the target) is any machine guestcompat can read:
a profile name (its source platform), a fingerprint file (``run --json``,
a baseline), or a capture text (Windows: pnputil, Get-PnpDevice, WMI,
devcon, reg export…; Linux: lspci, dmidecode…). Without ``--against`` the
target is what the chosen QEMU build will present for the profile,
predicted by the compiler without a boot. cli.py registers the command.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from guestcompat.errors import GuestcompatError, ProfileError

#: the Windows version assumed when neither --windows nor the profile's guest.os names one
DEFAULT_WINDOWS = "2019"
MAX_SIDE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Side:
    machine: object               # detection.windows.view.Machine
    profile: object | None        # the Profile, when the side is (or was imported into) one
    os_hint: str | None           # a Windows version the side names (profile guest.os, capture)


def load_side(spec: str, role: str, qemu_binary: str | None = None, machine: str | None = None) -> Side:
    """A profile name, a fingerprint JSON file or a capture text file → the machine it describes.

    A profile as the *source* is the platform it describes (VMware); as the *target* it is what the
    QEMU build ``qemu_binary`` presents for it (a profile of the converted VM, e.g. with virtio devices)."""
    from guestcompat.detection.windows import sources

    path = Path(spec)
    if path.is_file():
        if path.stat().st_size > MAX_SIDE_BYTES:
            raise ProfileError(f"{role} {spec}: {path.stat().st_size} bytes; a fingerprint or capture is far smaller "
                               f"(limit {MAX_SIDE_BYTES // (1024 * 1024)} MiB)")
        head = path.read_bytes()[:64].lstrip()
        if head.startswith(b"{"):
            from guestcompat.harness.baseline import load_fingerprint

            return Side(sources.from_fingerprint(load_fingerprint(path), str(path)), None, None)
        return _capture_side(path, role)
    from guestcompat.profiles.loader import load

    try:
        profile = load(spec)
    except ProfileError as exc:
        if path.suffix.lower() in (".json", ".txt", ".log", ".reg", ".csv", ".md") or path.parent != Path("."):
            raise ProfileError(f"{role} {spec}: no such file, and no profile of that name ({exc})") from None
        raise
    if role == "target":
        return Side(predicted_target(profile, qemu_binary, machine), profile, _os_of(profile))
    return Side(sources.from_profile(profile), profile, _os_of(profile))


def _capture_side(path: Path, role: str) -> Side:
    """A Windows capture (its real instance ids kept), else any capture `import capture` reads (lspci…)."""
    from guestcompat.detection.windows import sources
    from guestcompat.profiles.importers import windows_import, windows_text

    text = windows_import.read_capture_file(path)
    if not windows_text.sniff(text):
        from guestcompat.profiles.importers.capture import import_facts
        from guestcompat.profiles.importers.forms import read_text

        imported = import_facts(path.stem, read_text(text, path.name), label=path.name)
        return Side(sources.from_profile(imported.profile), imported.profile, None)
    result = windows_import.import_windows_files((path,), name=path.stem)
    machine = sources.from_profile(result.profile)
    return Side(windows_import.overlay(machine, result, str(path)), result.profile, result.capture.windows_version)


def _os_of(profile) -> str | None:
    os_name = getattr(profile.guest, "os", None) or ""
    return os_name if os_name.startswith("windows-") else None


def predicted_target(profile, qemu_binary: str | None, machine: str | None) -> object:
    """What the QEMU build (``--qemu``) presents for ``profile``, from the compiler's PCI plan."""
    from guestcompat.detection.windows import sources
    from guestcompat.emulation import arches
    from guestcompat.emulation.capabilities import capabilities_for

    target = arches.resolve_target(profile.platform.arch, machine=machine, qemu_binary=qemu_binary)
    strategy = arches.get(target.arch)
    binary = strategy.binary(target)
    try:
        caps = capabilities_for(binary)
    except GuestcompatError:
        raise
    except OSError as exc:
        raise ProfileError(f"QEMU binary {binary}: {exc.strerror or exc}") from None
    label = f"QEMU {target.machine} ({'build ' + qemu_binary if qemu_binary else 'stock'}, predicted) for {profile.name}"
    return sources.from_plan(profile, target.machine, caps, label)


def windows_version(explicit: str | None, *hints: str | None):
    from guestcompat.detection.windows.drivers import catalogue

    cat = catalogue()
    if explicit:
        return cat.version(explicit), None
    for hint in hints:
        if hint:
            try:
                return cat.version(hint), None
            except ProfileError:
                continue
    return cat.version(DEFAULT_WINDOWS), (f"no Windows version given (--windows) or named by the source: "
                                          f"assumed {cat.version(DEFAULT_WINDOWS).title}")


def windows_capture_script() -> str:
    """The PowerShell capture script for a Windows source VM (detection/windows/gc-capture.ps1)."""
    from importlib import resources

    return resources.files("guestcompat.detection.windows").joinpath("gc-capture.ps1").read_text()


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


@click.command("windows")
@click.argument("source")
@click.option("--against", "against", default=None, metavar="TARGET",
              help="the machine after the move: a fingerprint file (run --json, baseline), a capture file or a "
                   "profile  [default: what --qemu presents for SOURCE, predicted]")
@click.option("--windows", "windows_name", default=None, metavar="VERSION",
              help="Windows version in the guest (xp, 2003, 2008r2, 2012r2, 2016, 2019, 2022, 10, 11…)  "
                   "[default: the profile's guest.os, else 2019]")
@click.option("--qemu", "qemu_binary", default=None, help="QEMU build for the predicted target (stock, patched, PATH)")
@click.option("--machine", default=None, help="QEMU machine type for the predicted target  [default: pc]")
@click.option("--view", "view_only", is_flag=True, help="print the Windows view of SOURCE only (no move)")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="also write the verdict as JSON to this file")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="also write JUnit XML (one test case per PCI function, one for boot)")
@click.option("--fail-on", "fail_on", type=click.Choice(["boot", "nic", "any"]), default="boot", show_default=True,
              help="exit 1 on a predicted boot failure; nic: also when a NIC loses its settings; any: also on any "
                   "new or gone function")
@click.option("--injected", "injected", multiple=True, type=click.Choice(["virtio-win"]),
              help="drivers put into the guest before the move as boot start (what virt-v2v does for virtio-win)")
@click.option("-v", "--verbose", is_flag=True, help="show unchanged functions' instance paths too")
def windows_cmd(source: str, against: str | None, windows_name: str | None, qemu_binary: str | None,
                machine: str | None, view_only: bool, fmt: str, json_path: Path | None, junit_path: Path | None,
                fail_on: str, injected: tuple[str, ...], verbose: bool) -> None:
    """What Windows sees when the machine of SOURCE (a profile, a fingerprint or a capture) becomes TARGET:
    per PCI function same / new (driver present or missing) / gone, whether it still boots (0x7B), which
    NICs lose their settings and what activation notices. Exit 0, 1 when the --fail-on gate trips, 2 error."""
    from guestcompat.detection.windows import report, verdict, view

    src = load_side(source, "source")
    if view_only:
        version, note = windows_version(windows_name, src.os_hint)
        built = view.build_view(src.machine, version)
        if fmt == "json":
            click.echo(json.dumps({"format": "guestcompat-windows-view", "version": 1, **report.view_json(built)},
                                  indent=2, ensure_ascii=False))
        else:
            click.echo("\n".join(([f"note: {note}"] if note else []) + report.render_view(built)))
        return
    if against is not None:
        tgt_side = load_side(against, "target", qemu_binary, machine)
        tgt = tgt_side.machine
        hints = (src.os_hint, tgt_side.os_hint)
    else:
        if src.profile is None:
            raise click.UsageError("without --against the source must be a profile or a capture "
                                   "(the predicted target is compiled from it)")
        tgt = predicted_target(src.profile, qemu_binary, machine)
        hints = (src.os_hint,)
    version, note = windows_version(windows_name, *hints)
    result = verdict.compare(view.build_view(src.machine, version), view.build_view(tgt, version), tuple(injected))
    if note:
        result = verdict.WindowsVerdict(result.source, result.target, result.rows, result.boot, result.nics,
                                        result.activation, result.notes + (note,))
    if json_path:
        _write(json_path, report.to_json(result, fail_on).encode())
    if junit_path:
        _write(junit_path, report.to_junit(result, fail_on))
    if fmt == "json":
        click.echo(report.to_json(result, fail_on), nl=False)
    else:
        click.echo("\n".join(report.render_text(result, verbose=verbose)))
    sys.exit(result.exit_code(fail_on))


# -- the Windows verdict inside other commands' reports (run, replay) ---------------------------------------------

def verdict_for_run(profile, fingerprint, label: str = "the booted guest"):
    """The Windows verdict of a run whose profile names a Windows guest OS (``guest.os = "windows-…"``), else None:
    the profile's source platform against what the guest saw."""
    from guestcompat.detection.windows import sources, verdict, view

    os_name = _os_of(profile)
    if os_name is None:
        return None
    version, _ = windows_version(None, os_name)
    return verdict.compare(view.build_view(sources.from_profile(profile), version),
                           view.build_view(sources.from_fingerprint(fingerprint, label), version))


def verdict_for_replay(captures: tuple[Path, ...], facts, fingerprint, label: str = "the replay"):
    """The Windows verdict of a replay whose capture is a Windows-side one (pnputil, WMI, …), else None:
    the capture (its real instance ids kept) against what the replayed guest saw."""
    from guestcompat.detection.windows import sources, verdict, view
    from guestcompat.profiles.importers import windows_import

    if facts is None or not any(form.startswith(windows_import.FORM) for _, form in facts.sources):
        return None
    imported = windows_import.import_windows_files(captures, "replay/windows")
    source = windows_import.overlay(sources.from_profile(imported.profile), imported, ", ".join(p.name for p in captures))
    version, _ = windows_version(None, imported.capture.windows_version)
    return verdict.compare(view.build_view(source, version),
                           view.build_view(sources.from_fingerprint(fingerprint, label), version))


def report_lines(result) -> list[str]:
    """The verdict as the lines run/replay append to their own report."""
    from guestcompat.detection.windows import report

    return ["", "Windows view of this move (guestcompat windows):"] + ["  " + line for line in
                                                                      report.render_text(result)]


def verdict_for_baseline(profile_name: str, baseline: Path, fingerprint):
    """The Windows verdict of a changed baseline (stored fingerprint → new boot) when the profile names a
    Windows guest OS, else None."""
    from guestcompat.detection.windows import sources, verdict, view
    from guestcompat.harness.baseline import load_fingerprint
    from guestcompat.profiles.loader import load

    os_name = _os_of(load(profile_name))
    if os_name is None:
        return None
    version, _ = windows_version(None, os_name)
    before = sources.from_fingerprint(load_fingerprint(baseline), f"baseline {baseline}")
    return verdict.compare(view.build_view(before, version),
                           view.build_view(sources.from_fingerprint(fingerprint, "this boot"), version))
