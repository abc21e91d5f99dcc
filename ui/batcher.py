"""Events from the bus, delivered to the window in batches.

Why: the bus dispatches synchronously, and a busy fleet publishes thousands of tree changes a
second. Repainting per event would freeze the window; collecting them and flushing every ~40 ms
keeps the UI at a steady frame rate whatever the load, and lets models coalesce changes.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from emulator.events import Event, EventBus
from ui.signals import emit

FLUSH_MS = 40
# Past this many queued events the oldest tree changes are dropped from the batch (the models re-read
# the tree anyway); other events are never dropped.
MAX_QUEUE = 200_000


class EventBatcher(QObject):
    """Queues bus events and emits them as one list per flush (``flushed``)."""

    flushed = Signal(list)

    def __init__(self, bus: EventBus, interval_ms: int = FLUSH_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: list[Event] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)
        self._unsubscribe: Callable[[], None] | None = bus.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        self._queue.append(event)
        if len(self._queue) > MAX_QUEUE:
            del self._queue[: len(self._queue) - MAX_QUEUE]
        if not self._timer.isActive():
            self._timer.start()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def flush(self) -> None:
        """Deliver what is queued now (also called by tests instead of waiting for the timer)."""
        self._timer.stop()
        events, self._queue = self._queue, []
        if events:
            emit(self.flushed, events)

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._timer.stop()
        self._queue.clear()
