"""Per-target counts of the fuzz tests (examples, valid results, project errors, internal errors)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

from hypothesis import HealthCheck, settings

from guestcompat.errors import GuestcompatError

TALLIES: dict[str, Counter] = defaultdict(Counter)

#: Examples per target: a quick run in the normal suite; ``make fuzz`` sets GUESTCOMPAT_FUZZ_EXAMPLES=10000.
EXAMPLES = int(os.environ.get("GUESTCOMPAT_FUZZ_EXAMPLES", "30"))

FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much, HealthCheck.large_base_example])


@contextmanager
def tally(target: str) -> Iterator[Counter]:
    """Count one example: a valid result, a project error (whose message must say what and where), or an
    internal error (any other exception: counted, then re-raised so Hypothesis shrinks and reports it)."""
    counts = TALLIES[target]
    counts["examples"] += 1
    try:
        yield counts
    except GuestcompatError as exc:
        message = str(exc)
        assert message.strip() and "Traceback" not in message, f"{type(exc).__name__} with an empty message"
        counts["project_error"] += 1
        return
    except Exception:
        counts["internal_error"] += 1
        raise
    counts["valid"] += 1


# -- session hooks (called from tests/conftest.py: the xdist controller never imports tests/fuzz/) ----------
TALLY_DIR = "GUESTCOMPAT_FUZZ_TALLIES"


def configure(config) -> None:
    """The controller makes a directory the workers' tallies go to (workers inherit the environment)."""
    if not hasattr(config, "workerinput") and TALLY_DIR not in os.environ:
        config._fuzz_tallies = tempfile.mkdtemp(prefix="guestcompat-fuzz-tallies-")
        os.environ[TALLY_DIR] = config._fuzz_tallies


def sessionfinish(session) -> None:
    directory = os.environ.get(TALLY_DIR)
    if directory and TALLIES:
        name = getattr(session.config, "workerinput", {}).get("workerid", "main")
        Path(directory, f"{name}-{os.getpid()}.json").write_text(json.dumps({k: dict(v) for k, v in TALLIES.items()}))


def summary(terminalreporter, config) -> None:
    directory = getattr(config, "_fuzz_tallies", None)
    if directory is None:
        return
    totals: dict[str, Counter] = {}
    for path in sorted(Path(directory).glob("*.json")):
        for target, counts in json.loads(path.read_text()).items():
            totals.setdefault(target, Counter()).update(counts)
    shutil.rmtree(directory, ignore_errors=True)
    os.environ.pop(TALLY_DIR, None)
    if not totals:
        return
    terminalreporter.section("guestcompat fuzz tallies")
    for target, counts in sorted(totals.items()):
        terminalreporter.write_line(
            f"{target:<18} examples={counts['examples']:>6}  valid={counts['valid']:>6}  "
            f"project_error={counts['project_error']:>6}  internal_error={counts['internal_error']}"
            + (f"  argv_compared={counts['argv_compared']}" if counts.get("argv_compared") else ""))
    terminalreporter.write_line(f"internal errors in total: {sum(c['internal_error'] for c in totals.values())}")
