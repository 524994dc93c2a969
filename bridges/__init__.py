"""guestcompat.bridges."""
