"""Batched evaluation: generation, scoring, storing."""
