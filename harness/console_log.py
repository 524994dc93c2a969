"""The console lines a run keeps, bounded: a guest that floods its serial port (a runaway process, a
hostile full guest) must not grow the harness's memory without limit (issue 13). The frame reader
still sees every line; only what is *kept* (``--console``, the BootResult) stops at KEEP_BYTES."""

from __future__ import annotations

#: Console text kept per run (the probe's document is ~100 KB; a TCG boot prints well under 1 MB).
KEEP_BYTES = 8 << 20


class KeptLines(list):
    """A ``list[str]`` of console lines that stops keeping after KEEP_BYTES (one marker line says so)."""

    def __init__(self) -> None:
        super().__init__()
        self.kept_bytes = 0
        self.dropped = 0

    def keep(self, line: str) -> None:
        if self.kept_bytes + len(line) + 1 > KEEP_BYTES:
            if not self.dropped:
                super().append(f"<console flood: more than {KEEP_BYTES >> 20} MiB of console output; "
                               f"later lines were read but not kept>")
            self.dropped += 1
            return
        self.kept_bytes += len(line) + 1
        super().append(line)

    def __reduce__(self):  # pickled (shared test boots) as the plain list it is
        return (list, (list(self),))
