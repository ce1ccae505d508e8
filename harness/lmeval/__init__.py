"""The bridge to lm-evaluation-harness: task folders out, results in.

Export the harness's tasks as lm-eval task folders, import lm-eval results into the results store. See
``docs/lm-eval.md``."""
