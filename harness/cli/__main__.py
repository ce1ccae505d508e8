"""``python -m harness.cli`` (and ``accelerate launch -m harness.cli eval ...``)."""

import sys

from harness.cli import main

sys.exit(main())
