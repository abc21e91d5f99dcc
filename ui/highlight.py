"""Syntax colours for the decoded message in the detail pane: XML (tags, attributes, values,
comments) and JSON (keys, strings, numbers, literals). Line by line with regular expressions: the
text is the pretty-printed form :func:`emulator.protocol.traffic.describe` makes, one element or
member per line, so no state is carried between lines except inside XML comments."""

from __future__ import annotations

import re

from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat, QTextDocument


def _fmt(color: str, *, bold: bool = False, italic: bool = False) -> QTextCharFormat:
    f = QTextCharFormat()
    f.setForeground(QColor(color))
    if bold:
        f.setFontWeight(QFont.Weight.Bold)
    f.setFontItalic(italic)
    return f


TAG = _fmt("#1f5fa8", bold=True)
ATTRIBUTE = _fmt("#8a4baf")
STRING = _fmt("#1b7f3b")
KEY = _fmt("#a0522d", bold=True)
NUMBER = _fmt("#b35900")
LITERAL = _fmt("#8a4baf", bold=True)
COMMENT = _fmt("#7a7a7a", italic=True)

XML_RULES = (
    (re.compile(r"</?[\w:.-]+|/?>"), TAG),
    (re.compile(r"\s([\w:.-]+)="), ATTRIBUTE),
    (re.compile(r"\"[^\"]*\"|'[^']*'"), STRING),
)
JSON_RULES = (
    (re.compile(r"-?\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b"), NUMBER),
    (re.compile(r"\b(?:true|false|null)\b"), LITERAL),
    (re.compile(r"\"(?:[^\"\\]|\\.)*\""), STRING),
    (re.compile(r"\"(?:[^\"\\]|\\.)*\"(?=\s*:)"), KEY),
)
IN_COMMENT = 1


class MessageHighlighter(QSyntaxHighlighter):
    """Colours XML and JSON lines; other lines (the header, hex dumps) stay plain."""

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)

    def highlightBlock(self, text: str) -> None:
        self.setCurrentBlockState(0)
        start = 0
        if self.previousBlockState() == IN_COMMENT:
            end = text.find("-->")
            if end < 0:
                self.setFormat(0, len(text), COMMENT)
                self.setCurrentBlockState(IN_COMMENT)
                return
            self.setFormat(0, end + 3, COMMENT)
            start = end + 3
        stripped = text.lstrip()
        if stripped.startswith("<") or "</" in text:
            self._rules(text, XML_RULES, start)
            for m in re.finditer(r"<!--", text[start:]):
                begin = start + m.start()
                end = text.find("-->", begin)
                if end < 0:
                    self.setFormat(begin, len(text) - begin, COMMENT)
                    self.setCurrentBlockState(IN_COMMENT)
                    break
                self.setFormat(begin, end + 3 - begin, COMMENT)
        elif stripped[:1] in ("{", "}", "[", "]", '"') or re.match(r"^\s+(\"|-?\d|true|false|null)", text):
            self._rules(text, JSON_RULES, start)

    def _rules(self, text: str, rules: tuple[tuple[re.Pattern[str], QTextCharFormat], ...], start: int) -> None:
        for pattern, fmt in rules:
            for m in pattern.finditer(text, start):
                group = 1 if pattern.groups else 0
                self.setFormat(m.start(group), m.end(group) - m.start(group), fmt)
