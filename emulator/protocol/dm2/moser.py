"""DM 2.0 MO serialization: the JSON that carries MO data (PROTOCOL 1.11, 1.19 items 2-3).

Used for HGET/HPUT/HPOST/SUB bodies and, by project rule, inside GET status entries. A body is an
array of ``{"DDF"?, "ClientURI", "CV"?, "MOData"}`` objects. MOData mirrors the node hierarchy
below the addressed node: it holds that node under its own name (``{"FwV": "1.0.3"}``; for an
instance root the MO root name, ``{"DevInfo": {...}}``); objects are interior nodes, other values
are leaves typed by DM format (1.19 item 3).

Decisions: a single object where an array is expected is accepted as a one-element array (a
lenient reading of servers that send one MO); arrays inside MOData are a 400 (no node shape);
node names must be non-empty and contain no ``/``. ``from_json_value`` also accepts a JSON string
for int/float/bool when it parses as that type, because DM 1.x servers send every value as text.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.errors import DecodeError
from emulator.protocol.dm2 import jsonsafe

FORMATS = frozenset({"b64", "bin", "bool", "chr", "int", "node", "null", "xml", "date", "time", "float"})
_TEXT_FORMATS = frozenset({"chr", "xml", "date", "time"})

NodeValue = str | bytes | None
"""A leaf value as the tree holds it: text, raw bytes (bin/b64) or no value."""
FormatOf = Callable[[tuple[str, ...]], str | None]
"""Maps a path inside MOData (top key first) to its DM format, or None when unknown."""


@dataclass(slots=True)
class MOSerialization:
    """One MO serialization object. ``mo_data`` is the typed JSON object (see module doc)."""

    client_uri: str
    mo_data: dict[str, Any]
    ddf: str | None = None
    cv: str | None = None


def mos_to_json(items: list[MOSerialization]) -> list[dict[str, Any]]:
    """JSON-ready list (for embedding in a Package#3 status entry or a body)."""
    out = []
    for item in items:
        obj: dict[str, Any] = {}
        if item.ddf is not None:
            obj["DDF"] = item.ddf
        obj["ClientURI"] = item.client_uri
        if item.cv is not None:
            obj["CV"] = item.cv
        obj["MOData"] = item.mo_data
        out.append(obj)
    return out


def encode_mos(items: list[MOSerialization]) -> bytes:
    return jsonsafe.dumps(mos_to_json(items))


def validate_mo_data(node: Any, where: str = "MOData") -> dict[str, Any]:
    """Check that parsed JSON has the MOData shape (objects and scalar leaves); returns it."""
    if not isinstance(node, dict):
        raise DecodeError(f"{where}: MOData must be an object")
    stack: list[tuple[Mapping[str, Any], str]] = [(node, where)]
    while stack:
        current, at = stack.pop()
        for name, child in current.items():
            if not name or "/" in name:
                raise DecodeError(f"{at}: invalid node name {name!r}")
            if isinstance(child, dict):
                stack.append((child, f"{at}/{name}"))
            elif child is not None and not isinstance(child, str | int | float | bool):
                raise DecodeError(f"{at}/{name}: a node is an object or a value, not {type(child).__name__}")
    return node



def mos_from_json(obj: Any, *, what: str = "MO serialization") -> list[MOSerialization]:
    """Validate already-parsed JSON (an array, or one object) into MOSerialization items."""
    if isinstance(obj, dict):
        obj = [obj]
    if not isinstance(obj, list):
        raise DecodeError(f"{what}: expected an array of MO serialization objects")
    items = []
    for index, entry in enumerate(obj):
        where = f"{what}[{index}]"
        if not isinstance(entry, dict):
            raise DecodeError(f"{where}: expected an object")
        client_uri = entry.get("ClientURI")
        if not isinstance(client_uri, str) or not client_uri:
            raise DecodeError(f"{where}: ClientURI (string) is required")
        if "MOData" not in entry:
            raise DecodeError(f"{where}: MOData (object) is required")
        mo_data = validate_mo_data(entry["MOData"], f"{where}.MOData")
        items.append(
            MOSerialization(
                client_uri=client_uri,
                mo_data=mo_data,
                ddf=jsonsafe.optional_str(entry, "DDF", where),
                cv=jsonsafe.optional_str(entry, "CV", where),
            )
        )
    return items


def decode_mos(data: bytes, *, max_size: int = jsonsafe.DEFAULT_MAX_SIZE) -> list[MOSerialization]:
    """Decode an MO serialization body; DecodeError (400) / TooLargeError (413) on bad input."""
    return mos_from_json(jsonsafe.loads(data, max_size=max_size, what="MO serialization"))


# --- leaf values ----------------------------------------------------------------------------------


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise DecodeError(f"unknown DM format {fmt!r}")


def to_json_value(value: NodeValue, fmt: str) -> Any:
    """Typed JSON for a leaf value of DM format ``fmt`` (1.19 item 3).

    A stored value that does not fit its format (e.g. "abc" in an int leaf) raises DecodeError
    with status 500: the fault is in our tree, not in the peer's message.
    """
    _check_format(fmt)
    if fmt == "node":
        raise DecodeError("an interior node has no leaf value", status=500)
    if value is None or fmt == "null":
        return None
    if fmt in ("bin", "b64"):
        if isinstance(value, str):
            if fmt == "b64":
                return value  # the tree already holds the base64 text
            value = value.encode("utf-8")
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"{fmt} value is not UTF-8 text", status=500) from exc
    if fmt in _TEXT_FORMATS:
        return value
    text = value.strip()
    if fmt == "bool":
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise DecodeError(f"stored bool value {value!r} is neither true nor false", status=500)
    try:
        if fmt == "int":
            if len(text) > jsonsafe.MAX_NUMBER_CHARS:
                raise ValueError("too long")
            return int(text)
        number = float(text)
    except ValueError as exc:
        raise DecodeError(f"stored {fmt} value {value!r} is not a number", status=500) from exc
    if not math.isfinite(number):
        raise DecodeError(f"stored float value {value!r} has no JSON form", status=500)
    return number


