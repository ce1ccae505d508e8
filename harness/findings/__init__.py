"""Findings: the one reader of findings from text (synthetic reports and answers, free-text reports through the CheXpert-style labeler, VQA answers)."""
