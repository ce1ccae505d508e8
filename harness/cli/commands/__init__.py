"""One module per command; see ``harness.cli``."""
