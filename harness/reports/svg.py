"""Charts as inline SVG strings: no script, no network, legible in any browser offline.

Three shapes cover every report: a line chart on a linear x axis (time,
participants), a line chart on HdrHistogram's percentile axis (x is
log10(1 / (1 - percentile)), so 90%, 99%, 99.9% are evenly spaced), and
stacked bars (errors by code over time).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f")
WIDTH, HEIGHT = 600, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 30, 16, 58

Point = tuple[float, float | None]


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[Point]  # y None: a gap
    color: str
    dashed: bool = False


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1.0001) + 1)]


def latency_unit(max_us: float) -> tuple[str, float]:
    """The unit a latency axis reads best in, and µs per unit."""
    if max_us < 2_000:
        return "µs", 1.0
    if max_us < 2_000_000:
        return "ms", 1_000.0
    return "s", 1_000_000.0


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) and abs(value) < 1e6 else f"{value:.3g}"


def percentile_x(percentile: float, cap: float) -> float:
    remaining = 1 - percentile / 100
    return cap if remaining <= 10**-cap else -math.log10(remaining)


def percentile_label(x: float) -> str:
    return "0%" if x == 0 else f"{100 - 10 ** (2 - x):.{max(0, int(x) - 2)}f}%"


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_ticks: Sequence[tuple[float, str]] | None = None,
    y_scale: float = 1.0,
    x_range: tuple[float, float] | None = None,
    markers: bool = False,
    integer_x: bool = False,
    stage_marks: Sequence[dict[str, Any]] = (),
) -> str:
    """Lines in one chart; y values are divided by ``y_scale`` for display.

    ``stage_marks`` (``{"name", "offset"}``, x values) draw where each stage began.
    """
    xs = [x for s in series for x, y in s.points if y is not None]
    ys = [y / y_scale for s in series for _, y in s.points if y is not None]
    if not xs:
        return _empty(title, "no data")
    x_low, x_high = x_range or (min(xs), max(xs))
    if x_high <= x_low:
        x_high = x_low + 1
    y_ticks = nice_ticks(0, max(ys) * 1.05 or 1)
    y_high = y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x_low) / (x_high - x_low) * plot_w

    def sy(y: float) -> float:
        return TOP + plot_h - y / y_high * plot_h

    ticks = x_ticks or [
        (t, _number(t))
        for t in nice_ticks(x_low, x_high, 6)
        if t <= x_high and (t == int(t) or not integer_x)
    ]
    parts = [_frame(title)]
    parts += _grid(ticks, y_ticks, sx, sy, plot_w, plot_h)
    for s in series:
        paths, run = [], []
        for x, y in s.points:
            if y is None:
                if run:
                    paths.append(run)
                run = []
            else:
                run.append(f"{sx(x):.1f},{sy(y / y_scale):.1f}")
        if run:
            paths.append(run)
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        for run in paths:
            if len(run) == 1:  # a lone point would draw nothing as a path
                cx, cy = run[0].split(",")
                parts.append(f'<circle class="series" cx="{cx}" cy="{cy}" r="3" fill="{s.color}"/>')
                continue
            parts.append(
                f'<path class="series" d="M{" L".join(run)}" fill="none" stroke="{s.color}" '
                f'stroke-width="2" stroke-linejoin="round"{dash}>'
                f"<title>{escape(s.name)}</title></path>"
            )
        if markers:
            for x, y in s.points:
                if y is not None:
                    parts.append(
                        f'<circle cx="{sx(x):.1f}" cy="{sy(y / y_scale):.1f}" r="3.5" '
                        f'fill="{s.color}"><title>{escape(s.name)}: {_number(y / y_scale)}</title>'
                        "</circle>"
                    )
    parts += _stage_marks(stage_marks, sx, x_low, x_high)
    parts.append(_axis_labels(x_label, y_label))
    parts.append(_legend(series))
    parts.append("</svg>")
    return "".join(parts)


def _stage_marks(
    marks: Sequence[dict[str, Any]], sx: Callable[[float], float], x_low: float, x_high: float
) -> list[str]:
    """A dashed line and the stage's name where each stage of the run began."""
    parts = []
    for mark in marks:
        if not x_low <= mark["offset"] <= x_high:
            continue
        x = sx(mark["offset"])
        parts.append(
            f'<g class="stage-mark"><line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" '
            f'y2="{HEIGHT - BOTTOM}" stroke="#7c3aed" stroke-dasharray="3 3"/>'
            f'<text x="{x + 3:.1f}" y="{TOP + 10}" class="tick" fill="#7c3aed">'
            f"{escape(mark['name'])}</text></g>"
        )
    return parts


