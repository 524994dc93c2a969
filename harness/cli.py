"""The ``guestcompat`` command line.

Every failure a user can cause or meet reaches them as one ``error:`` message
and exit code 2 (a mismatch is exit 1, a pass exit 0); a traceback is only
printed for internal bugs when ``GUESTCOMPAT_DEBUG=1``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape as markup_escape

from guestcompat.emulation.target import Target
from guestcompat.errors import GuestcompatError

if TYPE_CHECKING:
    from guestcompat.harness.run import RunOutcome
    from guestcompat.profiles.importers.result import ImportResult

EXIT_PASS, EXIT_MISMATCH, EXIT_ERROR = 0, 1, 2

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
SCREENSHOT_HELP = ("keep the guest's VGA screen at the end of the boot (or at its failure) in this PNG file  "
                   "[default: a new file in ~/.cache/guestcompat/screens/]")


@contextlib.contextmanager
def progress_reporter(label: str) -> Iterator[Callable[[str], None]]:
    """A callable for progress messages: a live status line on a terminal,
    one plain line per message otherwise (CI logs keep the history)."""
    if err.is_terminal:
        with err.status(f"[bold]{markup_escape(label)}[/]: preparing…") as status:
            yield lambda msg: status.update(f"[bold]{markup_escape(label)}[/]: {markup_escape(msg)}")
    else:
        yield lambda msg: print(f"{label}: {msg}", file=sys.stderr, flush=True)


def target_options(func):
    func = click.option("--arch", default=None,
                        help="guest architecture  [default: the profile's platform.arch, else x86_64]")(func)
    func = click.option("--machine", default=None,
                        help="QEMU machine type  [default: the architecture's first, x86_64: pc, ppc64: pseries]")(func)
    func = click.option("--accel", default="tcg", show_default=True, help="accelerator (kvm is opt-in)")(func)
    func = click.option("--qemu", "qemu_binary", default=None, help="QEMU binary (default: the architecture's)")(func)
    return func


def make_target(arch: str | None, machine: str | None, accel: str, qemu_binary: str | None,
                profile_arch: str | None = None) -> Target:
    """The target of the target options (``arches.resolve_target``: --arch, else the profile's
    ``platform.arch``, else the default architecture; --machine, else the strategy's default)."""
    from guestcompat.emulation import arches

    return arches.resolve_target(profile_arch, arch=arch, machine=machine, accel=accel, qemu_binary=qemu_binary)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="guestcompat")
def cli() -> None:
    """Will this guest see the same machine after the move?

    Compile hardware profiles into QEMU configurations and verify them by
    booting real guests.
    """


@cli.command("profiles")
def profiles_cmd() -> None:
    """List the profiles with their lineage."""
    from guestcompat.profiles.loader import list_profiles, load

    for source in list_profiles():
        profile = load(source.name)
        lineage = " → ".join(profile.lineage)
        tag = " (abstract)" if profile.abstract else ""
        out.print(f"{source.name}{tag}\n    {profile.description}\n    lineage: {lineage}", markup=False)


@cli.command("compile")
@click.argument("profile")
@target_options
@click.option("--format", "fmt", type=click.Choice(["text", "json", "libvirt"]), default="text", show_default=True,
              help="libvirt: the domain XML (run-time paths as @placeholders)")
@click.option("--validate", is_flag=True, help="with --format libvirt: define the domain in a throwaway embedded "
                                               "libvirt and cross-check its domain capabilities")
def compile_cmd(profile: str, arch: str | None, machine: str | None, accel: str, qemu_binary: str | None, fmt: str,
                validate: bool) -> None:
    """Print the QEMU argv for PROFILE and its fidelity report (or its libvirt domain XML)."""
    from guestcompat.emulation.compiler import compile_profile
    from guestcompat.emulation.report import argv_lines, artefact_lines, blocked_lines, fidelity_lines, to_json
    from guestcompat.profiles.loader import load

    loaded = load(profile)
    compiled = compile_profile(loaded, make_target(arch, machine, accel, qemu_binary, loaded.platform.arch))
    if fmt == "json":
        click.echo(json.dumps(to_json(compiled), indent=2))
        return
    if fmt == "libvirt":
        from guestcompat.emulation.libvirt_xml import render, report_lines

        domain = render(compiled)
        click.echo(domain.xml, nl=False)
        err.print("\n".join(report_lines(domain)), markup=False)
        if validate:
            from guestcompat.harness.libvirt_validate import validate as libvirt_validate

            result = libvirt_validate(compiled)
            err.print(f"libvirt accepts the domain (machine {result.machine}; checked: {', '.join(result.checks)})",
                      markup=False)
        return
    click.echo(" \\\n    ".join(argv_lines(compiled)))
    if compiled.artefacts:
        click.echo()
        click.echo("\n".join(artefact_lines(compiled)))
    click.echo()
    click.echo("\n".join(fidelity_lines(compiled)))
    if compiled.blocked:
        click.echo()
        click.echo("\n".join(blocked_lines(compiled)))


