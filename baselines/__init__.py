"""Baseline preference-optimization methods, each a loss registered in harness.methods."""
