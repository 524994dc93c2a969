"""guestcompat: will this guest see the same machine after the move?

The top-level package holds only what every subpackage shares: the error
base class and the cache location.  Everything else lives in the mapped
subpackages (profiles, bridges, emulation, detection, harness, images).
"""

__version__ = "0.1.0"

from pathlib import Path as _Path

# A checkout imports without installing.  The subpackages are the folders beside this one
# (pyproject.toml maps guestcompat.harness to harness/, and so on), so when this file lies in a
# checkout (pyproject.toml next to it and the folders present) the checkout's root is searched
# for them too, as an installed copy or the editable install's finder would find them.  An
# installed copy has no pyproject.toml beside it and is left as it is.
_checkout = _Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "harness" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 (a package's __path__)
