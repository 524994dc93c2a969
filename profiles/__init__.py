"""guestcompat.profiles."""
