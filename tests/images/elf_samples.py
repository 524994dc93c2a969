"""Tiny hand-made ELF files for the kernel-form tests (no compiler needed)."""

from __future__ import annotations

import struct

PT_LOAD = 1
PT_NOTE = 4


def note(name: bytes, n_type: int, desc: bytes) -> bytes:
    """One ELF note: header, NUL-terminated name and descriptor, each padded to 4."""
    name_z = name + b"\0"
    return (struct.pack("<III", len(name_z), len(desc), n_type)
            + name_z + b"\0" * (-len(name_z) % 4) + desc + b"\0" * (-len(desc) % 4))


def make_elf(notes: list[tuple[bytes, int, bytes]]) -> bytes:
    """An x86-64 ET_EXEC ELF with one PT_LOAD and (if *notes*) one PT_NOTE segment."""
    note_blob = b"".join(note(*n) for n in notes)
    phnum = 2 if notes else 1
    code = b"\xf4" * 16  # hlt
    header_size = 64 + 56 * phnum
    note_off = header_size
    code_off = note_off + len(note_blob)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x100000, 64, 0, 0, 64, 56,
                               phnum, 64, 0, 0)
    phdrs = struct.pack("<IIQQQQQQ", PT_LOAD, 5, code_off, 0x100000, 0x100000,
                        len(code), len(code), 0x1000)
    if notes:
        phdrs += struct.pack("<IIQQQQQQ", PT_NOTE, 4, note_off, 0, 0,
                             len(note_blob), len(note_blob), 4)
    return ehdr + phdrs + note_blob + code


def pvh_elf() -> bytes:
    """An ELF carrying Xen's PHYS32_ENTRY note (type 18), like a CONFIG_PVH kernel."""
    return make_elf([(b"GNU", 3, b"\x01" * 20), (b"Xen", 18, struct.pack("<I", 0x1000000))])


def plain_elf() -> bytes:
    """An ELF with notes but no PVH entry (type 18 under another name, other Xen notes)."""
    return make_elf([(b"Xen", 6, b"linux\0"), (b"GNU", 18, b"\0" * 4)])