@cli.command("fidelity")
@click.argument("profiles", nargs=-1)
@click.option("--markdown", is_flag=True, help="a Markdown page (docs/fidelity.md is this output)")
def fidelity_cmd(profiles: tuple[str, ...], markdown: bool) -> None:
    """Fidelity across PROFILES (default: every concrete profile), each deviation reason once with the
    profiles it applies to; each profile is compiled for its own architecture's default target."""
    from guestcompat.emulation.compiler import compile_profile
    from guestcompat.emulation.fidelity_summary import markdown_lines, summarize, text_lines
    from guestcompat.profiles.loader import list_profiles, load

    loaded = [load(name) for name in profiles] or [p for p in (load(s.name) for s in list_profiles())
                                                     if not p.abstract]
    summary = summarize([compile_profile(p, make_target(None, None, "tcg", None, p.platform.arch))
                         for p in loaded])
    command = "guestcompat fidelity --markdown" + "".join(f" {name}" for name in profiles)
    click.echo("\n".join(markdown_lines(summary, command) if markdown else text_lines(summary)))


def _finish_run(outcome: RunOutcome, console_path: Path | None, json_path: Path | None, verbose: bool) -> None:
    """What `run` and `boot-imported` do with a finished boot: save the console, print the verdict,
    write the JSON, exit 0 pass / 1 mismatch."""
    from guestcompat.harness.verdict import render_verdict

    if console_path:
        console_path.write_text("\n".join(outcome.boot.console) + "\n")
    render_verdict(out, outcome, verbose=verbose)
    if outcome.boot.screenshot is not None:
        err.print(f"the guest's screen at the end: {outcome.boot.screenshot}", markup=False, highlight=False)
    elif outcome.boot.no_screenshot:
        err.print(f"no screenshot: {outcome.boot.no_screenshot}", markup=False, highlight=False)
    from guestcompat.harness.windows_cli import report_lines, verdict_for_run  # issue 23: Windows guest OSes

    windows = verdict_for_run(outcome.compiled.profile, outcome.fingerprint)
    if windows is not None:
        out.print("\n".join(report_lines(windows)), markup=False)
    if json_path:
        _write_atomic(json_path, json.dumps(outcome.to_json(), indent=2, sort_keys=True) + "\n")
    sys.exit(EXIT_PASS if outcome.passed else EXIT_MISMATCH)


def guestinfo_options(func):
    """--guestinfo KEY=VALUE and --guestinfo-file KEY=PATH (profiles/guestinfo.py)."""
    func = click.option("--guestinfo-file", "guestinfo_files", multiple=True, metavar="KEY=PATH",
                        help="a guestinfo key whose value is a file's text (cloud-init metadata, userdata)")(func)
    return click.option("--guestinfo", "guestinfo", multiple=True, metavar="KEY=VALUE",
                        help="a guestinfo key the guest reads over the backdoor RPC channel (repeatable; adds to "
                             "the profile's [guestinfo])")(func)


