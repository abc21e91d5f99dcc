"""Progress for work that takes more than a moment: jobs cut into time slices, and the sessions bar.

Why slices and not a thread: devices and trees belong to the event loop (the fleet is not
thread-safe), so long work (adding thousands of devices, re-pointing them at another server) runs
in the loop in slices of at most :data:`SLICE_S`; between slices the window repaints and stays
usable. Why a non-modal dialog: a modal QProgressDialog runs a nested event loop in ``setValue``,
which would re-enter qasync's callbacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QProgressDialog, QWidget

from emulator.fleet.fleet import Fleet
from ui.signals import emit

SLICE_S = 0.03  # one slice of work: the window repaints at least ~30 times a second
BAR_WIDTH = 90  # the sessions bar: its words go in ``caption`` beside it, never over its fill
BAR_HEIGHT = 12
SHOW_AFTER_S = 0.2  # shorter jobs finish without a dialog flashing up


class ChunkedJob(QObject):
    """``step(done, n)`` does units ``done .. done+n-1`` of ``total`` and returns how many it did.

    ``start()`` runs the first slice at once, so a small job is over when it returns; a longer one
    goes on from the event loop and shows a progress dialog (with Cancel) after :data:`SHOW_AFTER_S`.
    ``finished(done, cancelled)`` is emitted once at the end, and ``error(text)`` when a step raised
    (the job stops there).
    """

    finished = Signal(int, bool)
    error = Signal(str)

    def __init__(self, parent: QWidget, label: str, total: int, step: Callable[[int, int], int], *,
                 chunk: int = 50) -> None:
        super().__init__(parent)
        self.label = label
        self.total = total
        self.step = step
        self.chunk = max(1, chunk)
        self.done = 0
        self.cancelled = False
        self.running = False
        self.dialog: QProgressDialog | None = None
        self._parent = parent
        self._started = 0.0

    def start(self) -> ChunkedJob:
        self.running = True
        self._started = time.monotonic()
        self._slice()
        return self

    def cancel(self) -> None:
        self.cancelled = True

    def _slice(self) -> None:
        end = time.monotonic() + SLICE_S
        try:
            while self.done < self.total and not self.cancelled:
                did = self.step(self.done, min(self.chunk, self.total - self.done))
                self.done += max(1, did)
                if time.monotonic() >= end:
                    break
        except Exception as exc:  # noqa: BLE001 - shown to the user; the job cannot go on
            emit(self.error, str(exc))
            self.cancelled = True
        if self.done >= self.total or self.cancelled:
            self._finish()
            return
        if self.dialog is None and time.monotonic() - self._started >= SHOW_AFTER_S:
            self._show_dialog()
        if self.dialog is not None:
            self.dialog.setValue(self.done)
        QTimer.singleShot(0, self, self._slice)  # not called once the job (its window) is gone

    def _show_dialog(self) -> None:
        d = self.dialog = QProgressDialog(self.label, "Cancel", 0, self.total, self._parent)
        d.setWindowTitle("dm-emulator")
        d.setWindowModality(Qt.WindowModality.NonModal)
        d.setMinimumDuration(0)
        d.setAutoClose(False)
        d.setAutoReset(False)
        d.canceled.connect(self.cancel)
        d.show()

    def _finish(self) -> None:
        self.running = False
        if self.dialog is not None:
            self.dialog.canceled.disconnect(self.cancel)
            self.dialog.close()
            self.dialog.deleteLater()
            self.dialog = None
        emit(self.finished, self.done, self.cancelled)


class SessionProgress(QProgressBar):
    """A status-bar bar for the current wave of sessions: shown while any runs, "done/started" in
    ``caption``, a label beside it (the status bar holds both; they show and hide together): text
    drawn over a bar's fill is half on blue, half on grey, and hard to read.

    A wave starts when sessions run after none did; sessions started during the wave join it.
    """

    def __init__(self, fleet: Fleet, parent: QWidget | None = None, interval_ms: int = 250, *,
                 waiting: Callable[[], int] = lambda: 0) -> None:
        super().__init__(parent)
        self.fleet = fleet
        self.waiting = waiting  # sessions that wait for the user: they cannot end by themselves
        self.caption = QLabel()
        self.setFixedSize(BAR_WIDTH, BAR_HEIGHT)
        self.setFormat("%v/%m sessions")
        self.setTextVisible(False)
        self.setToolTip("Sessions of the current wave that have ended / all started in it")
        self.hide()
        self._base: int | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()

    def refresh(self) -> None:
        st = self.fleet.stats
        finished = st.sessions_completed + st.sessions_failed
        if st.running <= 0:
            self._base = None
            self.hide()
            return
        if self._base is None:
            self._base = finished
        self.setRange(0, st.sessions_started - self._base)
        self.setValue(finished - self._base)
        waiting = self.waiting()
        self.setFormat(f"%v/%m sessions · {waiting} wait for you" if waiting else "%v/%m sessions")
        self.caption.setText(self.text())
        self.setToolTip("Sessions of the current wave that have ended / all started in it"
                        + (f"; {waiting} of those running wait for you (a page or a question: see "
                           "“Waiting for you” in the fleet)" if waiting else ""))
        self.caption.setToolTip(self.toolTip())
        self.show()

    def setVisible(self, visible: bool) -> None:  # noqa: N802 - Qt's name; show() and hide() come here
        super().setVisible(visible)
        self.caption.setVisible(visible)

    def stop(self) -> None:
        self._timer.stop()
