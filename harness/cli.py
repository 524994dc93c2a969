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

import click
from rich.console import Console
from rich.markup import escape as markup_escape

from guestcompat.emulation.target import Target
from guestcompat.errors import GuestcompatError

EXIT_PASS, EXIT_MISMATCH, EXIT_ERROR = 0, 1, 2

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


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


DEFAULT_ARCH = "x86_64"


def make_target(arch: str | None, machine: str | None, accel: str, qemu_binary: str | None,
                profile_arch: str | None = None) -> Target:
    """The target. Without --arch: the profile's ``platform.arch``, else x86_64; without
    --machine: the architecture strategy's default machine."""
    from guestcompat.emulation import arches

    arch = arch or profile_arch or DEFAULT_ARCH
    strategy = arches.get(arch)  # unknown architecture: a clear error naming the known ones
    return Target(arch=arch, machine=machine or strategy.machines[0], accel=accel, qemu_binary=qemu_binary)


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
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def compile_cmd(profile: str, arch: str | None, machine: str | None, accel: str, qemu_binary: str | None, fmt: str) -> None:
    """Print the QEMU argv for PROFILE and its fidelity report."""
    from guestcompat.emulation.compiler import compile_profile
    from guestcompat.emulation.report import argv_lines, artefact_lines, blocked_lines, fidelity_lines, to_json
    from guestcompat.profiles.loader import load

    loaded = load(profile)
    compiled = compile_profile(loaded, make_target(arch, machine, accel, qemu_binary, loaded.platform.arch))
    if fmt == "json":
        click.echo(json.dumps(to_json(compiled), indent=2))
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


@cli.command("run")
@click.argument("profile")
@target_options
@click.option("--timeout", default=120.0, show_default=True, help="seconds to wait for the guest's fingerprint")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the verdict, checks and fingerprint as JSON")
@click.option("--verbose", "-v", is_flag=True, help="list every check, not only deviations and failures")
@click.option("--console", "console_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="save the guest console to this file")
def run_cmd(profile: str, arch: str | None, machine: str | None, accel: str, qemu_binary: str | None, timeout: float,
            json_path: Path | None, verbose: bool, console_path: Path | None) -> None:
    """Boot PROFILE in a real guest and compare what it sees with the profile."""
    from guestcompat.harness.run import run_profile
    from guestcompat.harness.verdict import render_verdict
    from guestcompat.profiles.loader import load

    target = make_target(arch, machine, accel, qemu_binary, load(profile).platform.arch)
    with progress_reporter(profile) as progress:
        outcome = run_profile(profile, target, timeout=timeout, progress=progress)
    if console_path:
        console_path.write_text("\n".join(outcome.boot.console) + "\n")
    render_verdict(out, outcome, verbose=verbose)
    if json_path:
        _write_atomic(json_path, json.dumps(outcome.to_json(), indent=2, sort_keys=True) + "\n")
    sys.exit(EXIT_PASS if outcome.passed else EXIT_MISMATCH)


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


@cli.command("capabilities")
@click.option("--arch", default=DEFAULT_ARCH, show_default=True, help="architecture whose QEMU binary to ask")
@click.option("--qemu", "qemu_binary", default=None, help="QEMU binary (default: the architecture's)")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--no-cache", is_flag=True, help="probe the binary even when its answer is cached")
def capabilities_cmd(arch: str, qemu_binary: str | None, fmt: str, no_cache: bool) -> None:
    """Print what this host's QEMU can present: version, machines, catalogue devices, CPU models."""
    from guestcompat.emulation import arches
    from guestcompat.emulation.capabilities import capabilities_for
    from guestcompat.emulation.capreport import text_lines, to_json
    from guestcompat.profiles.catalog import load_catalog

    binary = arches.get(arch).binary(Target(arch=arch, qemu_binary=qemu_binary))
    caps = capabilities_for(binary, use_cache=not no_cache)
    if fmt == "json":
        click.echo(json.dumps(to_json(caps, load_catalog(), arch), indent=2))
    else:
        click.echo("\n".join(text_lines(caps, load_catalog(), arch)))


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


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (CI timeouts, `kill`) unwinds like Ctrl-C, so the runner's cleanup
    kills QEMU's process group and removes its temp dir instead of orphaning them."""
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err.print("interrupted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_ERROR)
    except GuestcompatError as exc:
        err.print(f"[red]error:[/] {markup_escape(str(exc))}")
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # an internal bug: say so, briefly
        if os.environ.get("GUESTCOMPAT_DEBUG"):
            traceback.print_exc()
        err.print(f"internal error: {type(exc).__name__}: {exc} (GUESTCOMPAT_DEBUG=1 shows the traceback)")
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