@cli.command("run")
@click.argument("profile")
@target_options
@click.option("--timeout", default=120.0, show_default=True, help="seconds to wait for the guest's fingerprint")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the verdict, checks and fingerprint as JSON")
@click.option("--verbose", "-v", is_flag=True, help="list every check, not only deviations and failures")
@click.option("--console", "console_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="save the guest console to this file")
@click.option("--backend", type=click.Choice(["qemu", "libvirt"]), default="qemu", show_default=True,
              help="run the QEMU argv directly, or the libvirt domain XML through libvirt")
@click.option("--uri", default=None, help="libvirt URI for --backend libvirt  [default: an embedded driver "
                                          "(qemu:///embed) in a throwaway root]; the console is read from a file "
                                          "on this host, so the URI must name a local driver (qemu:///system)")
@click.option("--screenshot", "screenshot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=SCREENSHOT_HELP)
@guestinfo_options
def run_cmd(profile: str, arch: str | None, machine: str | None, accel: str, qemu_binary: str | None, timeout: float,
            json_path: Path | None, verbose: bool, console_path: Path | None, backend: str, uri: str | None,
            screenshot_path: Path | None, guestinfo: tuple[str, ...], guestinfo_files: tuple[str, ...]) -> None:
    """Boot PROFILE in a real guest and compare what it sees with the profile."""
    from guestcompat.harness.run import run_profile
    from guestcompat.profiles.guestinfo import parse
    from guestcompat.profiles.loader import load

    extra = parse(guestinfo, guestinfo_files)
    target = make_target(arch, machine, accel, qemu_binary, load(profile).platform.arch)
    if screenshot_path is not None and backend == "libvirt":
        raise GuestcompatError("--screenshot is taken over QEMU's monitor: it needs --backend qemu")
    with progress_reporter(profile) as progress:
        outcome = run_profile(profile, target, timeout=timeout, progress=progress, backend=backend, uri=uri,
                              screenshot=screenshot_path, guestinfo=extra)
    _finish_run(outcome, console_path, json_path, verbose)


@cli.command("migrate")
@click.argument("profile")
@target_options
@click.option("--dest-qemu", "dest_qemu", default=None,
              help="QEMU binary or build (10.0, patched, ...) of the destination  [default: the source's]")
@click.option("--timeout", default=120.0, show_default=True,
              help="seconds to wait for each step (each fingerprint, the migration)")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the timings, query-migrate figures, verdict and both fingerprints as JSON")
def migrate_cmd(profile: str, arch: str | None, machine: str | None, accel: str, qemu_binary: str | None,
                dest_qemu: str | None, timeout: float, json_path: Path | None) -> None:
    """Live-migrate PROFILE's guest to a second QEMU and check it sees the same machine:
    exit 0 unchanged, 1 changed, 2 error or blocked."""
    from guestcompat.harness.migrate import migrate_profile
    from guestcompat.harness.migrate_report import report_lines
    from guestcompat.profiles.loader import load

    target = make_target(arch, machine, accel, qemu_binary, load(profile).platform.arch)
    with progress_reporter(profile) as progress:
        outcome = migrate_profile(profile, target, dest_qemu=dest_qemu, timeout=timeout, progress=progress)
    out.print("\n".join(report_lines(outcome)), markup=False)
    if json_path:
        _write_atomic(json_path, json.dumps(outcome.to_json(), indent=2, sort_keys=True) + "\n")
    sys.exit(EXIT_PASS if outcome.unchanged else EXIT_MISMATCH)


@cli.command("boot-imported")
@click.argument("vmx_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@target_options
@click.option("--qemu-defaults", is_flag=True,
              help="counter-case: boot the same disk on QEMU's default pc machine (e1000, IDE), judged against "
                   "the same imported profile")
@click.option("--timeout", default=300.0, show_default=True, help="seconds to wait for the fingerprint "
                                                                   "(a systemd guest under TCG)")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the outcome (verdict, checks, fingerprint) as JSON; `guestcompat diff` reads two")
@click.option("--console", "console_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="save the guest console to this file")
@click.option("-v", "--verbose", is_flag=True, help="list every check, not only deviations and mismatches")
@click.option("--screenshot", "screenshot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=SCREENSHOT_HELP)
@guestinfo_options
def boot_imported_cmd(vmx_file: Path, arch: str | None, machine: str | None, accel: str, qemu_binary: str | None,
                      qemu_defaults: bool, timeout: float, json_path: Path | None, console_path: Path | None,
                      verbose: bool, screenshot_path: Path | None, guestinfo: tuple[str, ...],
                      guestinfo_files: tuple[str, ...]) -> None:
    """Import a VMware VM (.vmx + its VMDK) and boot it from its own disk: the disk's kernel, initrd and
    root file system on the imported controller; compare what it sees with the imported profile."""
    from guestcompat.harness.imported import run_imported
    from guestcompat.profiles.guestinfo import parse

    extra = parse(guestinfo, guestinfo_files)
    target = make_target(arch, machine, accel, qemu_binary)
    with progress_reporter(vmx_file.name) as progress:
        outcome = run_imported(vmx_file, target=target, qemu_defaults=qemu_defaults, timeout=timeout,
                               progress=progress, screenshot=screenshot_path, guestinfo=extra)
    _finish_run(outcome, console_path, json_path, verbose)


@cli.command("matrix")
@click.argument("profiles", nargs=-1)
@click.option("--arch", "arch_names", multiple=True,
              help="architectures (repeatable)  [default: each profile's platform.arch, else x86_64]")
@click.option("--qemu", "qemu_binaries", multiple=True, help="QEMU binaries (repeatable)  [default: the architecture's]")
@click.option("--accel", "accels", multiple=True, help="accelerators (repeatable)  [default: tcg]")
@click.option("--jobs", "-j", type=int, default=None, help="runs at a time  [default: one per core]")
@click.option("--mode", type=click.Choice(["async", "process"]), default="async", show_default=True,
              help="run the guests as asyncio tasks in this process or in a process pool")
@click.option("--libvirt", "hosts", multiple=True, metavar="URI",
              help="boot through libvirt at URI (repeatable: the cells are spread over the hosts, each with "
                   "its own pool of --jobs-per-host workers)")
@click.option("--jobs-per-host", type=int, default=None,
              help="with --libvirt: runs at a time on each host  [default: the host's CPUs, as far as its free "
                   "memory holds the guests; 1 for an embedded root]")
@click.option("--timeout", default=120.0, show_default=True, help="seconds to wait for each guest's fingerprint")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write a JUnit XML report (one testcase per run)")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write a JSON report")
def matrix_cmd(profiles: tuple[str, ...], arch_names: tuple[str, ...], qemu_binaries: tuple[str, ...],
               accels: tuple[str, ...], jobs: int | None, mode: str, hosts: tuple[str, ...],
               jobs_per_host: int | None, timeout: float, junit_path: Path | None,
               json_path: Path | None) -> None:
    """Run PROFILES (default: every concrete profile) × architectures × QEMU binaries × accelerators
    in parallel. Combinations that cannot work are skipped with a reason. Exit 0 all pass, 1 any
    mismatch, 2 any error."""
    from guestcompat.errors import GuestcompatError as _Error
    from guestcompat.harness.matrix import run_matrix
    from guestcompat.harness.matrix_plan import plan
    from guestcompat.harness.matrix_report import (LiveReporter, PlainReporter, json_text, junit_bytes,
                                                   summary_table)

    if hosts and jobs is not None:
        raise _Error("--jobs applies to direct runs; with --libvirt, say --jobs-per-host")
    if jobs_per_host is not None and not hosts:
        raise _Error("--jobs-per-host needs at least one --libvirt URI")
    planned = plan(profiles, arch_names, qemu_binaries, accels or ("tcg",))
    jobs = jobs_per_host if hosts else jobs
    if err.is_terminal:
        with LiveReporter(err) as reporter:
            matrix = run_matrix(planned, reporter, jobs=jobs, timeout=timeout, mode=mode, hosts=hosts)
    else:
        matrix = run_matrix(planned, PlainReporter(), jobs=jobs, timeout=timeout, mode=mode, hosts=hosts)
    # A CI log is not 80 columns wide: without a terminal, print the table at a width that fits the reasons.
    (out if out.is_terminal else Console(highlight=False, width=220)).print(summary_table(matrix))
    if junit_path:
        _write_atomic_bytes(junit_path, junit_bytes(matrix))
    if json_path:
        _write_atomic(json_path, json_text(matrix))
    if all(r.verdict == "skipped" for r in matrix.results):
        raise _Error("no combination of the matrix can run (every cell was skipped; the table says why)")
    sys.exit(matrix.exit_code())


@cli.group("fleet")
def fleet_group() -> None:
    """What guestcompat leaves on libvirt hosts (matrix --libvirt)."""


@fleet_group.command("clean")
@click.argument("uris", nargs=-1, required=True, metavar="URI...")
def fleet_clean(uris: tuple[str, ...]) -> None:
    """Destroy and undefine every guestcompat-* domain on each host (also those a host still runs after it
    went away mid-run), delete the guestcompat storage pool's volumes (the uploaded kernels, initramfs and
    tables, scratch disks) and the pool. Exit 0 when every host was cleaned, 2 when one could not be."""
    from guestcompat.errors import GuestcompatError as _Error
    from guestcompat.harness.libvirt_embed import connect
    from guestcompat.harness.libvirt_storage import clean

    failed = []
    for uri in uris:
        try:
            with connect(uri) as conn:
                done = clean(conn.conn, conn.uri)
        except _Error as exc:
            err.print(f"{uri}: {exc}", markup=False)
            failed.append(uri)
            continue
        pool = "removed the guestcompat pool" if done.pool else "no guestcompat pool"
        out.print(f"{uri}: {len(done.domains)} domains destroyed and undefined, {len(done.volumes)} volumes "
                  f"deleted, {pool}", markup=False)
    if failed:
        raise _Error(f"could not clean {len(failed)} of {len(uris)} hosts: {', '.join(failed)}")


@cli.command("interfaces")
@click.argument("combinations", nargs=-1)
@click.option("--markdown", is_flag=True, help="print the table as Markdown (docs/multi-interface.md)")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the table to this file instead of stdout")
@click.option("--jobs", "-j", type=int, default=2, show_default=True, help="guests booted at a time")
@click.option("--timeout", default=240.0, show_default=True, help="seconds to wait for each guest's fingerprint")
def interfaces_cmd(combinations: tuple[str, ...], markdown: bool, output: Path | None, jobs: int,
                   timeout: float) -> None:
    """Boot the multi-interface combinations (VMware, KVM, Hyper-V, Xen under TCG) and tabulate what each
    detector and its model conclude; exit 1 when a model disagrees with its real tool."""
    from guestcompat.harness.interfaces import build_table, render_markdown, render_text

    if jobs < 1:
        raise GuestcompatError(f"--jobs must be at least 1, not {jobs}")
    table = build_table(combinations, jobs=jobs, timeout=timeout,
                        progress=lambda msg: click.echo(f"  {msg}", err=True))
    text = render_markdown(table) if markdown else render_text(table)
    if output is not None:
        output.write_text(text)
    else:
        click.echo(text, nl=False)
    if any(row.error for row in table.combinations):
        sys.exit(2)
    if any(row.disagreeing for row in table.combinations):
        sys.exit(1)


@cli.command("show")
@click.argument("profile")
@target_options
def show_cmd(profile: str, arch: str, machine: str, accel: str, qemu_binary: str | None) -> None:
    """Print the resolved PROFILE and the guest's predicted PCI tree (ids, slots, NIC names), marking
    where QEMU presents something else."""
    from guestcompat.emulation.compiler import compile_profile
    from guestcompat.harness.show import render
    from guestcompat.profiles.loader import load

    loaded = load(profile)
    compiled = compile_profile(loaded, make_target(arch, machine, accel, qemu_binary, loaded.platform.arch))
    out.print("\n".join(render(compiled)), markup=False)


@cli.command("capture")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the script to this file (default: stdout)")
@click.option("--windows", "windows", is_flag=True,
              help="the PowerShell script for a Windows source VM instead (gc-capture.ps1; issue 23)")
def capture_cmd(output: Path | None, windows: bool) -> None:
    """Write the standalone capture script to run as root inside the source VM:
    `sh gc-capture.sh > capture.json` prints the probe document as plain JSON
    (then `guestcompat replay capture.json` or `guestcompat import capture --fingerprint capture.json`)."""
    from guestcompat.detection.capture_script import render_capture_script
    from guestcompat.harness.windows_cli import windows_capture_script

    text = windows_capture_script() if windows else render_capture_script()
    if output is None:
        click.echo(text, nl=False)
        return
    _write_atomic(output, text)
    output.chmod(0o755)
    err.print(f"wrote {output}: copy it into the source VM and run " + (
        f"`powershell -NoProfile -ExecutionPolicy Bypass -File {output.name} -Output capture.txt`" if windows
        else f"`sh {output.name} > capture.json` as root"), markup=False)


@cli.group("import")
def import_group() -> None:
    """Write a profile from what a source VM comes with (.vmx, .ovf, lspci/dmidecode captures)."""


def descriptor_import_options(kind: str, disks_help: str):
    """The options `import vmx` and `import ovf` share: where the profile goes and what becomes of the
    VMDKs the descriptor names."""
    def decorate(func):
        for option in reversed([
            click.option("--name", default=None, help=f"profile name (default: the {kind} file's stem under imported/)"),
            click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
                         help="where to write the TOML (default: ./profiles/<name>.toml)"),
            click.option("--disks", "disk_mode", type=click.Choice(["attach", "convert", "blank"]), default="attach",
                         show_default=True, help=disks_help),
            click.option("--disk-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                         help="where --disks convert writes the images  [default: <output>.disks/ next to the TOML]"),
            click.option("--disk-format", type=click.Choice(["qcow2", "raw"]), default="qcow2", show_default=True,
                         help="format of converted disks"),
            click.option("--allow-outside-disks", is_flag=True,
                         help="attach or convert disk files outside the descriptor's directory (absolute or ../ "
                              "fileName, VMDK extents elsewhere); refused by default"),
        ]):
            func = option(func)
        return func
    return decorate


def _import_descriptor(source: Path, name: str | None, output: Path | None, disk_mode: str, disk_dir: Path | None,
                       disk_format: str, allow_outside_disks: bool, importer, raw: bool = False) -> None:
    from guestcompat.profiles.importers.vmx import DiskPolicy

    name = name or f"imported/{source.stem}"
    output = output or Path("profiles") / f"{name}.toml"
    policy = DiskPolicy(mode=disk_mode, base_dir=source.parent,
                        disk_dir=disk_dir or output.with_name(output.stem + ".disks"), out_format=disk_format,
                        allow_outside=allow_outside_disks)
    if raw:   # the importer decodes it (a .vmx names its own .encoding)
        from guestcompat.profiles.importers.vmx_text import read_vmx_file

        content: str | bytes = read_vmx_file(source)
    else:
        content = source.read_text(errors="replace")
    result = importer(content, name, str(source), disks=policy)
    _write_imported(result, output, source.name)
    for line in result.inferred:   # placements predicted by VMware's first power-on rule
        out.print(f"  inferred: {line}", markup=False)


@import_group.command("vmx")
@click.argument("vmx_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@descriptor_import_options(".vmx", "the VMDKs the .vmx names (scsiN:M.fileName): attach them as they are "
                                   "(read-only), convert them with qemu-img, or use blank disks")
@click.option("--product", type=click.Choice(["esxi", "esxi-acpi", "desktop"]), default=None,
              help="the VMware product that runs the VM, for devices without pciSlotNumber (placed where that "
                   "product puts them at first power-on); default: told from the .vmx")
def import_vmx_cmd(vmx_file: Path, name: str | None, output: Path | None, disk_mode: str, disk_dir: Path | None,
                   disk_format: str, allow_outside_disks: bool, product: str | None) -> None:
    """Import a VMware .vmx into a profile, report what cannot be reproduced, and check it compiles."""
    import functools

    from guestcompat.profiles.importers.vmx import import_vmx

    _import_descriptor(vmx_file, name, output, disk_mode, disk_dir, disk_format, allow_outside_disks,
                       functools.partial(import_vmx, product=product), raw=True)


@import_group.command("ovf")
@click.argument("ovf_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@descriptor_import_options(".ovf", "the VMDKs the OVF references: attach, convert with qemu-img, or blank disks")
def import_ovf_cmd(ovf_file: Path, name: str | None, output: Path | None, disk_mode: str, disk_dir: Path | None,
                   disk_format: str, allow_outside_disks: bool) -> None:
    """Import a VMware OVF descriptor (.ovf) into a profile, like a .vmx."""
    from guestcompat.profiles.importers.ovf import import_ovf

    _import_descriptor(ovf_file, name, output, disk_mode, disk_dir, disk_format, allow_outside_disks, import_ovf)


def _write_imported(result: ImportResult, output: Path | None, sources: str) -> None:
    """Write an imported profile atomically, list what is not reproduced, and prove the file compiles."""
    import tomllib

    from guestcompat.emulation.compiler import compile_profile
    from guestcompat.profiles.loader import load_mapping

    name, notes = result.name, result.notes
    output = output or Path("profiles") / f"{name}.toml"
    if not str(output).endswith(f"{name}.toml"):
        raise click.UsageError(f"--output must end with {name}.toml so the profile can be found by its name")
    header = f"# Imported by guestcompat from {sources}. Review before use.\n"
    listed = "".join(f"# not reproduced: {note}\n" for note in notes) + \
        "".join(f"# inferred: {line}\n" for line in result.inferred)
    text = header + listed + result.toml()
    # Validate (load + compile) what is about to be written first: a profile that does not load or
    # compile is never left at --output.
    compiled = compile_profile(load_mapping(tomllib.loads(text), name, origin=output))
    output.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(output, text)
    out.print(f"wrote {output}", markup=False)
    for note in notes:
        out.print(f"  not reproduced: {note}", markup=False)
    counts = compiled.report.counts()
    out.print(f"{name} compiles for {compiled.target}: {counts['exact']} exact, {counts['approximate']} approximate, "
              f"{counts['unsupported']} unsupported (`guestcompat compile {name}` shows the report)", markup=False)


@import_group.command("capture")
@click.argument("captures", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--lspci", "lspci_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="lspci output captured in the source VM: -nnmmv (best), -nn, -vvv or -tv")
@click.option("--dmidecode", "dmidecode_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="`dmidecode` output captured in the source VM")
@click.option("--fingerprint", "capture_json", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="the JSON the capture script (`guestcompat capture`) printed in the source VM")
@click.option("--name", required=True, help="profile name, e.g. imported/web01")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="where to write the TOML (default: ./profiles/<name>.toml)")
def import_capture_cmd(captures: tuple[Path, ...], lspci_file: Path | None, dmidecode_file: Path | None,
                       capture_json: Path | None, name: str, output: Path | None) -> None:
    """Import what was captured inside the source VM into a profile: CAPTURES are text files in any form
    `guestcompat replay` reads (lspci in any mode, lshw, dmidecode, the DMI banner, ip link,
    ls -l /sys/class/net, dmesg; several outputs in one file), or the capture script's JSON."""
    from guestcompat.harness.replay import load_sources
    from guestcompat.profiles.importers.capture import import_capture, import_facts

    files = tuple(p for p in (capture_json, lspci_file, dmidecode_file, *captures) if p)
    if capture_json and len(files) > 1:
        raise click.UsageError("--fingerprint already holds the lspci and dmidecode output; give it alone")
    if not files:
        raise click.UsageError("give capture files (or --lspci and/or --dmidecode), or --fingerprint")
    source = load_sources(files)
    result = (import_facts(name, source.facts, label=source.label) if source.facts is not None else
              import_capture(name, lspci=source.lspci, dmidecode=source.dmidecode, lspci_source=source.label))
    _write_imported(result, output, source.label)
    for line in result.inferred:
        out.print(f"  inferred: {line}", markup=False)


@cli.command("replay")
@click.argument("captures", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@target_options
@click.option("--image", "disk_image", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="a disk image (raw, qcow2, VMDK) to attach as unit 0 of the first storage controller")
@click.option("--timeout", default=240.0, show_default=True, help="seconds to wait for the guest's fingerprint")
@click.option("--min-score", default=100.0, show_default=True,
              help="exit 1 when any category scores below this percentage")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the scores, every deviation, the imported profile and the booted fingerprint as JSON")
def replay_cmd(captures: tuple[Path, ...], arch: str | None, machine: str | None, accel: str,
               qemu_binary: str | None, disk_image: Path | None, timeout: float, min_score: float,
               json_path: Path | None) -> None:
    """Import CAPTURES (the capture script's JSON, or one VM's text captures in any form `import capture`
    reads: lspci, lshw, dmidecode, the DMI banner, ip link, ls -l /sys/class/net, dmesg),
    boot the result and score per category how faithfully the booted guest reproduces the source,
    listing every deviation. Exit 0 all categories at or above --min-score, 1 below, 2 error."""
    from guestcompat.harness.replay import load_sources, replay

    source = load_sources(captures)
    with progress_reporter(f"replay {source.label}") as progress:
        result = replay(source, make_target(arch, machine, accel, qemu_binary), disk_image=disk_image,
                        timeout=timeout, progress=progress)
    comparison = result.comparison
    out.print(f"replay of {source.label}: booted in {result.seconds:.1f} s "
              f"(fingerprint {result.outcome.boot.seconds_to_document:.1f} s after launch)", markup=False)
    for score in comparison.scores:
        out.print("  " + score.line(), markup=False)
    counts = result.outcome.counts()
    out.print(f"the imported profile's own checks: {counts['pass']} passed, {counts['deviation']} known deviations, "
              f"{counts['fail']} mismatches (`guestcompat run` on the profile lists them)", markup=False)
    if comparison.deviations:
        out.print(f"deviations ({len(comparison.deviations)}):", markup=False)
        for dev in comparison.deviations:
            out.print(f"  [{dev.category}] {dev.text}", markup=False)
    for note in result.notes:
        out.print(f"  not reproduced: {note}", markup=False)
    for line in result.inferred:
        out.print(f"  inferred (not scored): {line}", markup=False)
    from guestcompat.detection.windows.report import to_json as windows_json
    from guestcompat.harness.windows_cli import report_lines, verdict_for_replay  # issue 23: Windows captures

    windows = verdict_for_replay(captures, source.facts, result.outcome.fingerprint)
    if windows is not None:
        out.print("\n".join(report_lines(windows)), markup=False)
    if json_path:
        _write_atomic(json_path, json.dumps({
            "capture": source.label,
            "scores": {s.category: {"compared": s.compared, "matched": s.matched, "score": s.score}
                       for s in comparison.scores},
            "deviations": [{"category": d.category, "subject": d.subject, "source": d.wanted, "replay": d.observed}
                           for d in comparison.deviations],
            "not_reproduced": list(result.notes), "inferred": list(result.inferred),
            "profile_toml": result.profile_toml,
            "windows": None if windows is None else json.loads(windows_json(windows)),
            "run": result.outcome.to_json()}, indent=2) + "\n")
    low = comparison.below(min_score / 100)
    if low:
        out.print("below --min-score {:g}%: {}".format(min_score, ", ".join(s.category for s in low)), markup=False)
    sys.exit(EXIT_MISMATCH if low else EXIT_PASS)


def _boot_fingerprint(profile: str, arch, machine, accel, qemu_binary, timeout: float):
    from guestcompat.harness.run import run_profile
    from guestcompat.profiles.loader import load

    target = make_target(arch, machine, accel, qemu_binary, load(profile).platform.arch)
    with progress_reporter(profile) as progress:
        return run_profile(profile, target, timeout=timeout, progress=progress).fingerprint


def _print_changes(changes) -> None:
    for change in changes:
        out.print(f"  {change.text}", markup=False)


@cli.group("baseline")
def baseline_group() -> None:
    """Record a profile's normalised fingerprint, or check a fresh boot against it."""


_dir_option = click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
                           default=Path("baselines"), show_default=True,
                           help="baselines directory (the file is <dir>/<profile>.json)")
_timeout_option = click.option("--timeout", default=120.0, show_default=True,
                               help="seconds to wait for the guest's fingerprint")


@baseline_group.command("record")
@click.argument("profile")
@_dir_option
@target_options
@_timeout_option
def baseline_record(profile: str, directory: Path, arch, machine, accel, qemu_binary, timeout: float) -> None:
    """Boot PROFILE and store its normalised fingerprint (written atomically)."""
    from guestcompat.harness.baseline import baseline_path, store

    path = baseline_path(profile, directory)
    store(_boot_fingerprint(profile, arch, machine, accel, qemu_binary, timeout), path)
    out.print(f"recorded {path}", markup=False)


@baseline_group.command("check")
@click.argument("profile")
@_dir_option
@target_options
@_timeout_option
def baseline_check(profile: str, directory: Path, arch, machine, accel, qemu_binary, timeout: float) -> None:
    """Boot PROFILE and compare with its baseline: exit 0 same, 1 changed, 2 error."""
    from guestcompat.harness.baseline import baseline_path, check

    path = baseline_path(profile, directory)
    if not path.exists():  # before booting: a missing baseline is the user's error, not a reason to wait
        raise GuestcompatError(f"no baseline at {path} (record one with `guestcompat baseline record {profile}`)")
    fingerprint = _boot_fingerprint(profile, arch, machine, accel, qemu_binary, timeout)
    result = check(fingerprint, path)
    if result.same:
        out.print(f"SAME: {profile} matches {path}", markup=False)
        sys.exit(EXIT_PASS)
    out.print(f"CHANGED: {profile} differs from {path} in {len(result.changes)} way(s):", markup=False)
    _print_changes(result.changes)
    from guestcompat.harness.windows_cli import report_lines, verdict_for_baseline  # issue 23: Windows guest OSes

    windows = verdict_for_baseline(profile, path, fingerprint)
    if windows is not None:
        out.print("\n".join(report_lines(windows)), markup=False)
    sys.exit(EXIT_MISMATCH)


@cli.command("diff")
@click.argument("before", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("after", type=click.Path(dir_okay=False, path_type=Path))
def diff_cmd(before: Path, after: Path) -> None:
    """Semantic differences between two fingerprint files (or `run --json` outputs):
    exit 0 same, 1 different, 2 error."""
    from guestcompat.harness.baseline import compare_files

    changes = compare_files(before, after)
    if not changes:
        out.print("SAME", markup=False)
        sys.exit(EXIT_PASS)
    _print_changes(changes)
    sys.exit(EXIT_MISMATCH)


from guestcompat.harness.windows_cli import windows_cmd  # noqa: E402 - issue 23, the Windows verdict of a move

cli.add_command(windows_cmd)


@cli.command("capabilities")
@click.option("--arch", default=None, help="architecture whose QEMU binary to ask  [default: x86_64]")
@click.option("--qemu", "qemu_binary", default=None, help="QEMU binary (default: the architecture's)")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--no-cache", is_flag=True, help="probe the binary even when its answer is cached")
def capabilities_cmd(arch: str | None, qemu_binary: str | None, fmt: str, no_cache: bool) -> None:
    """Print what this host's QEMU can present: version, machines, catalogue devices, CPU models."""
    from guestcompat.emulation import arches
    from guestcompat.emulation.capabilities import capabilities_for
    from guestcompat.emulation.capreport import text_lines, to_json
    from guestcompat.profiles.catalog import load_catalog

    target = arches.resolve_target(arch=arch, qemu_binary=qemu_binary)
    arch = target.arch
    binary = arches.get(arch).binary(target)
    caps = capabilities_for(binary, use_cache=not no_cache)
    firmware = arches.get(arch).firmware_builds()
    if fmt == "json":
        click.echo(json.dumps(to_json(caps, load_catalog(), arch, firmware), indent=2))
    else:
        click.echo("\n".join(text_lines(caps, load_catalog(), arch, firmware)))


@cli.group("qemu")
def qemu_group() -> None:
    """guestcompat's QEMU builds (patched: Debian's source + images/patches/; 10.0: Debian's
    bookworm-backports release, unpacked), cached outside git."""


def _build_line(build) -> str:
    made = "unpacked" if not build.patches else "built"
    return (f"{build.name}: {build.binary('x86_64')}  (QEMU {build.qemu_source}, SeaBIOS {build.seabios_source}, "
            f"{len(build.patches)} patches, {made} in {build.build_seconds:.0f} s)")


@qemu_group.command("build")
@click.argument("names", nargs=-1)
def qemu_build_cmd(names: tuple[str, ...]) -> None:
    """Build (or reuse) the QEMU builds NAMES (default: patched); print where each binary is.
    Known: see `guestcompat qemu list`."""
    from guestcompat.images import qemu_builds

    for name in names or (qemu_builds.qemu_build.DEFAULT_BUILD,):
        with progress_reporter(f"QEMU {name}") as progress:
            build = qemu_builds.ensure(name, progress)
        out.print(_build_line(build), markup=False)


@qemu_group.command("show")
@click.argument("name", default="patched")
def qemu_show_cmd(name: str) -> None:
    """Show the build NAME (default: patched) of this checkout, or say it is missing (exit 2)."""
    from guestcompat.images import qemu_builds

    if name not in qemu_builds.BUILDS:
        raise GuestcompatError(f"unknown QEMU build {name!r} (known: {', '.join(qemu_builds.BUILDS)})")
    build = qemu_builds.find(name)
    if build is None:
        err.print(f"error: the QEMU build {name} is not in the cache for this checkout; run `make setup` "
                  f"(or `guestcompat qemu build {name}`)", markup=False)
        sys.exit(EXIT_ERROR)
    out.print(f"binary: {build.binary('x86_64')}", markup=False)
    out.print(f"QEMU source {build.qemu_source}, SeaBIOS source {build.seabios_source}, "
              f"{'built' if build.patches else 'unpacked'} in {build.build_seconds:.0f} s", markup=False)
    for patch in build.patches:
        out.print(f"  {patch}", markup=False)
    for note in build.notes:
        out.print(f"  note: {note}", markup=False)


@qemu_group.command("list")
def qemu_list_cmd() -> None:
    """Every name `--qemu` takes, and whether its binary is there."""
    from guestcompat.images import qemu_builds

    release = qemu_builds.installed_release()
    out.print(f"stock{f' ({release})' if release else ''}: the machine's own QEMU", markup=False)
    for name in qemu_builds.BUILDS:
        build = qemu_builds.find(name)
        out.print(_build_line(build) if build else f"{name}: not built (`guestcompat qemu build {name}`)",
                  markup=False)


@cli.group("firmware")
def firmware_group() -> None:
    """guestcompat's OVMF (Debian's edk2 source + images/patches/edk2-*/), cached outside git."""


def _firmware_lines(build) -> list[str]:
    lines = [f"code: {build.code}", f"vars: {build.vars}",
             f"Debian edk2 source {build.source}, built in {build.build_seconds:.0f} s",
             f"capabilities: {', '.join(build.capabilities)}",
             f"defines: {' '.join(build.defines)}"]
    lines += [f"  {patch}" for patch in build.patches]
    lines += [f"  note: {note}" for note in build.notes]
    return lines


@firmware_group.command("build")
@click.option("--jobs", type=click.IntRange(1, 64), default=None, help="parallel compile jobs  [default: CPUs]")
def firmware_build_cmd(jobs: int | None) -> None:
    """Build (or reuse) guestcompat's OVMF of this checkout's series; print where it is."""
    from guestcompat.images import ovmf_build

    with progress_reporter("OVMF") as progress:
        build = ovmf_build.ensure_build(progress, jobs)
    for line in _firmware_lines(build):
        out.print(line, markup=False)


@firmware_group.command("show")
def firmware_show_cmd() -> None:
    """Show guestcompat's OVMF of this checkout, or say it is missing (exit 2)."""
    from guestcompat.images import ovmf_build

    build = ovmf_build.find_build()
    if build is None:
        err.print("error: guestcompat's OVMF is not in the cache for this checkout; run `make setup` "
                  "(or `guestcompat firmware build`); EFI profiles use Debian's OVMF meanwhile", markup=False)
        sys.exit(EXIT_ERROR)
    for line in _firmware_lines(build):
        out.print(line, markup=False)


@cli.group("images")
def images_group() -> None:
    """Build and list the guest images (cached outside git)."""


@images_group.command("build")
@click.option("--arch", "arch_names", multiple=True, help="architectures (default: all)")
def images_build(arch_names: tuple[str, ...]) -> None:
    """Build the probe images every bundled profile needs."""
    from guestcompat.harness.run import build_images_for_bundled

    with progress_reporter("images") as progress:
        images = build_images_for_bundled(arch_names, progress=progress)
    for image in images:
        out.print(f"{image.key[:12]}  {image.kernel_version}  {image.kernel.parent}")


@images_group.command("fullguest")
def images_fullguest() -> None:
    """Build (or find cached) the full Debian 12 guest (VMDK + .vmx) and print the .vmx path."""
    from guestcompat.harness.fullguest_cmd import ensure_default_full_guest

    with progress_reporter("full guest") as progress:
        guest = ensure_default_full_guest(progress)
    out.print(f"{guest.key[:12]}  {guest.kernel_version}  {guest.vmx}", markup=False)


@images_group.command("list")
def images_list() -> None:
    """List cached images."""
    from guestcompat.images.build import list_images

    for image in list_images():
        out.print(f"{image.key[:12]}  {image.kernel_version}  {image.kernel.parent}")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


#: The signal that interrupted the command (SIGINT unless SIGTERM came): the exit code is 128 + it,
#: as a shell reports a process killed by that signal (130 for Ctrl-C, 143 for SIGTERM).
_interrupted_by = signal.SIGINT


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (CI timeouts, `kill`) unwinds exactly like Ctrl-C, so the runner's cleanup
    kills QEMU's process group and removes its temp dir instead of orphaning them.

    It is handed to whatever handles SIGINT at that moment rather than raising
    KeyboardInterrupt here: inside ``asyncio.run`` that is the runner's handler, which
    cancels the main task (the ``async with`` blocks unwind and close their QEMUs), while an
    exception raised from a signal handler lands in whatever the event loop was doing (a
    subprocess-exit callback, a pipe read) and can lose it, leaving the cleanup waiting
    forever for a QEMU exit it will never hear of. Outside a loop the SIGINT handler is
    Python's own, which raises KeyboardInterrupt as before."""
    global _interrupted_by
    _interrupted_by = signal.Signals(signum)
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    elif handler != signal.SIG_IGN:  # SIG_DFL: no Python handler (embedded use); unwind anyway
        raise KeyboardInterrupt


def _interrupted() -> None:
    err.print("interrupted" + (f" by {_interrupted_by.name}" if _interrupted_by != signal.SIGINT else ""))
    sys.exit(128 + int(_interrupted_by))


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        _interrupted()
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_ERROR)
    except GuestcompatError as exc:
        err.print(f"[red]error:[/] {markup_escape(str(exc))}")
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:  # an internal bug: say so, briefly
        if os.environ.get("GUESTCOMPAT_DEBUG"):
            traceback.print_exc()
        err.print(f"internal error: {type(exc).__name__}: {exc} (GUESTCOMPAT_DEBUG=1 shows the traceback)")
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
