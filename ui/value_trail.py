"""The tree's Value cell while a leaf flashes: its value as usual, then, dimmed beside it, the values
it passed through just before (``60   was 30 → 40 → 50``), so a leaf that moves through several
states within one batch (a FUMO ``State``) is seen to go through each, not to jump.

Why beside the value and not instead of it: the value stays what the row says, copies and edits;
the trail is only painted (:data:`ui.tree_model.TrailRole`), and only while the row flashes.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from ui.tree_model import TrailRole

GAP = 12  # pixels between the value and its trail
TEXT_MARGIN = 4  # the style's margin before a cell's text
MIN_ROOM = 24  # less room than this beside the value: no trail


def trail_text(values: list[str]) -> str:
    return "was " + " → ".join(values) if values else ""


class ValueTrailDelegate(QStyledItemDelegate):
    """Paints the trail of a flashing leaf after its value (see the module doc)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        super().paint(painter, option, index)
        values = index.data(TrailRole)
        if not values:
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        metrics = opt.fontMetrics
        start = opt.rect.left() + TEXT_MARGIN + metrics.horizontalAdvance(opt.text) + GAP
        room = QRect(start, opt.rect.top(), opt.rect.right() - start - TEXT_MARGIN, opt.rect.height())
        if room.width() < MIN_ROOM:
            return
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        color = opt.palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.PlaceholderText)
        painter.save()
        painter.setPen(color)
        shown = metrics.elidedText(trail_text(values), Qt.TextElideMode.ElideLeft, room.width())
        painter.drawText(room, int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), shown)
        painter.restore()
