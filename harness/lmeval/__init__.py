"""The bridge to lm-evaluation-harness: export the harness's tasks as lm-eval task folders, import lm-eval
results into the results store. See ``docs/lm-eval.md``."""
