"""guestcompat.harness."""
