"""guestcompat.emulation."""
