"""guestcompat.emulation.arches."""
