"""Figures beside their ceilings, as a plain-text table."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Figure:
    bench: str
    name: str
    value: float
    unit: str
    ceiling: float | None = None
    ceiling_name: str = ""
    target: str = ""
    met: bool | None = None
    load: str = ""
    note: str = ""

    @property
    def ratio(self) -> str:
        if self.ceiling is None or not self.ceiling or math.isnan(self.value):
            return ""
        return f"{self.value / self.ceiling:.0%}"


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
    return f"{text} {unit}".strip()


def table(figures: list[Figure]) -> str:
    headers = ["bench", "figure", "value", "ceiling (same run)", "ratio", "target", "met", "load"]
    rows = [
        [
            f.bench,
            f.name,
            fmt(f.value, f.unit),
            (f"{fmt(f.ceiling, f.unit)} {f.ceiling_name}".strip() if f.ceiling is not None else ""),
            f.ratio,
            f.target,
            "" if f.met is None else ("yes" if f.met else "NO"),
            f.load,
        ]
        for f in figures
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "-" * len(line)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    notes = [f"  [{f.bench}/{f.name}] {f.note}" for f in figures if f.note]
    return "\n".join(out + (["", "notes:", *notes] if notes else []))
