"""Whether a text value fits a node's Format: the one check TNDS import and the window's edits share.

The tree stores DM 1.x-style text (``"42"``, ``"true"``), so a value of the wrong shape would sit in
a node whose Format promises something else and break whoever reads it (a DM 2.0 server decoding
``bool``, a TNDS re-import). The typed formats are checked here; ``b64`` must be base64 and ``null``
holds nothing; text formats (chr, xml, date, time) take any text, as the DM specifications leave
their content to the MO.
"""

from __future__ import annotations

import base64
import binascii
import math
import re

_INT = re.compile(r"[+-]?\d{1,20}")


def _is_int(text: str) -> bool:
    return bool(_INT.fullmatch(text)) and -(2**63) <= int(text) < 2**64


def _is_float(text: str) -> bool:
    try:
        return len(text) <= 64 and math.isfinite(float(text))
    except ValueError:
        return False


TYPED = {"int": _is_int, "bool": lambda t: t.lower() in ("true", "false"), "float": _is_float}
"""Formats whose text has a shape, each with its test (on the stripped text)."""
TYPED_HINT = {"int": "a whole number of at most 64 bits", "bool": "true or false",
              "float": "a finite decimal number"}


def value_problem(fmt: str, value: str | bytes | None) -> str | None:
    """What is wrong with ``value`` for a node of Format ``fmt`` (a sentence), or None when it fits."""
    fmt = fmt.lower()
    if fmt == "node":
        return "an interior node holds no value"
    if value is None or isinstance(value, bytes):
        return None if fmt != "null" or not value else "a null node holds no value"
    text = value.strip()
    if fmt == "null":
        return None if not text else f"a null node holds no value, got {value[:40]!r}"
    if fmt in TYPED and not TYPED[fmt](text):
        return f"{value[:40]!r} is not a valid {fmt} ({TYPED_HINT[fmt]})"
    if fmt == "b64" and text:
        try:
            base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            return f"{value[:40]!r} is not base64 (Format b64)"
    return None
