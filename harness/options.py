"""Reading option values given as strings on the command line (``--option key=value``)."""

from __future__ import annotations

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def parse_bool(value: str) -> bool:
    """``"yes"``/``"on"``/``"1"``/``"true"`` and their opposites, any case; anything else is a ValueError."""
    lowered = value.lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ValueError(value)
