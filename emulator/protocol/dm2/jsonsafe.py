"""Hardened JSON reading and compact JSON writing for every DM 2.0 body.

The bodies come from servers, data repositories and clients we do not control, so the stdlib parser
gets guards it lacks: a size limit (413); a nesting limit (the C parser stops itself with a
RecursionError near 1000 levels, which we turn into a DecodeError; shallower excess is measured on
the result by an iterative walk: a regex pre-scan for brackets outside strings is quadratic on
adversarial escapes); no NaN/Infinity (not JSON, and they break round trips); bounded number
literals (a 100k-digit integer costs quadratic time).
Every failure is a DecodeError/TooLargeError, never a bare ValueError.
"""

from __future__ import annotations

import json
import math
from typing import Any

from emulator.errors import DecodeError, TooLargeError

DEFAULT_MAX_SIZE = 1 << 20
"""Default body limit in bytes (1 MiB): far above any real DM 2.0 package, far below a memory problem."""

MAX_DEPTH = 64
"""Deepest array/object nesting accepted; an MO needs far fewer levels."""

MAX_NUMBER_CHARS = 40
"""Longest accepted number literal; a 64-bit integer needs 20."""


def _check_tree(root: Any, what: str) -> None:
    """Nesting depth and string sanity of a parsed document, walked iteratively (no recursion).

    JSON ``\\ud800`` escapes decode to lone surrogates that cannot be encoded back to UTF-8; left in,
    they would crash whatever echoes the string (a status URI, the traffic log).
    """
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            _check_strings(node.keys(), what)
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > MAX_DEPTH:
            raise DecodeError(f"{what}: JSON nested deeper than {MAX_DEPTH} levels")
        _check_strings(children, what)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    if isinstance(root, str):
        _check_strings([root], what)


def _check_strings(items: Any, what: str) -> None:
    for item in items:
        if isinstance(item, str) and not item.isascii():
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise DecodeError(f"{what}: string with an unpaired surrogate escape") from exc


def _parse_int(literal: str) -> int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise DecodeError(f"number literal too long ({len(literal)} characters)")
    return int(literal)


def _parse_float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise DecodeError(f"number literal too long ({len(literal)} characters)")
    value = float(literal)
    if math.isinf(value):
        raise DecodeError(f"number out of range: {literal}")
    return value


def _reject_constant(name: str) -> Any:
    raise DecodeError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: with a repeated key, which value wins depends on the
    parser (Python keeps the last, others the first), so a server and a device could act on
    different commands; RFC 8259 leaves it open, a DM package has no use for it: refused."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DecodeError(f"duplicate key {key!r} in an object")
            seen.add(key)
    return obj


def loads(data: bytes | str, *, max_size: int = DEFAULT_MAX_SIZE, what: str = "JSON body") -> Any:
    """Parse untrusted JSON; ``what`` names the body in error messages (e.g. "Package#2")."""
    if len(data) > max_size:
        raise TooLargeError(f"{what}: {len(data)} bytes exceeds the limit of {max_size}")
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"{what}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    else:
        text = data
    try:
        obj = json.loads(
            text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
        )
    except DecodeError as exc:
        raise DecodeError(f"{what}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DecodeError(
            f"{what}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    except RecursionError as exc:
        raise DecodeError(f"{what}: JSON nested deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:
        raise DecodeError(f"{what}: invalid JSON ({exc})") from exc
    _check_tree(obj, what)
    return obj


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON; NaN/Infinity are refused so every body we send is strict JSON."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def optional_str(obj: dict[str, Any], key: str, where: str) -> str | None:
    """``obj[key]`` when it is a string or absent/null; DecodeError naming ``where`` otherwise."""
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise DecodeError(f"{where}: {key} must be a string")
    return value
