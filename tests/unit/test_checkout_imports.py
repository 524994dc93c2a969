"""A checkout imports without installing (issue 14): guestcompat.<sub> resolves to the checkout's
<sub>/ folder, exactly where pyproject.toml maps it, with no site-packages at all (``-S``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module, path", [
    ("guestcompat.bridges.topology", "bridges/topology.py"),
    ("guestcompat.detection.selectors", "detection/selectors.py"),
    ("guestcompat.emulation.qemuopts", "emulation/qemuopts.py"),
    ("guestcompat.harness", "harness/__init__.py"),
])
def test_a_module_of_a_checkout_imports_from_its_own_folder(tmp_path, module, path):
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import {module} as m; print(m.__file__)"
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == ROOT / path


def test_an_installed_copy_is_left_alone(tmp_path):
    """No pyproject.toml beside the package (an installed copy): nothing is added to its path."""
    package = tmp_path / "site" / "guestcompat"
    package.mkdir(parents=True)
    package.joinpath("__init__.py").write_text((ROOT / "guestcompat" / "__init__.py").read_text())
    (tmp_path / "site" / "harness").mkdir()
    (tmp_path / "site" / "harness" / "__init__.py").write_text("")
    code = (f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r}); import guestcompat; "
            "print(len(guestcompat.__path__))")
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
