"""Plots where people would rather look than read (Qt Charts): the fleet's sessions per second,
exchange latency percentiles and failures over the last minutes, and the history of a numeric leaf
(battery, signal) of the selected device, as MQTT Explorer charts a topic.

:class:`Timeline` does the counting and knows nothing of Qt (tested on its own); the chart widgets
only draw what it holds, once a second and only while they are on screen.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PySide6.QtCharts import QChart, QChartView, QLineSeries, QValueAxis
from PySide6.QtCore import QDateTime, QMargins, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from emulator.events import RoundTrip, SessionEnded, SessionStarted
from emulator.scenarios.runner import percentile

SPAN_S = 120  # seconds of fleet history kept and shown
REFRESH_MS = 1000
QUANTILES = (50, 90, 99)
X_TICKS = 5
NUMERIC_FORMATS = ("int", "float")


@dataclass
class Second:
    """What happened in one second of wall-clock time."""

    started: int = 0
    completed: int = 0
    failed: int = 0  # sessions that ended other than "completed"
    failed_exchanges: int = 0  # round trips with no answer or an HTTP error
    rtts: list[float] = field(default_factory=list)


class Timeline:
    """Per-second counts of the fleet's sessions and round trips, for the last ``span`` seconds."""

    def __init__(self, span: int = SPAN_S, clock: Callable[[], float] = time.time) -> None:
        self.span = span
        self.clock = clock
        self.seconds: deque[tuple[int, Second]] = deque()

    def _at(self, now: float) -> Second:
        sec = int(now)
        if not self.seconds or self.seconds[-1][0] != sec:
            self.seconds.append((sec, Second()))
            while self.seconds and self.seconds[0][0] <= sec - self.span:
                self.seconds.popleft()
        return self.seconds[-1][1]

    def add(self, events: Sequence[object], now: float | None = None) -> None:
        """Count a batch of events as happening ``now`` (they arrive batched a few ms late)."""
        bucket = None
        for e in events:
            if isinstance(e, SessionStarted | SessionEnded | RoundTrip):
                bucket = bucket or self._at(self.clock() if now is None else now)
                if isinstance(e, SessionStarted):
                    bucket.started += 1
                elif isinstance(e, SessionEnded):
                    if e.outcome == "completed":
                        bucket.completed += 1
                    else:
                        bucket.failed += 1
                else:
                    if e.status == 0 or e.status >= 400 or e.error:
                        bucket.failed_exchanges += 1
                    if e.status:
                        bucket.rtts.append(e.rtt_ms)

    def series(self, now: float | None = None) -> dict[str, list[tuple[float, float]]]:
        """(seconds before now, value) per line, oldest first; seconds with nothing count 0 (the
        latency lines have no point where nothing was answered)."""
        t = int(self.clock() if now is None else now)
        by_sec = dict(self.seconds)
        out: dict[str, list[tuple[float, float]]] = {k: [] for k in (
            "started", "completed", "failed", "failed_exchanges", *(f"p{q}" for q in QUANTILES))}
        for sec in range(t - self.span + 1, t + 1):
            x = float(sec - t)
            s = by_sec.get(sec) or Second()
            out["started"].append((x, s.started))
            out["completed"].append((x, s.completed))
            out["failed"].append((x, s.failed))
            out["failed_exchanges"].append((x, s.failed_exchanges))
            if s.rtts:
                ordered = sorted(s.rtts)
                for q in QUANTILES:
                    out[f"p{q}"].append((x, percentile(ordered, q)))
        return out

    def totals(self) -> Second:
        total = Second()
        for _, s in self.seconds:
            total.started += s.started
            total.completed += s.completed
            total.failed += s.failed
            total.failed_exchanges += s.failed_exchanges
            total.rtts.extend(s.rtts)
        return total


def _nice_max(value: float) -> float:
    """An axis top a little above ``value``: 1, 2, 5 × 10^n."""
    if value <= 0:
        return 1.0
    wanted = value * 1.05  # the power of ten of what is wanted, not of value: 9.6 wants 10.08, so 20
    exp = 10 ** math.floor(math.log10(wanted))
    return next(m * exp for m in (1, 2, 5, 10) if m * exp >= wanted)


def _chart(title: str, y_title: str, lines: Sequence[tuple[str, str, QColor]]) -> tuple[QChartView, dict[str, QLineSeries], QValueAxis, QValueAxis]:
    chart = QChart()
    chart.setTitle(title)
    chart.setMargins(QMargins(2, 2, 2, 2))
    chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
    x_axis, y_axis = QValueAxis(), QValueAxis()
    x_axis.setTitleText("seconds ago")
    x_axis.setLabelFormat("%d")
    y_axis.setTitleText(y_title)
    y_axis.setLabelFormat("%g")
    chart.addAxis(x_axis, Qt.AlignmentFlag.AlignBottom)
    chart.addAxis(y_axis, Qt.AlignmentFlag.AlignLeft)
    series = {}
    for key, name, color in lines:
        s = QLineSeries()
        s.setName(name)
        s.setPen(QPen(color, 2))
        chart.addSeries(s)
        s.attachAxis(x_axis)
        s.attachAxis(y_axis)
        series[key] = s
    view = QChartView(chart)
    view.setRenderHint(QPainter.RenderHint.Antialiasing)
    view.setMinimumHeight(150)
    return view, series, x_axis, y_axis


