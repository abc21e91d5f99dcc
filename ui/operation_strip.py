"""The selected device's management operation, above its tree in the Device dock: what runs (``FUMO
DownloadAndUpdate: 30 Download Progressing``) or how it ended (``...: 200 Successful``, green, or a
failure in red), and its download as a bar with the bytes, the rate and the resumptions after a cut.

Hidden for a device that ran no operation since the window opened. It reads the fleet list's
:class:`ui.device_ops.DeviceOps`, so the fleet row and this strip always say the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from emulator.device.virtual import VirtualDevice
from emulator.events import OperationChanged, TransferProgress
from ui.device_ops import DeviceOps, state_leaf
from ui.signals import emit

BAR_WIDTH = 160
BAR_HEIGHT = 10
BAR_STYLE = ("QProgressBar { border: none; border-radius: 3px; background: #dce0e6; }"
             "QProgressBar::chunk { border-radius: 3px; background: COLOR; }")


class OperationStrip(QFrame):
    """See the module doc; ``show_state(path)`` asks the window to select the operation's State leaf."""

    show_state = Signal(str)

    def __init__(self, ops: DeviceOps, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ops = ops
        self.device: VirtualDevice | None = None
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.operation = QLabel("")
        self.operation.setStyleSheet("font-weight: bold")
        self.operation.setWordWrap(True)  # a long result takes a second line, not the dock's width
        self.state_button = QPushButton("Show State")
        self.state_button.setToolTip("Select the leaf the operation moves through its states in")
        self.state_button.clicked.connect(self._show_state)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)  # the words go beside the bar, where they read on any fill
        self.bar.setRange(0, 1000)
        self.bar.setFixedSize(BAR_WIDTH, BAR_HEIGHT)
        self._bar_color = ""
        self.download = QLabel("")
        self.download.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.operation, 1)
        top.addWidget(self.state_button)
        self.bar_row = QWidget()
        row = QHBoxLayout(self.bar_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar)
        row.addWidget(self.download, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.bar_row)
        self.hide()

    def show_device(self, device: VirtualDevice | None) -> None:
        self.device = device
        self.refresh()

    def apply_events(self, events: Sequence[object]) -> None:
        dev = self.device
        if dev is not None and any(isinstance(e, TransferProgress | OperationChanged) and e.device_id == dev.id
                                   for e in events):
            self.refresh()

    def refresh(self) -> None:
        dev = self.device
        op = self.ops.operation(dev.id) if dev is not None else None
        download = self.ops.download(dev.id) if dev is not None else None
        if op is None and download is None:
            self.hide()
            return
        if op is not None:
            self.operation.setText(op.text())
            self.operation.setToolTip(op.tooltip())
            self.operation.setStyleSheet(f"font-weight: bold; color: {op.color().name()}")
        else:
            self.operation.setText("Download")
        self.state_button.setVisible(op is not None and self._leaf() is not None)
        self.bar_row.setVisible(download is not None)
        if download is not None:
            fraction = download.fraction
            if fraction is None:
                self.bar.setRange(0, 0)  # size not known yet: a busy bar
            else:
                self.bar.setRange(0, 1000)
                self.bar.setValue(round(fraction * 1000))
            color = download.color().name()
            if color != self._bar_color:
                self._bar_color = color
                self.bar.setStyleSheet(BAR_STYLE.replace("COLOR", color))
            self.download.setText(download.text())
            self.download.setToolTip(download.tooltip())
            self.bar.setToolTip(download.tooltip())
        self.show()

    def _leaf(self) -> str | None:
        dev = self.device
        op = self.ops.operation(dev.id) if dev is not None else None
        return state_leaf(dev.tree, op.node) if dev is not None and op is not None else None

    def _show_state(self) -> None:
        leaf = self._leaf()
        if leaf is not None:
            emit(self.show_state, leaf)
