"""guestcompat: will this guest see the same machine after the move?

The top-level package holds only what every subpackage shares: the error
base class and the cache location.  Everything else lives in the mapped
subpackages (profiles, bridges, emulation, detection, harness, images).
"""

__version__ = "0.1.0"
