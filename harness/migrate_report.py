"""The text ``guestcompat migrate`` prints for a :class:`~guestcompat.harness.migrate.MigrationOutcome`."""

from __future__ import annotations

from guestcompat.harness.migrate import MigrationOutcome


def _mib(n: int | None) -> str:
    return "?" if n is None else f"{n / (1 << 20):.1f} MiB"


def _ms(n: int | None) -> str:
    return "?" if n is None else f"{n} ms"


def report_lines(outcome: MigrationOutcome) -> list[str]:
    """Timings, QEMU's migration figures, the verdict, and one line per semantic difference."""
    stats = outcome.stats
    source, dest = outcome.source_argv[0], outcome.dest_argv[0]
    lines = [
        f"migrated {outcome.compiled.profile.name} on {outcome.compiled.target}"
        + (f" from {source} to {dest}" if source != dest else f" (both sides: {source})"),
        f"  source boot to first fingerprint: {outcome.source_seconds:.1f} s",
        f"  migration: {outcome.migration_seconds:.2f} s until the destination ran "
        f"(QEMU: total {_ms(stats.total_ms)}, downtime {_ms(stats.downtime_ms)}, setup {_ms(stats.setup_ms)}, "
        f"{_mib(stats.transferred_bytes)} sent of {_mib(stats.ram_total_bytes)} RAM, "
        f"{stats.dirty_sync_count if stats.dirty_sync_count is not None else '?'} dirty syncs)",
        f"  second probe on the destination (run {outcome.token}): {outcome.rerun_seconds:.1f} s; "
        f"source left in {outcome.source_status}",
    ]
    if outcome.unchanged:
        lines.append("UNCHANGED: the guest sees the same machine after the migration")
    else:
        lines.append(f"CHANGED: the guest sees {len(outcome.changes)} difference(s) after the migration:")
        lines += [f"  {change.text}" for change in outcome.changes]
    return lines