def percentile_chart(series: Sequence[Series], *, title: str) -> str:
    """Latency by percentile on HdrHistogram's log percentile axis; points are (pct, µs)."""
    finite = [p for s in series for p, _ in s.points if p < 100]
    deepest = max((percentile_x(p, 9) for p in finite), default=2)
    cap = max(3.0, math.ceil(deepest + 0.01))
    ys = [y for s in series for _, y in s.points if y is not None]
    unit, scale = latency_unit(max(ys, default=0))
    mapped = [
        Series(s.name, [(percentile_x(p, cap), y) for p, y in s.points], s.color, s.dashed)
        for s in series
    ]
    ticks = [(float(x), percentile_label(x)) for x in range(int(cap) + 1)]
    return line_chart(
        mapped,
        title=title,
        x_label="percentile",
        y_label=f"latency ({unit})",
        x_ticks=ticks,
        y_scale=scale,
        x_range=(0, cap),
    )


def stacked_bars(
    offsets: Sequence[float], stacks: dict[str, Sequence[int]], *, title: str, y_label: str
) -> str:
    if not offsets or not stacks or not any(any(v) for v in stacks.values()):
        return _empty(title, "no errors")
    totals = [sum(values[i] for values in stacks.values()) for i in range(len(offsets))]
    y_ticks = nice_ticks(0, max(totals) * 1.05)
    y_high = y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    x_low, x_high = min(offsets), max(offsets) + 1
    bar = plot_w / (x_high - x_low)

    def sx(x: float) -> float:
        return LEFT + (x - x_low) / (x_high - x_low) * plot_w

    def sy(y: float) -> float:
        return TOP + plot_h - y / y_high * plot_h

    ticks = [(t, _number(t)) for t in nice_ticks(x_low, x_high, 6) if t <= x_high and t == int(t)]
    parts = [_frame(title), *_grid(ticks, y_ticks, sx, sy, plot_w, plot_h)]
    series = []
    base = [0] * len(offsets)
    for n, (code, values) in enumerate(sorted(stacks.items())):
        color = PALETTE[(n + 1) % len(PALETTE)]
        series.append(Series(code, [], color))
        for i, value in enumerate(values):
            if value:
                top = sy(base[i] + value)
                parts.append(
                    f'<rect class="series" x="{sx(offsets[i]) + 0.5:.1f}" y="{top:.1f}" '
                    f'width="{max(bar - 1, 1):.1f}" height="{sy(base[i]) - top:.1f}" '
                    f'fill="{color}"><title>{escape(code)}: {value} at {offsets[i]:g} s</title>'
                    "</rect>"
                )
                base[i] += value
    parts += [_axis_labels("seconds into the run", y_label), _legend(series), "</svg>"]
    return "".join(parts)


def _frame(title: str) -> str:
    return (
        f'<svg class="chart" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">'
        f"<title>{escape(title)}</title>"
    )


def _grid(
    x_ticks: Sequence[tuple[float, str]],
    y_ticks: Sequence[float],
    sx: Callable[[float], float],
    sy: Callable[[float], float],
    plot_w: float,
    plot_h: float,
) -> list[str]:
    parts = [
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fff" '
        'stroke="#cbd5e1"/>'
    ]
    for y in y_ticks:
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" '
            'stroke="#e2e8f0"/>'
            f'<text x="{LEFT - 6}" y="{sy(y) + 4:.1f}" text-anchor="end" class="tick">'
            f"{_number(y)}</text>"
        )
    for x, label in x_ticks:
        parts.append(
            f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
            'stroke="#e2e8f0"/>'
            f'<text x="{sx(x):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" class="tick">'
            f"{escape(label)}</text>"
        )
    return parts


def _axis_labels(x_label: str, y_label: str) -> str:
    middle_y = TOP + (HEIGHT - TOP - BOTTOM) / 2
    return (
        f'<text x="{LEFT + (WIDTH - LEFT - RIGHT) / 2}" y="{HEIGHT - 26}" text-anchor="middle" '
        f'class="axis">{escape(x_label)}</text>'
        f'<text transform="translate(14 {middle_y}) rotate(-90)" text-anchor="middle" '
        f'class="axis">{escape(y_label)}</text>'
    )


def _legend(series: Sequence[Series]) -> str:
    parts, x = [], LEFT
    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        parts.append(
            f'<line x1="{x}" x2="{x + 18}" y1="{HEIGHT - 8}" y2="{HEIGHT - 8}" stroke="{s.color}" '
            f'stroke-width="3"{dash}/><text x="{x + 22}" y="{HEIGHT - 4}" class="legend">'
            f"{escape(s.name)}</text>"
        )
        x += 30 + 7 * len(s.name)
    return "".join(parts)


def _empty(title: str, message: str) -> str:
    return (
        f'<svg class="chart empty" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} 80" width="{WIDTH}" height="80"><title>{escape(title)}</title>'
        f'<text x="{WIDTH / 2}" y="45" text-anchor="middle" class="axis">{escape(message)}</text>'
        "</svg>"
    )
