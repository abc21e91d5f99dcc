"""DM 2.0 ClientURI: parsing, formatting and resolution to node paths (PROTOCOL 1.10, 1.12).

Shape: ``<MOID> "/" <mo-inst> ["/" <path-from-moroot>] ["?" <query>]``.

It lives with the tree, not with the DM 2.0 engine, because management objects, delegation scopes,
local applications and scenarios name tree nodes by ClientURI just as the engine does. A malformed
ClientURI is a DecodeError (400), which the engine answers with that status.

The resolver works on an abstract per-instance view (``InstanceView``) rather than the tree
classes, so the device tree, the reference server's copy of uploaded MO data and the tests can all
use it. Project decisions where the public text is silent (1.19):

- Wildcards and x-names are recognised on the *raw* segment; percent-decoding happens after. A
  percent-encoded ``%2A`` or ``%28x%29`` that decodes to ``*`` or an x-name is rejected (400): such a
  node name would be ambiguous with the wildcard syntax, so it is unaddressable.
- A segment shaped ``(...)`` that is not exactly ``(<letter>)`` is a malformed x-name (400).
- Each x-name may appear once in the path, needs at least one ``nv`` and every ``nv`` must name an
  x-name of the path (400). Several ``nv`` for one x-name must all hold (they narrow).
- ``nv=(x)/<relpath>:<value>`` splits at the first ``:`` after ``(x)``: a node name containing ``:``
  must be percent-encoded, a value may contain ``:`` freely. ``nv=(x):<value>`` (empty relpath)
  tests the bound node's own value. relpath holds plain names only (no ``*``, no x-names).
- Unknown query fields are ignored (forward compatibility); a second ``cv`` is a 400.
- A trailing ``/`` after a path is ignored; empty segments inside a path (``a//b``) are a 400; a bare
  MOID without ``/`` is not a ClientURI (400). A fragment (``#``) is a 400.
- Percent-escapes must be well formed and decode to UTF-8 (400 otherwise). Raw spaces and
  non-ASCII are tolerated (servers send them); control characters are a 400.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from emulator.errors import DecodeError, EmulatorError

WILDCARD = "*"
_XNAME = re.compile(r"\([A-Za-z]\)")
_HEX = "0123456789abcdefABCDEF"
# Characters kept literal when formatting a segment: RFC 3986 unreserved plus the sub-delims and
# ":"/"@" that have no meaning inside a ClientURI path; "(", ")", "*" are encoded.
_SEGMENT_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$'+,;=:@")
_QUERY_SAFE = _SEGMENT_SAFE - {"&", "+", ";", "="} | {"/", "?", "(", ")", "*"}


class ResolveError(EmulatorError):
    """A ClientURI that names no node (or not exactly one instance where one is required)."""

    status = 404


class NameValue(NamedTuple):
    """One ``nv`` constraint: the node bound to ``xname`` has ``value`` at ``relpath`` below it."""

    xname: str
    relpath: tuple[str, ...]
    value: str


@dataclass(frozen=True, slots=True)
class ClientURI:
    """A parsed ClientURI.

    ``instance``: ``""`` (the only instance), ``"*"`` (all), ``"(x)"`` (bound through nv) or a MIID.
    ``path`` segments are node names, ``"*"`` or x-names; ``()`` is the instance root.
    """

    moid: str
    instance: str
    path: tuple[str, ...] = ()
    nv: tuple[NameValue, ...] = ()
    cv: str | None = None

    @property
    def xnames(self) -> tuple[str, ...]:
        """The x-names used by instance and path, in order."""
        return tuple(s for s in (self.instance, *self.path) if is_xname(s))

    @property
    def is_instance_root(self) -> bool:
        return not self.path

    def __str__(self) -> str:
        return unparse_client_uri(self)


def is_xname(segment: str) -> bool:
    return _XNAME.fullmatch(segment) is not None


def _percent_decode(text: str, what: str) -> str:
    if "%" not in text:
        return text
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                raise DecodeError(f"bad percent-escape in {what}: {text!r}")
            out.append(int(pair, 16))
            i += 3
        else:
            out += c.encode("utf-8")
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"percent-escapes in {what} are not UTF-8: {text!r}") from exc


_CONTROL = re.compile("[\x00-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _percent_encode(text: str, safe: frozenset[str]) -> str:
    if safe.issuperset(text):  # (most names: nothing to escape, no walk per character)
        return text
    return "".join(c if c in safe else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in text)


def _name(raw: str, what: str) -> str:
    """A literal node name or MIID from a raw segment (decoded, not a wildcard look-alike)."""
    if raw.startswith("(") and raw.endswith(")"):
        raise DecodeError(f"malformed x-name {raw!r} in {what}: must be '(' letter ')'")
    name = _percent_decode(raw, what)
    if name == WILDCARD or is_xname(name):
        raise DecodeError(f"{what}: percent-encoded {raw!r} would be read as wildcard syntax")
    return name


def _segment(raw: str, what: str) -> str:
    if raw == WILDCARD or is_xname(raw):
        return raw
    return _name(raw, what)


def _parse_nv(raw: str, text: str) -> NameValue:
    head, sep, value = raw.partition(":")
    if not sep:
        raise DecodeError(f"nv without ':<value>' in {text!r}")
    xname, _, rel = head.partition("/")
    if not is_xname(xname):
        raise DecodeError(f"nv must start with an x-name like '(x)': {raw!r}")
    relpath: tuple[str, ...] = ()
    if rel:
        parts = rel.split("/")
        if any(not p or p == WILDCARD or is_xname(p) for p in parts):
            raise DecodeError(f"nv path must be plain node names: {raw!r}")
        relpath = tuple(_name(p, "nv path") for p in parts)
    return NameValue(xname, relpath, _percent_decode(value, "nv value"))


def parse_client_uri(text: str) -> ClientURI:
    """Parse a ClientURI; DecodeError (400) on any syntax problem (see module doc)."""
    if not isinstance(text, str):
        raise DecodeError("ClientURI must be a string")
    if "#" in text:
        raise DecodeError(f"ClientURI must not have a fragment: {text!r}")
    if _CONTROL.search(text):
        raise DecodeError(f"ClientURI contains a control character: {text!r}")
    if _SURROGATE.search(text):  # not UTF-8: could never be sent or echoed
        raise DecodeError(f"ClientURI contains a lone surrogate: {text!r}")
    body, has_query, query = text.partition("?")
    moid, sep, rest = body.partition("/")
    if not sep:
        raise DecodeError(f"ClientURI needs '<MOID>/<instance>/...': {text!r}")
    if not moid:
        raise DecodeError(f"ClientURI has an empty MOID: {text!r}")
    raw_inst, _, raw_path = rest.partition("/")
    instance = _segment(raw_inst, "instance") if raw_inst else ""
    parts = raw_path.split("/") if raw_path else []
    if parts and parts[-1] == "":
        parts.pop()  # trailing '/'
    if any(not p for p in parts):
        raise DecodeError(f"empty path segment in ClientURI {text!r}")
    path = tuple(_segment(p, "path") for p in parts)

    nv: list[NameValue] = []
    cv: str | None = None
    if has_query:
        for field in query.split("&"):
            if not field:
                continue
            name, eq, value = field.partition("=")
            if name == "nv":
                if not eq:
                    raise DecodeError(f"nv without value in {text!r}")
                nv.append(_parse_nv(value, text))
            elif name == "cv":
                if cv is not None:
                    raise DecodeError(f"more than one cv in {text!r}")
                if not eq:
                    raise DecodeError(f"cv without value in {text!r}")
                cv = _percent_decode(value, "cv")

    used = [s for s in (instance, *path) if is_xname(s)]
    if len(set(used)) != len(used):
        raise DecodeError(f"x-name used twice in {text!r}")
    constrained = {c.xname for c in nv}
    for x in used:
        if x not in constrained:
            raise DecodeError(f"x-name {x} has no nv constraint in {text!r}")
    for x in constrained:
        if x not in used:
            raise DecodeError(f"nv names {x}, which is not in the path of {text!r}")
    return ClientURI(moid=moid, instance=instance, path=path, nv=tuple(nv), cv=cv)


def _format_segment(segment: str) -> str:
    if segment == WILDCARD or is_xname(segment):
        return segment
    return _percent_encode(segment, _SEGMENT_SAFE)


def format_client_uri(moid: str, miid: str, path: tuple[str, ...] | list[str] = ()) -> str:
    """The ClientURI of one node: ``MOID/MIID/a/b``; the instance root ends with ``/``.

    ``miid=""`` gives the single-instance form (``urn:oma:mo:oma-dm-devinfo:1.2//FwV``). Names are
    percent-encoded where needed; wildcards and x-names pass through, so this also builds patterns.
    """
    head = f"{moid}/{_format_segment(miid) if miid else ''}/"
    return head + "/".join(_format_segment(s) for s in path)


def unparse_client_uri(uri: ClientURI) -> str:
    """Inverse of parse_client_uri (query included): ``parse(unparse(u)) == u``."""
    text = format_client_uri(uri.moid, uri.instance, uri.path)
    fields = []
    for c in uri.nv:
        rel = "".join("/" + _percent_encode(p, _SEGMENT_SAFE - {":"}) for p in c.relpath)
        fields.append(f"nv={c.xname}{rel}:{_percent_encode(c.value, _QUERY_SAFE)}")
    if uri.cv is not None:
        fields.append(f"cv={_percent_encode(uri.cv, _QUERY_SAFE)}")
    return text + ("?" + "&".join(fields) if fields else "")


# --- resolution -----------------------------------------------------------------------------------


class Missing:
    """Type of MISSING; a class so that it prints helpfully and is its own type for hints."""

    _instance: Missing | None = None

    def __new__(cls) -> Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING = Missing()
"""Returned by InstanceView.value for a path where no node exists."""


class InstanceView(Protocol):
    """Read-only view of one MO instance, paths relative to the instance root (``()`` = root).

    ``child_names(path)``: names of the children of the interior node at ``path``, in a stable
    order; None when ``path`` is a leaf or does not exist.
    ``value(path)``: the leaf value as text; None for an interior node or a leaf without value;
    MISSING when no node exists at ``path``. The root ``()`` always exists.
    """

    def child_names(self, path: tuple[str, ...]) -> list[str] | None: ...

    def value(self, path: tuple[str, ...]) -> str | None | Missing: ...


class DictInstanceView:
    """InstanceView over nested dicts: dict = interior node, anything else = leaf value.

    Leaf values other than str/None are shown as text (bool as "true"/"false") so that ``nv``
    comparisons work on MO data decoded from JSON. Used by tests and by the reference server for
    uploaded MO data.
    """

    __slots__ = ("root",)

    def __init__(self, root: Mapping[str, object]) -> None:
        self.root = root

    def _node(self, path: tuple[str, ...]) -> object:
        node: object = self.root
        for name in path:
            if not isinstance(node, Mapping) or name not in node:
                return MISSING
            node = node[name]
        return node

    def child_names(self, path: tuple[str, ...]) -> list[str] | None:
        node = self._node(path)
        return list(node) if isinstance(node, Mapping) else None

    def value(self, path: tuple[str, ...]) -> str | None | Missing:
        node = self._node(path)
        if node is MISSING:
            return MISSING
        if node is None or isinstance(node, Mapping):
            return None
        if isinstance(node, bool):
            return "true" if node else "false"
        return node if isinstance(node, str) else str(node)


def _satisfies(view: InstanceView, path: tuple[str, ...], constraints: list[NameValue]) -> bool:
    return all(view.value(path + c.relpath) == c.value for c in constraints)


def resolve(uri: ClientURI, instances: Mapping[str, InstanceView]) -> list[tuple[str, tuple[str, ...]]]:
    """All (MIID, path-in-instance) pairs the ClientURI names, in instance then child order.

    ``instances`` holds the instances of ``uri.moid`` only (MIID -> view) that the caller lets this
    server see. Raises ResolveError (404) when the result would be empty, or when the instance is
    the empty string and there is not exactly one instance.
    """
    constraints: dict[str, list[NameValue]] = {}
    for c in uri.nv:
        constraints.setdefault(c.xname, []).append(c)

    if uri.instance == "":
        if len(instances) != 1:
            raise ResolveError(
                f"{uri}: empty instance needs exactly one instance of {uri.moid}, found {len(instances)}"
            )
        chosen = list(instances)
    elif uri.instance == WILDCARD:
        chosen = list(instances)
    elif is_xname(uri.instance):
        wanted = constraints.get(uri.instance, [])
        chosen = [m for m, view in instances.items() if _satisfies(view, (), wanted)]
    else:
        chosen = [uri.instance] if uri.instance in instances else []

    matches: list[tuple[str, tuple[str, ...]]] = []
    for miid in chosen:
        view = instances[miid]
        frontier: list[tuple[str, ...]] = [()]
        for segment in uri.path:
            step: list[tuple[str, ...]] = []
            for prefix in frontier:
                if segment == WILDCARD or is_xname(segment):
                    children = view.child_names(prefix) or []
                    wanted = constraints.get(segment, [])
                    step.extend(
                        prefix + (child,) for child in children if _satisfies(view, prefix + (child,), wanted)
                    )
                elif view.value(prefix + (segment,)) is not MISSING:
                    step.append(prefix + (segment,))
            frontier = step
            if not frontier:
                break
        matches.extend((miid, path) for path in frontier)
    if not matches:
        raise ResolveError(f"{uri}: no node matches")
    return matches