class FleetPlots(QWidget):
    """Three small charts over the last two minutes: sessions/s, latency percentiles, failures/s."""

    def __init__(self, parent: QWidget | None = None, span: int = SPAN_S) -> None:
        super().__init__(parent)
        self.timeline = Timeline(span)
        self.summary = QLabel("No sessions yet")
        self.summary.setWordWrap(True)
        self.rate_view, self.rate, self._rate_x, self._rate_y = _chart("Sessions per second", "sessions/s", (
            ("started", "started", QColor(40, 120, 220)), ("completed", "completed", QColor(20, 140, 60))))
        self.latency_view, self.latency, self._lat_x, self._lat_y = _chart("Exchange latency", "ms", (
            ("p50", "p50", QColor(20, 140, 60)), ("p90", "p90", QColor(220, 150, 0)),
            ("p99", "p99", QColor(200, 40, 40))))
        self.failure_view, self.failures, self._fail_x, self._fail_y = _chart("Failures per second", "per s", (
            ("failed", "sessions failed", QColor(200, 40, 40)),
            ("failed_exchanges", "exchanges failed", QColor(140, 60, 160))))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.summary)
        for view in (self.rate_view, self.latency_view, self.failure_view):
            layout.addWidget(view, 1)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()

    def apply_events(self, events: Sequence[object]) -> None:
        self.timeline.add(events)

    def refresh(self) -> None:
        """Redraw from the timeline (skipped while hidden: nobody looks, nothing to draw)."""
        if not self.isVisible():
            return
        data = self.timeline.series()
        span = float(self.timeline.span)
        for lines, x_axis, y_axis, keys in (
            (self.rate, self._rate_x, self._rate_y, ("started", "completed")),
            (self.latency, self._lat_x, self._lat_y, tuple(f"p{q}" for q in QUANTILES)),
            (self.failures, self._fail_x, self._fail_y, ("failed", "failed_exchanges")),
        ):
            top = 0.0
            for key in keys:
                points = data[key]
                lines[key].replace([_point(x, y) for x, y in points])
                top = max([top, *(y for _, y in points)])
            x_axis.setRange(-span, 0)
            x_axis.setTickCount(X_TICKS)  # -120, -90, -60, -30, 0
            y_axis.setRange(0, _nice_max(top))
        t = self.timeline.totals()
        ordered = sorted(t.rtts)
        lat = " · ".join(f"p{q} {percentile(ordered, q):.0f} ms" for q in QUANTILES) if ordered else "no answers yet"
        self.summary.setText(f"Last {self.timeline.span} s: {t.started} started · {t.completed} completed · "
                             f"{t.failed} failed · {t.failed_exchanges} exchanges failed · {lat}")


def _point(x: float, y: float):
    from PySide6.QtCore import QPointF

    return QPointF(x, y)


def numeric(value: object) -> float | None:
    """A leaf value as a number, or None (text, binary, an empty leaf)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, bytes):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


class ValueHistoryChart(QWidget):
    """The history of the selected leaf as a line over time, when its values are numbers."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = ""
        self.message = QLabel("Select a numeric leaf (battery, signal …) in the tree to chart its history")
        self.message.setWordWrap(True)
        self.chart = QChart()
        self.chart.setMargins(QMargins(2, 2, 2, 2))
        self.chart.legend().hide()
        self.series = QLineSeries()
        self.series.setPen(QPen(QColor(40, 120, 220), 2))
        self.series.setPointsVisible(True)
        self.chart.addSeries(self.series)
        from PySide6.QtCharts import QDateTimeAxis

        self.x_axis = QDateTimeAxis()
        self.x_axis.setFormat("HH:mm:ss")
        self.x_axis.setTitleText("time")
        self.y_axis = QValueAxis()
        self.y_axis.setLabelFormat("%g")
        self.chart.addAxis(self.x_axis, Qt.AlignmentFlag.AlignBottom)
        self.chart.addAxis(self.y_axis, Qt.AlignmentFlag.AlignLeft)
        self.series.attachAxis(self.x_axis)
        self.series.attachAxis(self.y_axis)
        self.view = QChartView(self.chart)
        self.view.setRenderHint(QPainter.RenderHint.Antialiasing)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.message)
        layout.addWidget(self.view, 1)

    def show_history(self, path: str, points: Sequence[tuple[float, object]]) -> int:
        """Chart ``(time, value)`` points of ``path`` (oldest first); returns how many were numbers."""
        self.path = path
        values = [(ts, n) for ts, v in points if (n := numeric(v)) is not None]
        self.series.replace([_point(ts * 1000.0, n) for ts, n in values])
        if not values:
            self.message.setText(f"{path}: no numeric values to chart" if path else
                                 "Select a numeric leaf (battery, signal …) in the tree to chart its history")
            return 0
        self.chart.setTitle(path)
        first, last = values[0][0], values[-1][0]
        if last - first < 1.0:
            first, last = first - 30, last + 30
        self.x_axis.setRange(QDateTime.fromMSecsSinceEpoch(int(first * 1000)), QDateTime.fromMSecsSinceEpoch(int(last * 1000)))
        low, high = min(n for _, n in values), max(n for _, n in values)
        pad = (high - low) * 0.1 or max(1.0, abs(high) * 0.1)
        self.y_axis.setRange(low - pad, high + pad)
        self.y_axis.applyNiceNumbers()  # round labels
        latest = values[-1][1]
        self.message.setText(f"{path}: {len(values)} values, latest {latest:g} (min {low:g}, max {high:g})")
        return len(values)
