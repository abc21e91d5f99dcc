"""The plots: the fleet's sessions/s, latency percentiles and failures over time, and the value
history of a numeric leaf, as drawn from real events."""

from __future__ import annotations

import pytest

from emulator.events import RoundTrip, SessionEnded, SessionStarted
from ui.plots import Timeline, _nice_max, numeric


def _trip(rtt: float, status: int = 200) -> RoundTrip:
    return RoundTrip("d", "s", "message", "POST", "u", status, rtt, 10, "" if status else "refused")


def test_timeline_counts_per_second_and_percentiles():
    now = [1000.0]
    t = Timeline(span=10, clock=lambda: now[0])
    t.add([SessionStarted("d", "s1", "dm2", "srv"), SessionStarted("d", "s2", "dm2", "srv")])
    t.add([_trip(float(ms)) for ms in range(1, 101)])
    now[0] = 1001.5
    t.add([SessionEnded("d", "s1", "completed"), SessionEnded("d", "s2", "failed", "refused"), _trip(0, 0)])
    data = t.series()
    assert len(data["started"]) == 10 and data["started"][-1] == (0.0, 0)
    assert data["started"][-2] == (-1.0, 2)
    assert data["completed"][-1] == (0.0, 1) and data["failed"][-1] == (0.0, 1)
    assert data["failed_exchanges"][-1] == (0.0, 1)
    assert data["p50"] == [(-1.0, 50.0)] and data["p90"] == [(-1.0, 90.0)] and data["p99"] == [(-1.0, 100.0)]  # nearest rank (scenarios.runner.percentile)
    now[0] = 1020.0
    t.add([SessionStarted("d", "s3", "dm2", "srv")])
    assert t.totals().started == 1  # older seconds are forgotten
    assert all(y == 0 for _, y in t.series()["completed"])


def test_numeric_values():
    assert numeric("87") == 87.0 and numeric(" -3.5 ") == -3.5 and numeric(12) == 12.0
    assert numeric("abc") is None and numeric(b"\x01") is None and numeric(None) is None
    assert numeric(True) is None and numeric("nan") is None


def test_fleet_plots_dock_draws_the_lines(window, qtbot):
    from PySide6.QtCore import Qt

    plots = window.plots
    dock = window.docks["plots"]
    assert dock.windowTitle() == "Fleet plots"
    assert "Fleet plots" in [a.text() for a in window.view_menu.actions()]
    dock.show()
    dock.raise_()
    window.fleet.bus.publish(SessionStarted("d", "s1", "dm2", "srv"))
    window.fleet.bus.publish(_trip(40.0))
    window.fleet.bus.publish(SessionEnded("d", "s1", "failed", "refused"))
    qtbot.waitUntil(lambda: plots.timeline.totals().started == 1, timeout=3000)
    plots.refresh()
    assert max(p.y() for p in plots.rate["started"].points()) == 1
    assert [p.y() for p in plots.latency["p50"].points()] == [40.0]
    assert max(p.y() for p in plots.failures["failed"].points()) == 1
    assert "1 started" in plots.summary.text() and "1 failed" in plots.summary.text()
    assert plots.rate_view.chart().title() == "Sessions per second"
    assert dock.isVisible() and Qt  # drawn in a visible dock


def test_value_history_charts_a_numeric_leaf(window, qtbot):
    dev = next(iter(window.fleet.devices.values()))
    window.fleet_panel.select(dev.id)
    leaf = next(i.path for i in dev.tree.walk(".") if i.children is None and i.format in ("int", "float"))
    for v in ("10", "20", "15"):
        dev.tree.replace(leaf, v, by=None)
    qtbot.waitUntil(lambda: len(window.tree_panel.model.history(leaf)) == 3, timeout=3000)
    assert window.tree_panel.select_path(leaf)
    window.chart_value(leaf)
    chart = window.value_chart
    assert window.docks["value-history"].isVisible()
    assert [p.y() for p in chart.series.points()][-3:] == [10.0, 20.0, 15.0]
    assert "latest 15" in chart.message.text()
    assert window.tree_panel.select_path("./DevInfo/Man")  # text: nothing to chart, and it says so
    window.chart_value("./DevInfo/Man")
    assert "no numeric values" in chart.message.text()



@pytest.mark.parametrize("value", [0.0, 0.5, 1.0, 9.6, 9.99, 10.0, 96.0, 123.0, 4.9, 49_000.0])
def test_an_axis_top_is_a_round_number_above_any_value(value):
    """9.6 and the like (within 5 % under a power of ten) once raised StopIteration in the Qt loop."""
    top = _nice_max(value)
    assert top >= value * 1.05 or (value == 0 and top == 1.0)
    assert float(f"{top:.0e}") == top and int(f"{top:.0e}"[0]) in (1, 2, 5)
