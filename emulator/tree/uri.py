"""DM URIs (PROTOCOL.md 3.1): the one parser every layer uses, so a path means the same everywhere.

Paths are kept as tuples of segment strings internally; ``"."`` is the empty tuple.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, unquote

from emulator.tree.errors import TreeError

ROOT = "."


@dataclass(frozen=True, slots=True)
class UriLimits:
    """DevDetail/URI limits; 0 means unlimited (violations answer 414)."""

    max_depth: int = 0
    max_tot_len: int = 0
    max_seg_len: int = 0


NO_LIMITS = UriLimits()


@lru_cache(maxsize=1 << 18)
def split(uri: str) -> tuple[str, ...]:
    """``"./A/B"`` or ``"A/B"`` -> ``("A", "B")``; ``"."`` -> ``()``. Raises TreeError(400) when malformed."""
    if uri in (".", ""):
        if uri == "":
            raise TreeError(400, "empty URI", uri=uri)
        return ()
    body = uri[2:] if uri.startswith("./") else uri
    if body.startswith("/") or body.endswith("/"):
        raise TreeError(400, f"URI {uri!r} must not start or end with '/'", uri=uri)
    segments = body.split("/")
    for seg in segments:
        if seg in ("", ".", ".."):
            raise TreeError(400, f"URI {uri!r} has an empty, '.' or '..' segment", uri=uri)
    if "%" in body:
        segments = [unquote(s) for s in segments]
    return tuple(segments)


def join(segments: tuple[str, ...] | list[str]) -> str:
    """The inverse of :func:`split`: ``("A", "B")`` -> ``"./A/B"``."""
    return _join(segments if isinstance(segments, tuple) else tuple(segments))


@lru_cache(maxsize=1 << 18)
def _join(segments: tuple[str, ...]) -> str:
    if not segments:
        return ROOT
    return "./" + "/".join(quote(s, safe="") if ("/" in s or "%" in s) else s for s in segments)


def check_limits(segments: tuple[str, ...], limits: UriLimits, uri: str) -> None:
    """Raise 414 when a URI is longer or deeper than the device says it supports."""
    if limits.max_depth and len(segments) > limits.max_depth:
        raise TreeError(414, f"URI {uri!r} deeper than MaxDepth {limits.max_depth}", uri=uri)
    if limits.max_tot_len and len(join(segments)) > limits.max_tot_len:
        raise TreeError(414, f"URI {uri!r} longer than MaxTotLen {limits.max_tot_len}", uri=uri)
    if limits.max_seg_len:
        for seg in segments:
            if len(seg) > limits.max_seg_len:
                raise TreeError(414, f"segment {seg!r} longer than MaxSegLen {limits.max_seg_len}", uri=uri)


@dataclass(frozen=True, slots=True)
class Query:
    """A DM URI split into its path and its ``?list=`` / ``?prop=`` query."""

    path: str
    prop: str | None = None
    list: str | None = None


def parse_query(uri: str) -> Query:
    """Split ``./A?prop=ACL`` or ``./A?list=TNDS+Value`` (406 for an unknown query field)."""
    if "?" not in uri:
        return Query(uri)
    path, _, query = uri.partition("?")
    field, sep, value = query.partition("=")
    if not sep or not value:
        raise TreeError(400, f"malformed query in {uri!r}", uri=uri)
    if field == "prop":
        return Query(path, prop=value)
    if field == "list":
        return Query(path, list=value)
    raise TreeError(406, f"unsupported query field {field!r} in {uri!r}", uri=uri)
