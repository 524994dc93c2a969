"""The probe helper's ELF machine check reads the header with pyelftools: both byte orders, garbage refused."""

from __future__ import annotations

import struct

from guestcompat.detection.payload import _elf_machine


def _header(big_endian: bool, machine: int) -> bytes:
    """A bare ELF64 executable header (no sections, no segments)."""
    order = ">" if big_endian else "<"
    ident = b"\x7fELF" + bytes([2, 2 if big_endian else 1, 1, 0]) + bytes(8)
    return ident + struct.pack(order + "HHIQQQIHHHHHH", 2, machine, 1, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0)


def test_e_machine_in_either_byte_order():
    assert _elf_machine(_header(False, 62)) == 62      # EM_X86_64, little-endian
    assert _elf_machine(_header(True, 21)) == 21       # EM_PPC64, big-endian
    assert _elf_machine(_header(False, 0x9999)) == 0x9999  # a number pyelftools has no name for


def test_a_real_binary_and_non_elf_input():
    with open("/bin/true", "rb") as fh:
        assert _elf_machine(fh.read()) == 62
    for junk in (b"", b"\x7fELF", b"#!/bin/sh\n" * 10, _header(False, 62)[:30]):
        assert _elf_machine(junk) is None
