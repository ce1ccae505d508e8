"""The effect plot of a study as a standalone SVG (no plotting dependency).

One panel per headline (task, metric); in each, one row per method entry: a dot at its effect against
the base model (``delta_vs_base``, display units) and a bar for its 95% interval (``ci_low``/``ci_high``),
with a vertical line at zero. For a lower-is-better metric the panel title says so. A row is drawn as
significant (filled, with ``*``) only when its interval excludes 0 and its p-value is below 0.05, which the
study's test makes the same thing; an older record where they disagree is drawn as not significant.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from harness.stats.intervals import significant

PANEL_W, ROW_H, LABEL_W, PAD = 420, 22, 190, 14


def record_scale(record: dict[str, Any]) -> float:
    """1 for records in display units (this harness), the metric's display scale for older natural-unit ones."""
    from harness.results.compare import display_scale

    return 1.0 if record.get("units") == "display" else display_scale(record["metric"])


def effect_svg(records: list[dict[str, Any]]) -> str:
    panels: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        if r.get("delta_vs_base") is not None:
            panels.setdefault((r["task"], r["metric"]), []).append(r)
    if not panels:
        return _svg(PANEL_W, 40, ['<text x="10" y="24" font-size="13">no method runs to compare yet</text>'])
    parts, y = [], PAD
    for (task, metric), rows in panels.items():
        points = [(r["method"], *(_scaled(r.get(k), record_scale(r)) for k in ("delta_vs_base", "ci_low", "ci_high")),
                   significant(r.get("p_vs_base"), r.get("ci_low"), r.get("ci_high"))) for r in rows]
        finite = [v for _, *vals, _ in points for v in vals if v is not None] + [0.0]
        low, high = min(finite), max(finite)
        span = (high - low) or 1.0
        low, high = low - 0.08 * span, high + 0.08 * span

        def x(value: float, low: float = low, high: float = high) -> float:
            return LABEL_W + (value - low) / (high - low) * (PANEL_W - LABEL_W - PAD)

        direction = "higher is better" if rows[0]["higher_is_better"] else "lower is better"
        parts.append(f'<text x="{PAD}" y="{y + 12}" font-size="13" font-weight="bold">'
                     f'{escape(task)}/{escape(metric)}: effect vs base ({direction}), 95% interval; filled: p &lt; 0.05</text>')
        top = y + 20
        bottom = top + ROW_H * len(points)
        parts.append(f'<line x1="{x(0):.1f}" y1="{top}" x2="{x(0):.1f}" y2="{bottom}" stroke="#888" '
                     'stroke-dasharray="3,3"/>')
        for i, (label, delta, ci_low, ci_high, sig) in enumerate(points):
            cy = top + ROW_H * i + ROW_H / 2
            parts.append(f'<text x="{LABEL_W - 8}" y="{cy + 4:.1f}" font-size="12" text-anchor="end">'
                         f'{escape(label)}</text>')
            if ci_low is not None and ci_high is not None:
                parts.append(f'<line x1="{x(ci_low):.1f}" y1="{cy:.1f}" x2="{x(ci_high):.1f}" y2="{cy:.1f}" '
                             'stroke="#1f77b4" stroke-width="2"/>')
            fill, mark = ("#1f77b4", " *") if sig else ("white", "")
            parts.append(f'<circle cx="{x(delta):.1f}" cy="{cy:.1f}" r="4" fill="{fill}" stroke="#1f77b4"><title>'
                         f'{escape(label)}: {delta:+.2f}{mark}</title></circle>')
        parts.append(f'<text x="{LABEL_W}" y="{bottom + 14}" font-size="10" fill="#555">{low:.1f}</text>')
        parts.append(f'<text x="{PANEL_W - PAD}" y="{bottom + 14}" font-size="10" fill="#555" '
                     f'text-anchor="end">{high:.1f}</text>')
        y = bottom + 30
    return _svg(PANEL_W, y, parts)


def _scaled(value: Any, scale: float) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value) * scale


def _svg(width: int, height: float, parts: list[str]) -> str:
    body = "\n".join(parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" '
            f'viewBox="0 0 {width} {height:.0f}" font-family="sans-serif">\n'
            f'<rect width="100%" height="100%" fill="white"/>\n{body}\n</svg>\n')
