"""guestcompat.detection."""
