"""Render a run's outcome for a terminal: failures first, then known deviations, then the verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from guestcompat.harness.compare import Status

if TYPE_CHECKING:
    from guestcompat.harness.run import RunOutcome


def render_verdict(console: Console, outcome: "RunOutcome", *, verbose: bool = False) -> None:
    compiled = outcome.compiled
    console.print(f"[bold]{escape(compiled.profile.name)}[/] on {compiled.target} "
                  f"(kernel {escape(outcome.image.kernel_version)}): fingerprint after "
                  f"{outcome.boot.seconds_to_document:.2f} s")
    failures = [c for c in outcome.checks if c.status is Status.FAIL]
    if failures:
        console.print(f"\n[red bold]mismatches ({len(failures)})[/]")
        for check in failures:
            console.print(f"  [red]✗[/] {escape(check.line())}")
            if check.note:
                console.print(f"      {escape(check.note)}", style="dim")
    deviations = [c for c in outcome.checks if c.status is Status.DEVIATION]
    if deviations:
        console.print(f"\n[yellow bold]known deviations ({len(deviations)})[/] (listed in the fidelity report)")
        by_reason: dict[str, list] = {}
        for check in deviations:
            by_reason.setdefault(check.note, []).append(check)
        for reason, checks in by_reason.items():
            console.print(f"  [yellow]~[/] {escape(reason)}")
            shown = checks if verbose else checks[:4]
            for check in shown:
                console.print(f"      {escape(check.line())}", style="dim")
            if len(checks) > len(shown):
                console.print(f"      … and {len(checks) - len(shown)} more (--verbose lists them)", style="dim")
    if verbose:
        console.print("\n[green bold]passed[/]")
        for check in outcome.checks:
            if check.status is Status.PASS:
                console.print(f"  [green]✓[/] {escape(check.line())}")
    counts = outcome.counts()
    verdict = "[green bold]PASS[/]" if outcome.passed else "[red bold]MISMATCH[/]"
    console.print(f"\n{verdict}: {counts['pass']} passed, {counts['deviation']} known deviations, "
                  f"{counts['fail']} mismatches")
