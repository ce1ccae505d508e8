"""Example task plugin for medpo-harness: ``clinic_vqa``, a VQA benchmark kept as CSV files (docs/plugins.md)."""
