from harness.results.store import ResultRow, ResultsStore, RunRecord

__all__ = ["ResultRow", "ResultsStore", "RunRecord"]
