"""ipguard."""
