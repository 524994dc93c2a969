"""guestcompat.images."""
