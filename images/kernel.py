"""Kernel forms: turn the kernel a Debian package ships into what QEMU boots fastest.

Each architecture names its form (``ArchStrategy.kernel_form``); this module
maps the name to a function, so no code asks "which arch is this?".

* ``pvh-vmlinux`` (x86_64): Debian ships a compressed bzImage.  Booting it
  costs SeaBIOS + the real-mode setup + in-guest XZ decompression under TCG
  (~6 s measured); the ELF ``vmlinux`` inside it boots through the PVH entry
  point in ~2.6 s.  The bzImage payload is an XZ stream; we unpack it with
  Python's ``lzma`` and insist on the PVH ELF note, because QEMU silently
  falls back to other paths (or fails obscurely) without it.
* ``vmlinux`` (ppc64): Debian already ships ``/boot/vmlinux-*`` as an ELF.
"""

from __future__ import annotations

import contextlib
import lzma
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_NOTE_N_TYPE

from guestcompat.errors import ImageError

XZ_MAGIC = b"\xfd7zXZ\x00"
ELF_MAGIC = b"\x7fELF"
#: Xen ELF note carrying the 32-bit PVH entry point (xen/include/public/elfnote.h).
XEN_ELFNOTE_PHYS32_ENTRY = 18

#: A form takes (unpacked package root, kernel release, destination file).
KernelForm = Callable[[Path, str, Path], None]


def xz_payload(blob: bytes, what: str = "kernel image") -> bytes:
    """The first XZ stream in *blob* that decompresses to an ELF file.

    The bzImage holds the magic more than once (the decompressor code may
    contain it too), so every occurrence is tried in order.  Trailing bytes
    after the stream (relocations, signatures) are ignored by the decoder.
    """
    start = blob.find(XZ_MAGIC)
    while start != -1:
        decoder = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        try:
            data = decoder.decompress(blob[start:])
        except lzma.LZMAError:
            data = b""
        if decoder.eof and data.startswith(ELF_MAGIC):
            return data
        start = blob.find(XZ_MAGIC, start + 1)
    raise ImageError(f"{what}: no XZ stream holding an ELF kernel found")


@contextlib.contextmanager
def _elf(path: Path) -> Iterator[ELFFile]:
    """*path* opened with pyelftools; parse errors become ImageError."""
    with path.open("rb") as fh:
        try:
            yield ELFFile(fh)
        except ELFError as exc:
            raise ImageError(f"{path}: not a valid ELF file ({exc})") from exc


def check_elf(path: Path) -> None:
    """ImageError unless *path* is an ELF executable with loadable segments."""
    with _elf(path) as elf:
        if elf["e_type"] not in ("ET_EXEC", "ET_DYN"):
            raise ImageError(f"{path}: ELF type {elf['e_type']}, not an executable kernel")
        if not any(seg["p_type"] == "PT_LOAD" for seg in elf.iter_segments()):
            raise ImageError(f"{path}: ELF has no loadable segment")


def _raw_note_type(value: object) -> int | None:
    """pyelftools names note types by the GNU table even for Xen notes; undo that."""
    if isinstance(value, int):
        return value
    return ENUM_NOTE_N_TYPE.get(value) if isinstance(value, str) else None


def has_pvh_note(path: Path) -> bool:
    """True when *path* is an ELF with the Xen PHYS32_ENTRY note in a PT_NOTE segment.

    QEMU looks for this note in the program headers (not the section
    table) to decide on the PVH boot path, so only segments count.
    """
    with _elf(path) as elf:
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_NOTE":
                continue
            for note in seg.iter_notes():
                if (note["n_name"] == "Xen" and note["n_descsz"] >= 4
                        and _raw_note_type(note["n_type"]) == XEN_ELFNOTE_PHYS32_ENTRY):
                    return True
    return False


def check_pvh(path: Path) -> None:
    """ImageError unless *path* is an ELF kernel QEMU can boot through PVH."""
    check_elf(path)
    if not has_pvh_note(path):
        raise ImageError(
            f"{path}: ELF kernel without the PVH entry note (Xen note type "
            f"{XEN_ELFNOTE_PHYS32_ENTRY}); the kernel was built without CONFIG_PVH")


def _boot_file(root: Path, prefix: str, release: str) -> Path:
    path = root / "boot" / f"{prefix}-{release}"
    if not path.is_file():
        found = ", ".join(sorted(p.name for p in (root / "boot").glob("*"))) or "nothing"
        raise ImageError(f"kernel package has no /boot/{prefix}-{release} (found: {found})")
    return path


def form_pvh_vmlinux(root: Path, release: str, dest: Path) -> None:
    """bzImage → ELF vmlinux with a PVH entry (x86)."""
    src = _boot_file(root, "vmlinuz", release)
    dest.write_bytes(xz_payload(src.read_bytes(), what=str(src)))
    check_pvh(dest)


def form_bzimage(root: Path, release: str, dest: Path) -> None:
    """The package's compressed bzImage as is, for firmware (SeaBIOS) to load:
    the conventional, slower path bench/boot.py measures against."""
    src = _boot_file(root, "vmlinuz", release)
    head = src.read_bytes()[:0x210]
    if head[0x202:0x206] != b"HdrS":
        raise ImageError(f"{src}: not an x86 bzImage (no 'HdrS' boot protocol header)")
    shutil.copyfile(src, dest)


def form_vmlinux(root: Path, release: str, dest: Path) -> None:
    """The package already ships an ELF vmlinux (ppc64): verify and copy it."""
    src = _boot_file(root, "vmlinux", release)
    check_elf(src)
    shutil.copyfile(src, dest)


KERNEL_FORMS: dict[str, KernelForm] = {
    "pvh-vmlinux": form_pvh_vmlinux,
    "bzimage": form_bzimage,
    "vmlinux": form_vmlinux,
}


def extract_kernel(form: str, root: Path, release: str, dest: Path) -> None:
    """Produce the bootable kernel of *form* from an unpacked kernel package."""
    try:
        func = KERNEL_FORMS[form]
    except KeyError:
        raise ImageError(f"unknown kernel form {form!r} (known: {', '.join(sorted(KERNEL_FORMS))})"
                         ) from None
    func(root, release, dest)
