"""Leaderboard test fixtures; the fake-data builders live in ``lb_fakes`` (a unique module name, so they
import the same way whichever test folders run together)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from lb_fakes import *  # noqa: E402,F401,F403  (fixtures defined there register through this import)
