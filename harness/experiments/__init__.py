"""Experiments on models: the measured properties of a base model (``diagnose``)."""
