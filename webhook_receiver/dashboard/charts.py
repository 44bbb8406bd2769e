"""The geometry of the dashboard's SVG drawings, computed here and drawn by the templates: a
campaign's progress bar (jobs by status), spend over time against the estimate and the budget,
and estimated against actual spend per model or variant. Pure functions of the figures; each
drawing also comes with the figures as text or a table in the page, for those who cannot see
it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from remixq.timeline import Timeline

BAR_WIDTH = 1000  # the progress bar's viewBox width


@dataclass(frozen=True)
class Segment:
    status: str
    count: int
    x: float
    width: float


def segments(counts: Mapping[str, int], order: Sequence[str]) -> list[Segment]:
    """One segment per status (in `order`), its width its share of the jobs: every status has
    one (zero-wide when none), so that live updates only move them."""
    total = sum(counts.values())
    out, x = [], 0.0
    for status in order:
        count = counts.get(status, 0)
        width = BAR_WIDTH * count / total if total else 0.0
        out.append(Segment(status, count, round(x, 2), round(width, 2)))
        x += width
    return out


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class LineChart:
    """Cumulative spend over time: `path` (an SVG path in the plot's coordinates), the lines of
    the estimate and the budget (a y, or None), and the axes' ticks."""

    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    path: str
    points: list[tuple[float, float]]
    estimate_y: float | None
    budget_y: float | None
    y_ticks: list[Tick]
    x_ticks: list[Tick]


def _nice_max(value: Decimal) -> Decimal:
    """A round number at or above `value` for an axis's top (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for step in (1, 2, 5, 10):
        top = Decimal(step).scaleb(exponent)
        if top >= value:
            return top
    return Decimal(10).scaleb(exponent)


def _money_label(value: Decimal) -> str:
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 1:
        return f"${value:,.2f}"
    return f"${value.normalize():f}"


def _time_label(moment: datetime, span_seconds: float) -> str:
    if span_seconds < 86400:
        return moment.strftime("%H:%M:%S") if span_seconds < 600 else moment.strftime("%H:%M")
    return moment.strftime("%m-%d %H:%M") if span_seconds < 7 * 86400 else moment.strftime("%m-%d")


def spend_line(
    timeline: Timeline,
    *,
    estimated: Decimal,
    budget: Decimal | None,
    width: int = 640,
    height: int = 260,
) -> LineChart | None:
    """Cumulative spend against time, with the estimate and the budget as levels; None before
    the first image."""
    if not timeline.points:
        return None
    left, top, right, bottom = 64, 12, 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    start = timeline.points[0].start.timestamp()
    end = timeline.points[-1].start.timestamp() + timeline.bucket_seconds
    span = max(end - start, 1.0)
    ceiling = _nice_max(max(timeline.total, estimated, budget or Decimal(0)))

    def y(amount: Decimal) -> float:
        return round(plot_h - float(amount / ceiling) * plot_h, 2)

    def x(moment: float) -> float:
        return round((moment - start) / span * plot_w, 2)

    points: list[tuple[float, float]] = [(0.0, float(plot_h))]
    running = Decimal(0)
    for point in timeline.points:
        running += point.cost
        points.append((x(point.start.timestamp() + timeline.bucket_seconds), y(running)))
    path = "M" + " L".join(f"{px},{py}" for px, py in points)
    y_ticks = [Tick(y(ceiling * i / 4), _money_label(ceiling * i / 4)) for i in range(5)]
    x_ticks = []
    for i in range(5):
        moment = start + span * i / 4
        label = _time_label(
            datetime.fromtimestamp(moment, tz=timeline.points[0].start.tzinfo), span
        )
        x_ticks.append(Tick(round(plot_w * i / 4, 2), label))
    return LineChart(
        width=width,
        height=height,
        left=left,
        top=top,
        plot_width=plot_w,
        plot_height=plot_h,
        path=path,
        points=points[1:],
        estimate_y=y(estimated) if estimated > 0 else None,
        budget_y=y(budget) if budget is not None else None,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
    )


@dataclass(frozen=True)
class Bar:
    label: str
    estimated: Decimal
    spent: Decimal
    y: float
    estimated_width: float
    spent_width: float


@dataclass(frozen=True)
class BarChart:
    """Estimated and actual spend per group, as pairs of horizontal bars."""

    width: int
    height: int
    left: int
    plot_width: int
    bar_height: int
    bars: list[Bar]
    ticks: list[Tick]


def spend_bars(
    groups: Sequence[tuple[str, Decimal, Decimal]], *, width: int = 640, label_width: int = 220
) -> BarChart | None:
    """`groups` are (label, estimated, spent); None without any."""
    if not groups:
        return None
    bar_h, gap = 12, 14
    plot_w = width - label_width - 16
    ceiling = _nice_max(max(max(e, s) for _, e, s in groups))

    def w(amount: Decimal) -> float:
        return round(float(amount / ceiling) * plot_w, 2)

    bars = []
    for index, (label, estimated, spent) in enumerate(groups):
        y = index * (2 * bar_h + gap)
        bars.append(Bar(label, estimated, spent, y, w(estimated), w(spent)))
    height = len(groups) * (2 * bar_h + gap) + 24
    ticks = [Tick(round(plot_w * i / 4, 2), _money_label(ceiling * i / 4)) for i in range(5)]
    return BarChart(width, height, label_width, plot_w, bar_h, bars, ticks)
