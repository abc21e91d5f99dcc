"""How responsive the window is: launch to a drawn window, and the longest event-loop stall while a
device's tree changes 10,000 times a second. Used by ``tests/benchmarks/test_ui_bench.py`` (and meant
for ``dm-emulator bench --ui``); figures are reported, never asserted.

How the stall is measured: a 5 ms precise QTimer heartbeat records when it runs; the longest gap
between two ticks minus the 5 ms period is the longest time the loop could not react (a user's click
would have waited that long). The load comes from a 10 ms QTimer that replaces as many leaves of the
selected device as the rate asks for by now, so a late tick catches up in a burst, as a busy fleet
in the same loop would. No asyncio: it runs in any Qt event loop, nested ones included.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QEventLoop, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from emulator.events import EventBus
from emulator.fleet.fleet import Fleet
from ui.heap import settle
from ui.mainwindow import MainWindow

HEARTBEAT_MS = 5
LOAD_TICK_MS = 10
RATE = 10_000  # tree changes a second
STALL_TARGET_MS = 50.0
LAUNCH_TARGET_S = 1.5
PLAIN_FORMATS = ("chr",)  # leaves whose value may take any text


@dataclass(frozen=True, slots=True)
class LaunchFigures:
    first_paint_s: float  # MainWindow() called -> first paint event of the window
    drawn_s: float  # MainWindow() called -> shown, events processed, grabbed


@dataclass(frozen=True, slots=True)
class StallFigures:
    longest_stall_ms: float
    p99_gap_ms: float
    changes: int
    seconds: float
    leaves: int
    flushes: int

    @property
    def rate(self) -> float:
        return self.changes / self.seconds if self.seconds else 0.0


def demo_fleet(server: str = "http://127.0.0.1:9") -> Fleet:
    """The desktop demo's devices (nothing runs: no server needed)."""
    from ui.app import DEMO_DEVICES

    fleet = Fleet(server=server, bus=EventBus())
    for profile, count in DEMO_DEVICES:
        fleet.add(profile, count)
    return fleet


class _PaintSeen(QObject):
    def __init__(self, window: QWidget) -> None:
        super().__init__()
        self.window = window
        self.at = 0.0

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if (not self.at and event.type() == QEvent.Type.Paint and isinstance(obj, QWidget)
                and obj.window() is self.window):
            self.at = time.perf_counter()
        return False


def measure_launch(fleet: Fleet, *, timeout_s: float = 10.0) -> tuple[MainWindow, LaunchFigures]:
    """Build, show and draw the main window the way ``dm-emulator gui`` does; the window is returned
    open (the caller closes it)."""
    app = QApplication.instance()
    assert app is not None, "create the QApplication first"
    start = time.perf_counter()
    window = MainWindow(fleet, remember=False)
    fleet.ui = window.ui_handler
    seen = _PaintSeen(window)
    app.installEventFilter(seen)
    try:
        window.fleet_panel.model.sync()
        window.show()
        if fleet.devices:
            window.fleet_panel.select(next(iter(fleet.devices)))
        deadline = start + timeout_s
        while not seen.at and time.perf_counter() < deadline:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        window.grab()
        drawn = time.perf_counter()
    finally:
        app.removeEventFilter(seen)
    first = (seen.at or drawn) - start
    settle()  # as the app does right after its first paint
    return window, LaunchFigures(first_paint_s=first, drawn_s=drawn - start)


def _plain_leaves(window: MainWindow, dev_id: str) -> list[str]:
    """Leaves of the device that take any text, outside its DM accounts; their rows are built."""
    tree = window.fleet.devices[dev_id].tree
    leaves = [i.path for i in tree.walk(".") if i.children is None and i.format in PLAIN_FORMATS
              and "/DMAcc" not in i.path]
    panel = window.tree_panel
    for path in leaves:  # expand down to every changed leaf: the rows repaint and flash
        idx = panel.model.ensure_path(path)
        parent = idx.parent()
        while parent.isValid():
            panel.view.expand(parent)
            parent = parent.parent()
    return leaves


