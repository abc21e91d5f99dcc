"""Strict reading of user-written TOML files (profiles, scenarios) with file:line errors.

tomllib reports lines only for syntax errors; a wrong value found after parsing (an unknown key, a
string where a number belongs, a name that refers to nothing) must still name its line, or a QA
engineer hunts through the file. :class:`KeyLines` finds where each key is written and
:class:`TomlChecker` turns every check into a :class:`FileFormatError` pointing there. Profiles
and scenarios share this so both say where a mistake is in the same words.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from emulator.errors import FileFormatError

KeyPath = tuple[str | int, ...]
"""Where a value sits: table keys and array indexes from the top (``("bearers", 0, "name")``)."""


def read_toml(path: str | os.PathLike[str], what: str) -> tuple[str, dict[str, Any]]:
    """The text and parsed data of a TOML file; any problem is a FileFormatError (``what``: "profile")."""
    label = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise FileFormatError(label, None, f"cannot read {what}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileFormatError(label, raw.count(b"\n", 0, exc.start) + 1, "not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"at line (\d+)", str(exc))
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise FileFormatError(label, int(m.group(1)) if m else None, f"TOML syntax: {reason}") from None
    except RecursionError:  # tomllib recurses once per level of nested arrays and inline tables
        raise FileFormatError(label, _deepest_line(text), f"values nested deeper than {MAX_DEPTH} levels") from None
    deep = _too_deep(data)
    if deep is not None:
        line = KeyLines(text).line_of(deep) or _deepest_line(text)
        raise FileFormatError(label, line, f"{show_key(deep[:8])}...: nested deeper than {MAX_DEPTH} levels")
    return text, data


MAX_DEPTH = 32
"""Deepest nesting of tables and arrays in a profile or scenario (they need 5); deeper is an attack."""

MAX_INT = 2**31 - 1
"""Largest number any field takes (no count, size or time needs more; 99999999999999999999 is a typo
or an attack and would otherwise reach an allocation or a sleep)."""


def _too_deep(data: Any) -> KeyPath | None:
    """The key path of the first value nested deeper than MAX_DEPTH (iterative: no recursion to blow)."""
    stack: list[tuple[Any, KeyPath]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            return path
        if isinstance(value, dict):
            stack.extend((v, (*path, k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(value))
    return None


def _deepest_line(text: str) -> int:
    """The line where bracket nesting (outside quotes, roughly) first passes MAX_DEPTH."""
    depth = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        for ch in line.split("#", 1)[0]:
            depth += ch in "[{"
            depth -= ch in "]}"
            if depth > MAX_DEPTH:
                return lineno
    return 1


class KeyLines:
    """Where each key of a TOML file is written, so checks after parsing can still point at a line.

    This scan understands enough TOML (tables, arrays of tables, dotted and quoted keys, multi-line
    strings) to find a key. Keys inside inline tables resolve to the line of the enclosing key.
    """

    _KEY = re.compile(r"""^((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")

    def __init__(self, text: str) -> None:
        self.lines: dict[KeyPath, int] = {}
        counts: dict[KeyPath, int] = {}
        ctx: KeyPath = ()
        open_quote: str | None = None
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if open_quote:
                if open_quote in line:
                    open_quote = None
                continue
            if not line or line.startswith("#"):
                continue
            if line.startswith("[["):
                key = self._resolve(self._split(line[2 : line.find("]]")]), counts)
                counts[key] = counts.get(key, 0) + 1
                ctx = (*key, counts[key] - 1)
                self.lines.setdefault(ctx, lineno)
                self.lines.setdefault(key, lineno)
            elif line.startswith("["):
                ctx = self._resolve(self._split(line[1 : line.find("]")]), counts)
                self.lines.setdefault(ctx, lineno)
            elif m := self._KEY.match(line):
                self.lines.setdefault((*ctx, *self._split(m.group(1))), lineno)
                rest = line[m.end() :]
                for q in ('"""', "'''"):
                    if rest.count(q) == 1:
                        open_quote = q

    @staticmethod
    def _split(dotted: str) -> tuple[str, ...]:
        parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", dotted)
        return tuple(p[1:-1] if p[0] in "\"'" else p for p in parts)

    @staticmethod
    def _resolve(name: tuple[str, ...], counts: dict[KeyPath, int]) -> KeyPath:
        """Insert the current element index after every array-of-tables name a header goes through."""
        out: list[str | int] = []
        for i, part in enumerate(name):
            out.append(part)
            if i < len(name) - 1 and tuple(out) in counts:
                out.append(counts[tuple(out)] - 1)
        return tuple(out)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path`` or of its nearest written ancestor; 1 for the top level itself."""
        for k in range(len(path), 0, -1):
            line = self.lines.get(path[:k])
            if line is not None:
                return line
        return 1 if not path else None


def show_key(path: KeyPath) -> str:
    """``("bearers", 0, "name")`` -> ``bearers[0].name``, as a user would write it."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out or "the top level"


def type_name(v: Any) -> str:
    """A TOML type name for a parsed value (``table``, ``array``...), for messages."""
    names: dict[type, str] = {dict: "table", list: "array", str: "string"}
    return names.get(type(v), type(v).__name__)


class TomlChecker:
    """Checks on parsed TOML data that fail with the file, the line and the key path."""

    def __init__(self, label: str, text: str) -> None:
        self.label = label
        self.where = KeyLines(text)

    def fail(self, path: KeyPath, reason: str) -> FileFormatError:
        return FileFormatError(self.label, self.where.line_of(path), f"{show_key(path)}: {reason}")

    def keys(self, data: Any, path: KeyPath, allowed: Iterable[str], required: Iterable[str] = ()) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(path, f"expected a table, got {type_name(data)}")
        allowed = tuple(allowed)
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"
                raise self.fail((*path, key), f"unknown key {key!r}{hint}")
        for key in required:
            if key not in data:
                raise self.fail(path, f"missing required key {key!r}")
        return data

    def value(self, data: dict[str, Any], path: KeyPath, key: str, kind: type, default: Any = None, *,
              choices: Iterable[str] | None = None) -> Any:  # fmt: skip
        if key not in data:
            return default
        v = data[key]
        at = (*path, key)
        ok = isinstance(v, kind) and not (kind is int and isinstance(v, bool))
        if kind is float and isinstance(v, int) and not isinstance(v, bool):
            v, ok = float(v), True
        if not ok:
            raise self.fail(at, f"expected {kind.__name__}, got {type_name(v)} {v!r}")
        if kind in (int, float):
            self.finite(at, v)
        if choices is not None and v not in choices:
            raise self.fail(at, f"{v!r} is not one of {', '.join(choices)}")
        return v

    def strings(self, data: dict[str, Any], path: KeyPath, key: str) -> tuple[str, ...]:
        v = data.get(key, [])
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise self.fail((*path, key), f"expected a list of strings, got {v!r}")
        return tuple(v)

    def finite(self, at: KeyPath, v: Any) -> None:
        """Every number of a file: a real number (no nan, no inf) within +-MAX_INT."""
        if isinstance(v, bool) or not isinstance(v, int | float):
            return
        if isinstance(v, float) and not math.isfinite(v):
            raise self.fail(at, f"{v} is not a number this field can take")
        if abs(v) > MAX_INT:
            raise self.fail(at, f"{v} is out of range (at most {MAX_INT})")

    def number_range(self, at: KeyPath, v: float, lo: float, hi: float | None = None) -> None:
        self.finite(at, v)
        if v < lo or (hi is not None and v > hi):
            bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
            raise self.fail(at, f"{v} must be {bound}")

    def list_of(self, top: dict[str, Any], key: str, read: Any) -> tuple[Any, ...]:
        """Read an array of tables (``[[key]]``) with ``read(item, (key, i))``."""
        items = top.get(key, [])
        if not isinstance(items, list):
            raise self.fail((key,), f"expected an array of tables ([[{key}]]), got {type_name(items)}")
        return tuple(read(item, (key, i)) for i, item in enumerate(items))

    def unique(self, items: tuple[Any, ...], key: str, attr: str) -> None:
        seen: set[str] = set()
        for i, item in enumerate(items):
            v = getattr(item, attr)
            if v in seen:
                raise self.fail((key, i, attr), f"{v!r} used twice")
            seen.add(v)
