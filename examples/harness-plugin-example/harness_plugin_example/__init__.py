"""An example harness plugin: one preference loss registered through the ``harness.methods`` entry point."""
