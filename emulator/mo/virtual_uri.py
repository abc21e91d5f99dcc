"""DM 1.3 virtual URIs: a DM 1.x command's LocURI naming nodes by MO identifier, not by tree path.

DM 1.3 (ERELD 4.3, "Virtual URI based addressing and enhanced DM structural query") lets a server
address a management object by its MOID wherever the device keeps it. The DM 1.3 TND text that
defines the syntax was not reachable (README "How DM 1.3 is read here"), so the project reads it as
the DM 2.0 ClientURI it became (PROTOCOL 1.10) and parses and resolves it with the one ClientURI
implementation, :mod:`emulator.tree.clienturi` [P]:

    <MOID> "/" <instance> ["/" <path below the instance root>] ["?" <query>]

- A LocURI is virtual when it starts with ``urn:`` (a tree URI is ``.``, ``./...`` or a relative path
  whose first node name does not start so); only a DM 1.3 device reads it so.
- The instances of a MOID are the interior nodes whose Type is that MOID, outside ``./DM2`` (the DM 2.0
  objects of a converged device) and ``./Inbox``; an instance's MIID is its node name. ``<instance>`` is
  that MIID, empty (there must be exactly one instance: else 404), ``*`` (every instance) or an x-name
  ``(x)`` chosen by ``nv=(x)/<relpath>:<value>``; path segments may be ``*`` or x-names too.
- Query fields: ``nv`` (any number), and at most one DM 1.x ``list=`` or ``prop=`` (the structural
  queries of PROTOCOL 3.6, answered for every node the URI resolves to: the "enhanced structural
  query"). Any other field is 406, as for a tree URI.
- ``.`` and ``..`` segments, raw or percent-encoded, are 400 (a tree URI refuses them too); the
  ClientURI rules give 400 for an empty segment inside the path and ignore one trailing ``/``.
- Limits: the URI before ``?`` counts against MaxTotLen and each instance/path segment (decoded)
  against MaxSegLen (414); the MOID is an identifier, not a node name, and is not held to MaxSegLen.
  The node it resolves to is then held to the limits like any tree URI.
- Writes (Add, Replace, Delete, Exec, Copy) need exactly one node: several are 406 (a write through a
  pattern is not supported), none 404. An Add names the node to create: its last segment is a plain
  name and everything before it must resolve to one existing node; an Add of a whole instance
  (``<MOID>/<new MIID>``) is 405: a new MO instance is added through ``./Inbox``.

Resolution sees what the server may see: existence is not hidden (as in DM 1.2, a 404 and a 425 differ
anyway), but an ``nv`` never matches a value the server may not Get.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.errors import DecodeError, EmulatorError, UnsupportedError
from emulator.mo.instances import TreeInstanceView
from emulator.tree import Tree, TreeError
from emulator.tree import uri as uris
from emulator.tree.clienturi import WILDCARD, is_xname, parse_client_uri, resolve

Path = tuple[str, ...]
SCHEME = "urn:"
SKIPPED: tuple[Path, ...] = (("DM2",), ("Inbox", ""))
"""Where typed nodes are not DM 1.x MO instances: ``./DM2`` and below (the DM 2.0 side), anything below
``./Inbox`` (``""`` stands for any name)."""
_DOTS = frozenset({".", ".."})


def is_virtual(uri: str) -> bool:
    """Whether a DM 1.3 device reads ``uri`` as a virtual (MOID-based) URI."""
    return uri.startswith(SCHEME)


@dataclass(frozen=True, slots=True)
class Resolved:
    """The tree nodes a virtual URI names and the DM 1.x query to apply to each (``""``: none)."""

    paths: tuple[Path, ...]
    query: str

    def targets(self) -> list[str]:
        """Each node as the tree URI a DM 1.2 command would carry (query included)."""
        tail = f"?{self.query}" if self.query else ""
        return [uris.join(p) + tail for p in self.paths]


def instances(tree: Tree, moid: str) -> dict[str, Path]:
    """MIID -> path of every DM 1.x instance of ``moid``, in tree order (the first of two same-named wins)."""
    found: dict[str, Path] = {}
    for segs, typ in tree.interior_types("."):
        if typ == moid and segs and not any(_under(segs, s) for s in SKIPPED):
            found.setdefault(segs[-1], segs)
    return found


def _under(segs: Path, prefix: Path) -> bool:
    return len(segs) >= len(prefix) and all(p in ("", s) for p, s in zip(prefix, segs, strict=False))


def _split_query(uri: str) -> tuple[str, str]:
    """(the ClientURI without the DM 1.x query field, that field or "")."""
    body, has_query, query = uri.partition("?")
    if not has_query:
        return body, ""
    kept: list[str] = []
    dm1: list[str] = []
    for field in query.split("&"):
        name = field.partition("=")[0]
        if name == "nv":
            kept.append(field)
        elif name in ("list", "prop"):
            dm1.append(field)
        elif field:
            raise UnsupportedError(f"unsupported query field {name!r} in {uri!r}")
    if len(dm1) > 1:
        raise UnsupportedError(f"at most one list= or prop= in {uri!r}")
    return body + ("?" + "&".join(kept) if kept else ""), dm1[0] if dm1 else ""


def _check(uri: str, body: str, instance: str, path: Path, tree: Tree) -> None:
    for seg in (instance, *path):
        if seg in _DOTS:
            raise DecodeError(f"virtual URI {uri!r} has a '.' or '..' segment")
    limits = tree.limits
    head = body.partition("?")[0]
    if limits.max_tot_len and len(head) > limits.max_tot_len:
        raise TreeError(414, f"URI {uri!r} longer than MaxTotLen {limits.max_tot_len}", uri=uri)
    if limits.max_seg_len:
        for seg in (instance, *path):
            if len(seg) > limits.max_seg_len:
                raise TreeError(414, f"segment {seg!r} longer than MaxSegLen {limits.max_seg_len}", uri=uri)


def resolve_virtual(tree: Tree, uri: str, *, by: str | None) -> Resolved:
    """Every node ``uri`` names, as server ``by`` sees the tree.

    EmulatorError with the status to answer: 400 malformed, 404 nothing matches (or an empty instance
    with not exactly one instance), 406 an unsupported query field, 414 over a DevDetail/URI limit.
    """
    client_uri, query = _split_query(uri)
    parsed = parse_client_uri(client_uri)
    _check(uri, client_uri, parsed.instance, parsed.path, tree)
    if parsed.cv is not None:
        raise UnsupportedError(f"cv (a DM 2.0 cache validator) in the DM 1.x URI {uri!r}")
    views = {miid: TreeInstanceView(tree, path, by) for miid, path in instances(tree, parsed.moid).items()}
    found = resolve(parsed, views)
    return Resolved(tuple(views[miid].root + rel for miid, rel in found), query)


def resolve_one(tree: Tree, uri: str, *, by: str | None) -> str:
    """The one node a write names, as a tree URI with its query (404 none, 406 several)."""
    targets = resolve_virtual(tree, uri, by=by).targets()
    if len(targets) > 1:
        raise UnsupportedError(f"{uri!r} names {len(targets)} nodes; a write needs exactly one")
    return targets[0]


def resolve_new(tree: Tree, uri: str, *, by: str | None) -> str:
    """The tree URI of the node an Add of ``uri`` creates: its parent resolved to exactly one node."""
    client_uri, query = _split_query(uri)
    parsed = parse_client_uri(client_uri)
    _check(uri, client_uri, parsed.instance, parsed.path, tree)
    if not parsed.path:
        raise EmulatorError(f"{uri!r} would add an MO instance: add it to ./Inbox", status=405)
    name = parsed.path[-1]
    if name == WILDCARD or is_xname(name):
        raise DecodeError(f"the node an Add creates needs a plain name, not {name!r}: {uri!r}")
    head = uri.partition("?")[0]
    parent = head[: head.rstrip("/").rfind("/")] + ("?" + uri.partition("?")[2] if "?" in uri else "")
    try:
        (where,) = resolve_virtual(tree, parent, by=by).paths
    except ValueError:
        raise UnsupportedError(f"the parent of {uri!r} names several nodes; an Add needs exactly one") from None
    return uris.join(where + (name,)) + (f"?{query}" if query else "")
