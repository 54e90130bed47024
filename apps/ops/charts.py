"""Small server-side SVG charts for the operator dashboard and the analytics page: no
JavaScript, no build step."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 560, 190
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 24, 26
COLORS = {
    "sent": "#2e7d32",
    "failed": "#ef6c00",
    "dead": "#c62828",
    "p50": "#1565c0",
    "p95": "#8e24aa",
    "delivered": "#1565c0",
    "opened": "#f9a825",
    "clicked": "#6a1b9a",
    "delivery": "#1565c0",
    "open": "#f9a825",
    "click": "#6a1b9a",
    "email": "#1565c0",
    "sms": "#2e7d32",
    "push": "#ef6c00",
    "inapp": "#8e24aa",
}
# The x axis: hours by default (`09h`, a label every 3rd), or days (`11-30`, `every` 5th, ...).
HOURS = ("%Hh", "%H:00", 3)
DAYS = ("%m-%d", "%Y-%m-%d", 5)


def _nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= value:
        step *= 10
    while step > value:
        step /= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= value:
            return step * factor
    return step * 10  # pragma: no cover


def _fmt(value: float) -> str:
    return f"{value:g}" if value < 1000 else f"{value / 1000:g}k"


def _frame(
    title: str, hours: Sequence[dt.datetime], top: float, unit: str, axis: tuple[str, str, int]
) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}" '
        'font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="14" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" '
            'stroke="#ddd" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#555">'
            f"{_fmt(top * fraction)}{escape(unit)}</text>"
        )
    slot = plot_w / max(len(hours), 1)
    label, _, every = axis
    for i, hour in enumerate(hours):
        if i % every == 0:
            x = LEFT + slot * (i + 0.5)
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle" fill="#555">'
                f"{hour.strftime(label)}</text>"
            )
    return parts


def _legend(names: Sequence[str]) -> list[str]:
    parts, x = [], WIDTH - RIGHT - 70 * len(names)
    for name in names:
        parts.append(
            f'<rect x="{x}" y="5" width="10" height="10" fill="{COLORS.get(name, "#777")}"/>'
        )
        parts.append(f'<text x="{x + 14}" y="14">{escape(name)}</text>')
        x += 70
    return parts


def stacked_bars(
    title: str,
    hours: Sequence[dt.datetime],
    series: Mapping[str, Sequence[float]],
    *,
    axis: tuple[str, str, int] = HOURS,
) -> SafeString:
    """One bar per hour (or day: `axis=DAYS`), the series stacked (e.g. sent / failed / dead)."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(hours))]
    top = _nice_max(max(totals, default=0))
    parts = _frame(title, hours, top, "", axis)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(hours), 1)
    tip = axis[1]
    for i, hour in enumerate(hours):
        base = 0.0
        for name, values in series.items():
            count = values[i]
            if not count:
                continue
            h = plot_h * count / top
            y = TOP + plot_h - base - h
            parts.append(
                f'<rect x="{LEFT + slot * i + 1:.1f}" y="{y:.1f}" width="{slot - 2:.1f}" '
                f'height="{h:.1f}" fill="{COLORS.get(name, "#777")}">'
                f"<title>{hour.strftime(tip)} {escape(name)}: {count:g}</title></rect>"
            )
            base += h
    parts += _legend(list(series))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every dynamic value is escaped above


def lines(
    title: str,
    hours: Sequence[dt.datetime],
    series: Mapping[str, Sequence[float | None]],
    unit: str,
    *,
    axis: tuple[str, str, int] = HOURS,
) -> SafeString:
    """One line per series, a point per hour (or day); hours without data are gaps."""
    values = [v for s in series.values() for v in s if v is not None]
    top = _nice_max(max(values, default=0))
    parts = _frame(title, hours, top, unit, axis)
    tip = axis[1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(hours), 1)
    for name, points in series.items():
        color = COLORS.get(name, "#777")
        segment: list[str] = []
        for i, value in enumerate([*points, None]):
            if value is None:
                if len(segment) > 1:
                    parts.append(
                        f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                        f'points="{" ".join(segment)}"/>'
                    )
                segment = []
                continue
            x, y = LEFT + slot * (i + 0.5), TOP + plot_h * (1 - value / top)
            segment.append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}">'
                f"<title>{hours[i].strftime(tip)} {escape(name)}: {value:.2f}{escape(unit)}"
                "</title>"
                "</circle>"
            )
    parts += _legend(list(series))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every dynamic value is escaped above
