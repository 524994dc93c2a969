"""Errors that reach the user as one clear message (never a traceback).

Every failure the user can cause or meet (a broken profile, a missing QEMU,
a hung guest, garbage on the serial line) is raised as a GuestcompatError
subclass; the CLI prints ``str(error)`` and exits with code 2.
"""


class GuestcompatError(Exception):
    """Base class of every error the CLI reports as a message."""


class ProfileError(GuestcompatError):
    """A profile file is malformed, inconsistent or cannot be resolved."""


class DiskImageError(ProfileError):
    """A source disk (VMDK) cannot be read or converted: missing extent, unknown format, qemu-img failure."""


class TopologyError(GuestcompatError):
    """The PCI topology a profile asks for is impossible (conflict, missing bridge, ...)."""


class CompileError(GuestcompatError):
    """A profile cannot be compiled for the requested target."""


class QemuUnusableError(CompileError):
    """The QEMU binary itself is missing, does not start or does not answer: a broken
    target, not a profile that does not fit it (the matrix reports an error, not a skip)."""


class ImageError(GuestcompatError):
    """A guest image could not be built (package download, extraction, ...)."""


class ProbeError(GuestcompatError):
    """The guest's fingerprint could not be read or decoded."""


class RunError(GuestcompatError):
    """QEMU failed to start, crashed, or the guest hung.

    Carries the command line and the last console lines so the user can see
    what the guest was doing when it stopped.
    """

    def __init__(self, message: str, *, argv: list[str] | None = None,
                 console_tail: list[str] | None = None, screenshot=None, no_screenshot: str = "") -> None:
        self.argv = argv or []
        self.console_tail = console_tail or []
        self.screenshot = screenshot
        """The guest's VGA screen at the failure (a PNG's Path), when the machine had one (issue 26)."""
        self.no_screenshot = no_screenshot
        """Why there is no screenshot, when the runner tried to take one."""
        super().__init__(message)

    def __str__(self) -> str:
        parts = [self.args[0]]
        if self.screenshot is not None:
            parts.append(f"the guest's screen at that moment: {self.screenshot}")
        elif self.no_screenshot:
            parts.append(f"no screenshot: {self.no_screenshot}")
        if self.console_tail:
            parts.append("last console lines:")
            parts.extend("  | " + line for line in self.console_tail)
        if self.argv:
            parts.append("command: " + " ".join(self.argv))
        return "\n".join(parts)


class QemuStartError(RunError):
    """QEMU did not start, or exited or stayed silent before its QMP monitor answered.

    ``spawned``: the process was created (False: the binary is missing or not executable);
    ``returncode`` and ``stderr`` (its last lines): what it said when it exited.
    """

    def __init__(self, message: str, *, argv: list[str] | None = None, spawned: bool = True,
                 returncode: int | None = None, stderr: tuple[str, ...] = ()) -> None:
        super().__init__(message, argv=argv)
        self.spawned = spawned
        self.returncode = returncode
        self.stderr = stderr


class MigrationError(RunError):
    """A live-migration check could not be carried out: QEMU blocks or fails the migration, the
    destination dies or never runs, or the guest's second fingerprint is not the one asked for."""


class HostLostError(RunError):
    """A libvirt host could not be reached, or stopped answering during a run: the domain the run
    had started may still be there (harness/libvirt_owner.py removes it when the host is back)."""


class SelectorError(GuestcompatError):
    """A selector (``pci[03:00.0].vendor``) is malformed or names no known property: the
    compiler or a caller produced it, so it is a bug to report, not a guest mismatch."""