def _number_text(v: Any, fmt: str) -> str:
    """Canonical text of an int/float given as JSON number or numeric string."""
    if isinstance(v, bool):
        raise DecodeError(f"expected {fmt}, got a boolean")
    if isinstance(v, str):
        try:
            v = int(v.strip()) if fmt == "int" else float(v.strip())
        except ValueError as exc:
            raise DecodeError(f"expected {fmt}, got {v!r}") from exc
    if fmt == "int":
        if not isinstance(v, int):
            raise DecodeError(f"expected int, got {v!r}")
        return str(v)
    if not isinstance(v, int | float) or not math.isfinite(v):
        raise DecodeError(f"expected float, got {v!r}")
    return repr(float(v)) if isinstance(v, float) else str(v)


def from_json_value(v: Any, fmt: str) -> NodeValue:
    """Tree value for a JSON leaf of DM format ``fmt``; DecodeError (400) on a type mismatch.

    Text formats give str, bin/b64 give the decoded bytes, null gives None; int/float/bool give
    their canonical text ("42", "1.5", "true") because the tree stores DM 1.x-style text.
    """
    _check_format(fmt)
    if fmt == "node":
        raise DecodeError("expected an interior node (object), got a value")
    if v is None:
        return None
    if isinstance(v, dict | list):
        raise DecodeError(f"expected a {fmt} value, got {type(v).__name__}")
    if fmt == "null":
        raise DecodeError(f"a null node has no value, got {v!r}")
    if fmt in _TEXT_FORMATS:
        if not isinstance(v, str):
            raise DecodeError(f"expected {fmt} text, got {v!r}")
        return v
    if fmt in ("bin", "b64"):
        if not isinstance(v, str):
            raise DecodeError(f"expected base64 text for {fmt}, got {v!r}")
        try:
            return base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecodeError(f"invalid base64 for {fmt}: {exc}") from exc
    if fmt == "bool":
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str) and v.strip().lower() in ("true", "false"):
            return v.strip().lower()
        raise DecodeError(f"expected bool, got {v!r}")
    return _number_text(v, fmt)


def _natural(v: Any) -> NodeValue:
    """Tree value for a leaf whose format is unknown: keep text, render numbers and booleans."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def decode_mo_data(mo_data: Mapping[str, Any], format_of: FormatOf | None = None) -> dict[str, Any]:
    """Nested dict of tree values (str | bytes | None leaves) from typed MOData.

    ``format_of(path)`` gives the DDF format of a node (path from the top MOData key); None (or no
    ``format_of``) means unknown and the value is taken as text. A value where the DDF says
    ``node``, or an object where it says a leaf format, is a DecodeError naming the path.
    """
    out: dict[str, Any] = {}
    stack: list[tuple[Mapping[str, Any], dict[str, Any], tuple[str, ...]]] = [(mo_data, out, ())]
    while stack:
        src, dst, prefix = stack.pop()
        for name, child in src.items():
            path = (*prefix, name)
            fmt = format_of(path) if format_of else None
            if isinstance(child, dict):
                if fmt not in (None, "node"):
                    raise DecodeError(f"{'/'.join(path)}: DDF format is {fmt}, got an interior node")
                dst[name] = {}
                stack.append((child, dst[name], path))
                continue
            try:
                dst[name] = _natural(child) if fmt is None else from_json_value(child, fmt)
            except DecodeError as exc:
                raise DecodeError(f"{'/'.join(path)}: {exc}", status=exc.status) from exc
    return out


def encode_mo_data(values: Mapping[str, Any], format_of: FormatOf | None = None) -> dict[str, Any]:
    """Typed MOData from a nested dict of tree values (inverse of decode_mo_data).

    Unknown formats (None) keep text as text and base64-encode bytes.
    """
    out: dict[str, Any] = {}
    stack: list[tuple[Mapping[str, Any], dict[str, Any], tuple[str, ...]]] = [(values, out, ())]
    while stack:
        src, dst, prefix = stack.pop()
        for name, child in src.items():
            path = (*prefix, name)
            if isinstance(child, Mapping):
                dst[name] = {}
                stack.append((child, dst[name], path))
                continue
            fmt = format_of(path) if format_of else None
            if fmt is None:
                fmt = "bin" if isinstance(child, bytes) else "chr"
            try:
                dst[name] = to_json_value(child, fmt)
            except DecodeError as exc:
                raise DecodeError(f"{'/'.join(path)}: {exc}", status=exc.status) from exc
    return out
