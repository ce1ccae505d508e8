from harness.results.store import ResultRow, ResultsStore, RunRecord, new_run_id

__all__ = ["ResultRow", "ResultsStore", "RunRecord", "new_run_id"]
