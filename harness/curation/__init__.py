"""Curation: everything that makes preference data (verified hallucinations, the fact checker, default text pairs, judges, the pair format, image noising, the shared pair-building helpers)."""
