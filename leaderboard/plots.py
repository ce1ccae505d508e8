"""Small SVG charts: per-task bars with 95% interval whiskers, and per-method deltas.

The venv has no matplotlib, plotly or altair, and Gradio's native bar plot draws no error bars, so the
charts are drawn here as SVG. Every label passes through ``html.escape``: model names come from
submitters, and the SVG is placed in the page as markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import pandas as pd

PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D")
MAX_SERIES = 8


def _nan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def task_bars(frame: pd.DataFrame, metric_columns: Sequence[str], ci: dict[tuple[str, str], tuple[float, float]],
              title: str) -> str:
    """Grouped bars: one group per ``task/metric`` column, one bar per run (the table's first rows).

    ``ci`` maps (run id, column) to the interval in display units.
    """
    if frame.empty or not metric_columns:
        return _empty(title)
    rows = frame.head(MAX_SERIES)
    groups = list(metric_columns)
    values = [v for c in groups for v in rows[c].tolist() if not _nan(v)]
    highs = [hi for (_, _), (_, hi) in ci.items() if not _nan(hi)]
    top = max([*values, *highs, 1e-9])
    width, height, left, bottom, top_pad = 760, 300, 48, 70, 34
    plot_w, plot_h = width - left - 170, height - bottom - top_pad
    group_w = plot_w / len(groups)
    bar_w = max(3.0, group_w * 0.8 / len(rows))
    parts = [_header(width, height, title), *_y_axis(left, top_pad, plot_h, top, plot_w)]
    for g, column in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.1
        for s, (_, row) in enumerate(rows.iterrows()):
            value = row[column]
            if _nan(value):
                continue
            x = x0 + s * bar_w
            y = top_pad + plot_h * (1 - value / top)
            color = PALETTE[s % len(PALETTE)]
            label = f"{row['Model']} · {column}: {value:.2f}"
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w * 0.9:.1f}" height="{top_pad + plot_h - y:.1f}" '
                         f'fill="{color}"><title>{escape(label)}</title></rect>')
            interval = ci.get((row["Run ID"], column))
            if interval and not any(_nan(v) for v in interval):
                cx = x + bar_w * 0.45
                y_lo = top_pad + plot_h * (1 - interval[0] / top)
                y_hi = top_pad + plot_h * (1 - interval[1] / top)
                parts.append(f'<path d="M{cx:.1f},{y_lo:.1f}V{y_hi:.1f}M{cx - 3:.1f},{y_lo:.1f}h6M{cx - 3:.1f},'
                             f'{y_hi:.1f}h6" stroke="#222" stroke-width="1.2"/>')
        parts.append(f'<text x="{left + (g + 0.5) * group_w:.1f}" y="{height - bottom + 16}" font-size="11" '
                     f'text-anchor="end" transform="rotate(-25 {left + (g + 0.5) * group_w:.1f},'
                     f'{height - bottom + 16})">{escape(column)}</text>')
    for s, (_, row) in enumerate(rows.iterrows()):
        y = top_pad + 6 + s * 18
        parts.append(f'<rect x="{width - 160}" y="{y}" width="10" height="10" fill="{PALETTE[s % len(PALETTE)]}"/>')
        parts.append(f'<text x="{width - 145}" y="{y + 9}" font-size="11">{escape(_short(row["Model"]))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def delta_bars(labels: Sequence[str], deltas: Sequence[float], title: str) -> str:
    """Horizontal bars of each method's mean delta against its base model (green gains, red losses)."""
    pairs = [(str(label), float(d)) for label, d in zip(labels, deltas) if not _nan(d)]
    if not pairs:
        return _empty(title)
    span = max(abs(d) for _, d in pairs) or 1.0
    width, row_h, left, top_pad = 760, 24, 140, 34
    height = top_pad + row_h * len(pairs) + 20
    mid = left + (width - left - 60) / 2
    half = (width - left - 60) / 2
    parts = [_header(width, height, title),
             f'<line x1="{mid:.1f}" y1="{top_pad - 4}" x2="{mid:.1f}" y2="{height - 14}" stroke="#888"/>']
    for i, (label, delta) in enumerate(pairs):
        y = top_pad + i * row_h
        length = half * abs(delta) / span
        x = mid if delta >= 0 else mid - length
        color = "#54A24B" if delta >= 0 else "#E45756"
        parts.append(f'<text x="{left - 8}" y="{y + 15}" font-size="12" text-anchor="end">{escape(_short(label))}</text>')
        parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{max(length, 1):.1f}" height="{row_h - 8}" fill="{color}">'
                     f'<title>{escape(label)}: {delta:+.2f}</title></rect>')
        text_x = mid + length + 4 if delta >= 0 else mid - length - 4
        anchor = "start" if delta >= 0 else "end"
        parts.append(f'<text x="{text_x:.1f}" y="{y + 15}" font-size="11" text-anchor="{anchor}">{delta:+.2f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _header(width: int, height: int, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
            f'style="max-width:100%;height:auto;font-family:sans-serif">'
            f'<text x="8" y="20" font-size="14" font-weight="bold">{escape(title)}</text>')


def _y_axis(left: float, top_pad: float, plot_h: float, top: float, plot_w: float) -> list[str]:
    parts = []
    for k in range(5):
        value = top * k / 4
        y = top_pad + plot_h * (1 - k / 4)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{value:.3g}</text>')
    return parts


def _empty(title: str) -> str:
    return _header(760, 60, title) + '<text x="8" y="44" font-size="12">No results to plot.</text></svg>'


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
