"""MMedPO: clinical-aware multimodal preference optimization (arXiv 2412.06141)."""
