"""Small SVG charts: per-task bars with 95% interval whiskers, and a forest plot (study effects, method deltas).

The venv has no matplotlib, plotly or altair, and Gradio's native bar plot draws no error bars, so the
charts are drawn here as SVG. Every label passes through ``html.escape``: model names come from
submitters, and the SVG is placed in the page as markup. Names are shortened in the middle and made
distinct (the full name is the tooltip); the font stack falls back to CJK fonts where the visitor has one.
Axes use round ticks (1, 2, 2.5, 5 x 10^k). Metrics on different scales are never drawn on one axis: the
caller draws one chart per unit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

import pandas as pd

PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D")
BETTER, WORSE = "#1a7f37", "#cf222e"
MAX_SERIES = 8
FONTS = ("system-ui, -apple-system, 'Segoe UI', 'Noto Sans', 'Noto Sans CJK SC', 'Noto Sans CJK JP', "
         "'Source Han Sans', 'PingFang SC', 'Hiragino Sans', 'Microsoft YaHei', 'WenQuanYi Micro Hei', sans-serif")


def _nan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2, 2.5 or 5 times a power of ten."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low <= 0:
        high = low + 1.0
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start, stop = math.floor(low / step + 1e-9) * step, math.ceil(high / step - 1e-9) * step
    ticks, k = [], 0
    while start + k * step <= stop + step * 1e-9:
        ticks.append(round(start + k * step, 10))
        k += 1
    return ticks


def _tick_text(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-9 else "0"


def short_labels(names: Sequence[str], limit: int = 26) -> list[str]:
    """Names shortened in the middle (start and end kept: '...-7b-dpo' and '...-7b-simpo' stay apart) and
    made distinct: names that still collide get ' #2', ' #3'."""
    out, seen = [], {}
    for name in names:
        text = str(name)
        if len(text) > limit:
            head = (limit - 1) // 2
            text = text[:head] + "…" + text[-(limit - 1 - head):]
        count = seen.get(text, 0) + 1
        seen[text] = count
        out.append(text if count == 1 else f"{text} #{count}")
    return out


def task_bars(frame: pd.DataFrame, metric_columns: Sequence[str], ci: dict[tuple[str, str], tuple[float, float]],
              title: str, *, labels: Sequence[str] | None = None, partial: Sequence[bool] | None = None) -> str:
    """Grouped bars: one group per ``task/metric`` column, one bar per run (the table's first rows).

    ``ci`` maps (run id, column) to the interval in display units. All columns share one axis, so the
    caller passes columns of one unit only. ``labels`` name the runs in the legend (default: the Model
    column); runs flagged in ``partial`` (evaluated on part of a test set) are drawn hatched, their legend
    swatch too, and their tooltips say so.
    """
    if frame.empty or not metric_columns:
        return _empty(title)
    rows = frame.head(MAX_SERIES)
    flags = list(partial or [])[:len(rows)] + [False] * max(0, len(rows) - len(partial or []))
    groups = list(metric_columns)
    values = [v for c in groups for v in rows[c].tolist() if not _nan(v)]
    highs = [hi for (_, col), (_, hi) in ci.items() if col in groups and not _nan(hi)]
    ticks = nice_ticks(0.0, max([*values, *highs, 1e-9]))
    top = ticks[-1]
    width, height, left, bottom, top_pad, legend_w = 800, 300, 48, 44, 34, 230
    plot_w, plot_h = width - left - legend_w, height - bottom - top_pad
    group_w = plot_w / len(groups)
    bar_w = max(3.0, group_w * 0.8 / len(rows))
    parts = [_header(width, height, title), *_y_axis(left, top_pad, plot_h, ticks, plot_w)]
    if any(flags):
        parts.append('<defs><pattern id="lb-partial" width="6" height="6" patternUnits="userSpaceOnUse" '
                     'patternTransform="rotate(45)"><rect width="3" height="6" fill="white" fill-opacity="0.55"/>'
                     '</pattern></defs>')
    full_names = [str(m) for m in (labels if labels is not None else rows["Model"])][:len(rows)]
    names = short_labels(full_names, 32)  # a partial run's swatch is hatched like its bars
    for g, column in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.1
        for s, (_, row) in enumerate(rows.iterrows()):
            value = row[column]
            if _nan(value):
                continue
            x = x0 + s * bar_w
            y = top_pad + plot_h * (1 - value / top)
            label = f"{row['Model']} · {row.get('Run ID', '')} · {column}: {value:.2f}"
            label += " (partial test set)" if flags[s] else ""
            box = f'x="{x:.1f}" y="{y:.1f}" width="{bar_w * 0.9:.1f}" height="{top_pad + plot_h - y:.1f}"'
            parts.append(f'<rect {box} fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(label)}</title></rect>')
            if flags[s]:  # hatched: on part of a test set
                parts.append(f'<rect {box} fill="url(#lb-partial)" class="lb-partial"/>')
            interval = ci.get((row["Run ID"], column))
            if interval and not any(_nan(v) for v in interval):
                cx = x + bar_w * 0.45
                y_lo = top_pad + plot_h * (1 - interval[0] / top)
                y_hi = top_pad + plot_h * (1 - interval[1] / top)
                parts.append(f'<path d="M{cx:.1f},{y_lo:.1f}V{y_hi:.1f}M{cx - 3:.1f},{y_lo:.1f}h6M{cx - 3:.1f},'
                             f'{y_hi:.1f}h6" stroke="#222" stroke-width="1.2"/>')
        # two short lines under the group (task, then metric), never rotated out of the picture
        task, _, metric = column.partition("/")
        cx = left + (g + 0.5) * group_w
        chars = max(4, int(group_w / 6.2))
        parts.append(f'<text x="{cx:.1f}" y="{height - bottom + 16}" font-size="10" text-anchor="middle">'
                     f'<title>{escape(column)}</title>{escape(short_labels([task], chars)[0])}'
                     f'<tspan x="{cx:.1f}" dy="13">{escape(short_labels([metric], chars)[0])}</tspan></text>')
    for s, (_, row) in enumerate(rows.iterrows()):
        y = top_pad + 6 + s * 18
        parts.append(f'<rect x="{width - legend_w + 12}" y="{y}" width="10" height="10" '
                     f'fill="{PALETTE[s % len(PALETTE)]}"/>')
        if flags[s]:
            parts.append(f'<rect x="{width - legend_w + 12}" y="{y}" width="10" height="10" fill="url(#lb-partial)"/>')
        tip = f"{row['Model']} · {row.get('Run ID', '')}" + (" (partial test set)" if flags[s] else "")
        parts.append(f'<text x="{width - legend_w + 27}" y="{y + 9}" font-size="11"><title>{escape(tip)}'
                     f'</title>{escape(names[s])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def forest(rows: Sequence[dict[str, Any]], title: str, higher_is_better: bool = True, label_width: int = 190) -> str:
    """A forest plot: one row per method, a dot at its effect against the base and a bar for its 95%
    interval, a dashed line at zero; green for an improvement in the metric's direction, red for a loss,
    grey unless the row is significant: its interval excludes zero and (when the row says, ``significant``)
    its p-value agrees. ``mark`` (``*``, ``**``) is printed after the value; a row with ``hollow`` (a run on
    part of a test set) gets an open dot."""
    rows = [r for r in rows if not _nan(r.get("effect"))]
    if not rows:
        return _empty(title)
    lows = [r["low"] if not _nan(r.get("low")) else r["effect"] for r in rows]
    highs = [r["high"] if not _nan(r.get("high")) else r["effect"] for r in rows]
    ticks = nice_ticks(min(lows), max(highs))
    lo, hi = ticks[0], ticks[-1]
    width, row_h, left, top_pad, right = 760 + label_width - 190, 26, label_width, 34, 90
    plot_w = width - left - right
    height = top_pad + row_h * len(rows) + 36

    def x_of(v: float) -> float:
        return left + plot_w * (v - lo) / (hi - lo)

    parts = [_header(width, height, title)]
    axis_y = top_pad + row_h * len(rows) + 4
    for t in ticks:
        parts.append(f'<line x1="{x_of(t):.1f}" y1="{top_pad - 4}" x2="{x_of(t):.1f}" y2="{axis_y}" stroke="#eee"/>')
        parts.append(f'<text x="{x_of(t):.1f}" y="{axis_y + 14}" font-size="10" text-anchor="middle">'
                     f'{_tick_text(t)}</text>')
    parts.append(f'<line x1="{x_of(0):.1f}" y1="{top_pad - 4}" x2="{x_of(0):.1f}" y2="{axis_y}" stroke="#555" '
                 f'stroke-dasharray="4 3"/>')
    names = short_labels([str(r["label"]) for r in rows], int((label_width - 16) / 6.8))  # 12 px text
    for i, r in enumerate(rows):
        y = top_pad + i * row_h + row_h / 2
        low, high = lows[i], highs[i]
        crosses = low <= 0 <= high or not r.get("significant", True)
        color = "#777" if crosses else (BETTER if (r["effect"] > 0) == higher_is_better else WORSE)
        parts.append(f'<text x="{left - 10}" y="{y + 4:.1f}" font-size="12" text-anchor="end"><title>'
                     f'{escape(str(r["label"]))}</title>{escape(names[i])}</text>')
        parts.append(f'<line x1="{x_of(low):.1f}" y1="{y:.1f}" x2="{x_of(high):.1f}" y2="{y:.1f}" stroke="{color}" '
                     f'stroke-width="2"/>')
        fill = "white" if r.get("hollow") else color
        parts.append(f'<circle cx="{x_of(r["effect"]):.1f}" cy="{y:.1f}" r="4.5" fill="{fill}" stroke="{color}" '
                     f'stroke-width="1.5"><title>'
                     f'{escape(str(r["label"]))}: {r["effect"]:+.2f} [{low:.2f}, {high:.2f}]</title></circle>')
        parts.append(f'<text x="{width - right + 8}" y="{y + 4:.1f}" font-size="11">{r["effect"]:+.2f}'
                     f'{escape(str(r.get("mark") or ""))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _header(width: int, height: int, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
            f'style="max-width:100%;height:auto;font-family:{FONTS}">'
            f'<text x="8" y="20" font-size="14" font-weight="bold">{escape(title)}</text>')


def _y_axis(left: float, top_pad: float, plot_h: float, ticks: Sequence[float], plot_w: float) -> list[str]:
    parts = []
    top = ticks[-1]
    for value in ticks:
        y = top_pad + plot_h * (1 - value / top)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_tick_text(value)}</text>')
    return parts


def _empty(title: str) -> str:
    return _header(760, 60, title) + '<text x="8" y="44" font-size="12">No results to plot.</text></svg>'
