"""The suite's own precondition: ``--dist loadgroup`` really keeps an ``xdist_group`` on one worker.

The fleet tests (two libvirtd daemons each) and the full-guest tests rely on it. pytest 9.2 broke it
silently (pytest-xdist#1386: the tests were spread round-robin and two workers' fleet daemons tore
each other's mount points down); pyproject.toml pins pytest below 9.2, and this test fails if the
installed pair stops grouping."""

from __future__ import annotations

import re
import subprocess
import sys


def test_a_group_runs_on_one_worker(tmp_path):
    (tmp_path / "test_grouped.py").write_text(
        "import pytest\n"
        "pytestmark = pytest.mark.xdist_group('together')\n"
        "@pytest.mark.parametrize('i', range(6))\n"
        "def test_one(i):\n    pass\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p",
                           "no:cacheprovider", "-p", "no:guestcompat", "test_grouped.py"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    workers = re.findall(r"\[(gw\d+)\] .*PASSED", done.stdout)
    assert len(workers) == 6 and len(set(workers)) == 1, done.stdout
