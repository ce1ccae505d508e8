"""Optional parts and the extras that install them: a missing package is a one-line error naming the extra.

The core install (``pip install medpo-harness``) evaluates and trains local models; parts that need more
say which extra to add (``pyproject.toml`` lists them; docs/benchmarks.md measures the core install).
"""

from __future__ import annotations

import importlib.util

from harness.core.errors import HarnessError


def require(module: str, extra: str, what: str) -> None:
    """Raise a one-line ``HarnessError`` unless ``module`` can be imported; ``what`` names the part needing it."""
    if importlib.util.find_spec(module) is None:
        raise HarnessError(f"{what} needs the {module} package, which is not installed: "
                           f"pip install 'medpo-harness[{extra}]'")