def measure_stall(window: MainWindow, *, seconds: float = 3.0, rate: int = RATE) -> StallFigures:
    """Drive ``rate`` tree changes a second into the selected device for ``seconds``; see the module."""
    ids = window.fleet_panel.selected_ids() or list(window.fleet.devices)
    dev = window.fleet.devices[ids[0]]
    window.select_device(dev.id)
    leaves = _plain_leaves(window, dev.id)
    if not leaves:
        raise ValueError(f"device {dev.id} has no plain leaves to change")
    flushes = [0]
    window.batcher.flushed.connect(lambda _events: flushes.__setitem__(0, flushes[0] + 1))
    ticks: list[float] = []
    done = [0]
    start = time.perf_counter()

    def beat() -> None:
        ticks.append(time.perf_counter())

    def load() -> None:
        due = int((time.perf_counter() - start) * rate)
        n = done[0]
        replace = dev.tree.replace
        while n < due:
            replace(leaves[n % len(leaves)], f"v{n}")
            n += 1
        done[0] = n

    heart = QTimer()
    heart.setTimerType(Qt.TimerType.PreciseTimer)
    heart.setInterval(HEARTBEAT_MS)
    heart.timeout.connect(beat)
    driver = QTimer()
    driver.setTimerType(Qt.TimerType.PreciseTimer)
    driver.setInterval(LOAD_TICK_MS)
    driver.timeout.connect(load)
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    heart.start()
    driver.start()
    ticks.append(time.perf_counter())
    loop.exec()
    heart.stop()
    driver.stop()
    elapsed = time.perf_counter() - start
    gaps = sorted((b - a) * 1000 for a, b in zip(ticks, ticks[1:], strict=False)) or [0.0]
    longest = max(0.0, gaps[-1] - HEARTBEAT_MS)
    p99 = max(0.0, gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))] - HEARTBEAT_MS)
    return StallFigures(longest, p99, done[0], elapsed, len(leaves), flushes[0])


def report(launch: LaunchFigures, stall: StallFigures) -> list[str]:
    """The figures, one line each, with their targets."""
    return [
        f"UI launch to drawn window: {launch.drawn_s * 1000:.0f} ms (first paint {launch.first_paint_s * 1000:.0f} ms; "
        f"target < {LAUNCH_TARGET_S * 1000:.0f} ms)",
        f"UI longest event-loop stall: {stall.longest_stall_ms:.1f} ms (p99 {stall.p99_gap_ms:.1f} ms; "
        f"target < {STALL_TARGET_MS:.0f} ms) under {stall.rate:,.0f} tree changes/s for {stall.seconds:.1f} s "
        f"on {stall.leaves} leaves ({stall.changes:,} changes, {stall.flushes} batches)",
    ]


def measure(seconds: float = 3.0, rate: int = RATE) -> tuple[LaunchFigures, StallFigures]:
    """Both figures in this process (a QApplication is created when there is none, offscreen if no
    display); for ``dm-emulator bench --ui``."""
    import os

    if QApplication.instance() is None:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")  # STACK.md: required as root
        QApplication([])
    window, launch = measure_launch(demo_fleet())
    try:
        stall = measure_stall(window, seconds=seconds, rate=rate)
    finally:
        window.close()
        window.dispose()
        window.deleteLater()
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return launch, stall


def main(args: object) -> int:
    """``dm-emulator bench --ui``: the two figures with their targets (JSON with ``--json``)."""
    import json

    launch, stall = measure()
    if getattr(args, "json", False):
        print(json.dumps({
            "launch_to_drawn_ms": round(launch.drawn_s * 1000, 1),
            "launch_to_first_paint_ms": round(launch.first_paint_s * 1000, 1),
            "longest_stall_ms": round(stall.longest_stall_ms, 1), "p99_gap_ms": round(stall.p99_gap_ms, 1),
            "tree_changes_per_s": round(stall.rate), "seconds": round(stall.seconds, 2),
            "targets": {"launch_ms": LAUNCH_TARGET_S * 1000, "stall_ms": STALL_TARGET_MS},
        }))
    else:
        print("\n".join(report(launch, stall)))
    return 0
