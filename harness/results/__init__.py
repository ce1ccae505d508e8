"""The results store (SQLite): runs, per-sample predictions, comparisons, exports and model cards."""

from harness.results.store import ResultRow, ResultsStore, RunRecord, new_run_id

__all__ = ["ResultRow", "ResultsStore", "RunRecord", "new_run_id"]
