"""The fleet list's Download cell painted as a progress bar: a short bar, then the text beside it
(never on the fill, where it would be hard to read), blue while it runs, green once complete, red
up to where a failed download stopped.

Why a delegate: a bar widget per row would be 100,000 widgets; a delegate paints the rows on screen
only, from :data:`ui.fleet_model.DownloadRole`.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from ui.device_ops import Download
from ui.fleet_model import DownloadRole

BAR_WIDTH = 40  # pixels, at most a third of the cell
BAR_HEIGHT = 8
MARGIN = 4
TRACK_COLOR = QColor(220, 224, 230)


def bar_rect(cell: QRect) -> QRect:
    """Where the bar goes in a cell: at its left, centred vertically."""
    width = max(0, min(BAR_WIDTH, (cell.width() - 2 * MARGIN) // 3))
    return QRect(cell.left() + MARGIN, cell.center().y() - BAR_HEIGHT // 2 + 1, width, BAR_HEIGHT)


class DownloadBarDelegate(QStyledItemDelegate):
    """Paints :class:`~ui.device_ops.Download` cells (others as usual)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        download = index.data(DownloadRole)
        if not isinstance(download, Download):
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        text, opt.text = opt.text, ""
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)  # background, selection
        cell = opt.rect
        bar = bar_rect(cell)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(TRACK_COLOR)
        painter.drawRoundedRect(bar, 3, 3)
        fraction = download.fraction
        if fraction is not None and fraction > 0:
            fill = QRect(bar)
            fill.setWidth(max(2, round(bar.width() * fraction)))
            painter.setBrush(download.color())
            painter.drawRoundedRect(fill, 3, 3)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        color = opt.palette.color(QPalette.ColorRole.HighlightedText) if selected else download.color()
        painter.setPen(color)
        room = QRect(bar.right() + 1 + MARGIN, cell.top(), max(0, cell.right() - bar.right() - 2 * MARGIN),
                     cell.height())
        shown = opt.fontMetrics.elidedText(text, Qt.TextElideMode.ElideRight, room.width())
        painter.drawText(room, int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), shown)
        painter.restore()
