"""A bar chart of spend per day, drawn on the server as SVG geometry (no chart library and no
JavaScript: it prints, scales and reads the same everywhere)."""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

WIDTH, HEIGHT = 720, 200
LEFT, BOTTOM, TOP = 48, 24, 12  # room for the axis labels


@dataclass(frozen=True)
class Bar:
    day: datetime.date
    usd: Decimal
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class DayChart:
    bars: list[Bar]
    top_usd: Decimal  # the value at the top of the chart
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = HEIGHT - BOTTOM
    top: int = TOP

    @property
    def total_usd(self) -> Decimal:
        return sum((bar.usd for bar in self.bars), Decimal("0"))


def _nice_ceiling(value: Decimal) -> Decimal:
    """The smallest of 1, 2, 5 x 10^n at or above `value` (axis tops that read well)."""
    if value <= 0:
        return Decimal("1")
    step = Decimal(10) ** (len(str(int(value))) - 1) if value >= 1 else Decimal("0.01")
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def day_chart(month: datetime.date, by_day: list[dict[str, Any]]) -> DayChart:
    """One bar per day of `month`, from rows of {"date", "charged_usd"}."""
    days = calendar.monthrange(month.year, month.month)[1]
    spent = {row["date"]: Decimal(row["charged_usd"]) for row in by_day}
    top = _nice_ceiling(max(spent.values(), default=Decimal("0")))
    slot = (WIDTH - LEFT) / days
    plot_height = HEIGHT - BOTTOM - TOP
    bars = []
    for number in range(1, days + 1):
        day = month.replace(day=number)
        usd = spent.get(day, Decimal("0"))
        height = float(usd / top) * plot_height
        bars.append(
            Bar(
                day=day,
                usd=usd,
                x=round(LEFT + (number - 1) * slot + slot * 0.15, 2),
                y=round(HEIGHT - BOTTOM - height, 2),
                width=round(slot * 0.7, 2),
                height=round(height, 2),
            )
        )
    return DayChart(bars=bars, top_usd=top)
