"""Experiments on models: ``harness run`` (``pipeline``), ``harness study`` (``study``), the built-in model recipes (``builtin_models``) and the measured properties of a base model (``diagnose``)."""
