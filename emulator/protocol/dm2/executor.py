"""What DM 2.0 commands do to the device's tree (PROTOCOL 1.9-1.12, 1.16, 1.19), HTTP aside.

The engine (:mod:`client`) owns the session and the HTTP exchanges; this module owns the tree side:
resolving ClientURIs for one server, reading nodes into MO serialization, storing what an HGET
fetched, deleting and executing. Every failure is an :class:`EmulatorError` whose ``status`` is
already the DM 2.0 status code (use :func:`dm2_status` on anything else).

Access control, in this order (1.16): the MOID must be one the server was granted at bootstrap
(account Perm, else 403); only instances whose root ACL gives the server some right are visible
(others are as good as absent: 404); inside an instance the tree ACL applies per node (the tree's
425 becomes 403, 1.19 item 9) and so do the DDF access types (405).

Decisions where the public text is silent:
- HGET without a ClientURI always creates a new instance per serialization object, in
  ``./DM2/<MO name>/<MIID>`` with a MIID the client picks; the creator gets exclusive rights.
  The object's ClientURI is read only for its MOID.
- HGET with a ClientURI replaces the data at every node it resolves to (wildcards allowed) and
  takes exactly one serialization object. Replace means: the node ends up holding exactly the
  received children (others are deleted; a permanent one cannot be, so 405). A ClientURI naming a
  MIID that does not exist yet creates that instance with the server's MIID; a missing node inside
  an existing instance is added. Objects' top key (the node's own name) is not checked.
- Leaves take their DDF format when the MO has a shipped DDF, the existing node's format on
  replace, else the JSON type (string chr, number int/float, boolean bool, null null).
- A body that cannot be read as MO serialization is 415, a value of the wrong type too.
- Every write is one tree transaction: a failed command leaves the tree as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulator.errors import DecodeError, EmulatorError, TooLargeError
from emulator.mo.instances import (
    DM2_BASE,
    TreeInstanceView,
    exclusive_acl,
    find_instances,
    instance_validator,
    instance_views,
    moid_name,
    new_instance_path,
    server_get,
    visible_instances,
)
from emulator.protocol.dm2.messages import MOInfo
from emulator.protocol.dm2.moser import MOSerialization, from_json_value, to_json_value
from emulator.tree import Tree, TreeError
from emulator.tree.clienturi import (
    WILDCARD,
    ClientURI,
    ResolveError,
    format_client_uri,
    is_xname,
    parse_client_uri,
    resolve,
)
from emulator.tree.ddf import MODescription, describe

Path = tuple[str, ...]

STATUSES = frozenset({200, 202, 304, 400, 403, 404, 405, 406, 409, 413, 415, 500, 501})
"""The codes a DM 2.0 status carries here (1.9 public list plus 1.19 item 9; 409: a higher-priority
authority holds the instance, see :mod:`emulator.mo.authorities`)."""
_STATUS_MAP = {401: 403, 425: 403, 418: 405, 414: 400}


def dm2_status(status: int | None) -> int:
    """The DM 2.0 status for a tree/DM 1.x-style code (425 -> 403, 418 -> 405, ...)."""
    if status is None:
        return 500
    if status in STATUSES:
        return status
    if status in _STATUS_MAP:
        return _STATUS_MAP[status]
    if 200 <= status < 300:
        return 200
    return 500 if status >= 500 else 400


class CommandError(EmulatorError):
    """A command refused with a DM 2.0 status code."""


@dataclass(frozen=True, slots=True)
class Actor:
    """The server a command acts for: its id (ACLs), the MOIDs it was granted (Perm), and where the
    DDF of an MOID comes from (the engine does no I/O: its driver hands it a lookup)."""

    server_id: str
    perms: frozenset[str]
    describe: Callable[[str], MODescription | None] = field(default=lambda moid: None)
    views: dict[str, tuple[Tree, int, dict[str, TreeInstanceView]]] = field(
        default_factory=dict, compare=False, repr=False)
    """MOID -> (tree, its version, the instances this server sees): what :func:`resolve_targets`
    found last, good while the tree has not changed (a package of GETs on one MO walks it once)."""


@dataclass(frozen=True, slots=True)
class Target:
    """One node a ClientURI resolved to."""

    moid: str
    miid: str
    root: Path  # instance root in the tree
    rel: Path  # path inside the instance

    @property
    def path(self) -> Path:
        return self.root + self.rel

    @property
    def client_uri(self) -> str:
        return format_client_uri(self.moid, self.miid, self.rel)


def check_perm(actor: Actor, moid: str) -> None:
    if moid not in actor.perms:
        raise CommandError(f"server {actor.server_id} was not granted MO {moid}", status=403)


def parse(text: str) -> ClientURI:
    """A ClientURI from a command parameter (400 when malformed)."""
    return parse_client_uri(text)


def resolve_targets(tree: Tree, uri: ClientURI, actor: Actor) -> list[Target]:
    """Every node ``uri`` names among the instances ``actor`` may see (403 / 404 otherwise)."""
    check_perm(actor, uri.moid)
    version = tree.version
    seen = actor.views.get(uri.moid)
    if seen is not None and seen[0] is tree and seen[1] == version:
        views = seen[2]
    else:
        views = instance_views(tree, uri.moid, actor.server_id)
        actor.views[uri.moid] = (tree, version, views)
    return [
        Target(uri.moid, miid, views[miid].root, rel) for miid, rel in resolve(uri, views)
    ]


def supported_mos(tree: Tree, actor: Actor, order: tuple[str, ...] = ()) -> list[MOInfo]:
    """Package#1 ``MOS``: every MOID granted to the server, with the MIIDs it may access (1.5)."""
    return [
        MOInfo(None, moid, list(visible_instances(tree, moid, actor.server_id)))
        for moid in (order or sorted(actor.perms))
    ]


# --- reading --------------------------------------------------------------------------------------


def _leaf_json(value: Any, fmt: str) -> Any:
    if fmt == "node":
        return None
    return to_json_value(value, fmt)


def _subtree(tree: Tree, path: Path, by: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in tree.children(path):
        child = path + (name,)
        try:
            info = server_get(tree, child, by)
        except TreeError:
            continue  # a node the server may not read (or a secret) is left out, not an error
        out[name] = _subtree(tree, child, by) if info.children is not None else _leaf_json(info.value, info.format)
    return out


def read_node(tree: Tree, target: Target, actor: Actor) -> MOSerialization:
    """The MO serialization of one node as the server may see it; the instance root gets its CV."""
    info = server_get(tree, target.path, actor.server_id)
    if target.rel:
        name = target.rel[-1]
    else:
        name = info.title or target.miid
    if info.children is not None:
        data: dict[str, Any] = {name: _subtree(tree, target.path, actor.server_id)}
    else:
        data = {name: _leaf_json(info.value, info.format)}
    cv = instance_validator(tree, target.root) if not target.rel else None
    return MOSerialization(client_uri=target.client_uri, mo_data=data, cv=cv)


def read(tree: Tree, text: str, actor: Actor) -> tuple[int, list[MOSerialization], list[str]]:
    """GET/HPUT/HPOST/SUB read: (200 or 304, serializations, resolved ClientURIs).

    With ``cv`` (1.12): 304 and no data when every instance the ClientURI touches still has that
    validator; otherwise the data (with the new validator on instance roots).
    """
    uri = parse(text)
    targets = resolve_targets(tree, uri, actor)
    uris = [t.client_uri for t in targets]
    if uri.cv is not None and all(instance_validator(tree, t.root) == uri.cv for t in targets):
        for t in targets:  # a 304 must still not reveal what the server may not read
            server_get(tree, t.path, actor.server_id)
        return 304, [], uris
    return 200, [read_node(tree, t, actor) for t in targets], uris


# --- writing --------------------------------------------------------------------------------------


def _natural(value: Any) -> tuple[str | None, str]:
    """(tree value, format) of a JSON leaf with no DDF to say its format."""
    if value is None:
        return None, "null"
    if isinstance(value, bool):
        return ("true" if value else "false"), "bool"
    if isinstance(value, int):
        return str(value), "int"
    if isinstance(value, float):
        return repr(value), "float"
    return str(value), "chr"


def _convert(value: Any, fmt: str | None, where: str) -> tuple[Any, str]:
    if isinstance(value, dict):
        raise CommandError(f"{where}: expected a value, got an object", status=415)
    if fmt is None or fmt == "node":
        return _natural(value)
    try:
        return from_json_value(value, fmt), fmt
    except DecodeError as exc:
        raise CommandError(f"{where}: {exc}", status=415) from exc


def _mime(value: Any) -> str:
    return "application/octet-stream" if isinstance(value, bytes) else "text/plain"


class _Writer:
    """Makes a subtree hold exactly the received MOData, acting as ``by`` (ACLs apply)."""

    def __init__(self, tree: Tree, by: str, ddf: MODescription | None) -> None:
        self.tree = tree
        self.by = by
        self.ddf = ddf

    def _format(self, rel: Path) -> str | None:
        if self.ddf is None:
            return None
        desc = describe(self.ddf, rel)
        return desc.format if desc is not None else None

    def children(self, path: Path, rel: Path, data: dict[str, Any]) -> None:
        tree = self.tree
        for name in tree.children(path):
            if name not in data:
                tree.delete(path + (name,), by=self.by)
        for name, value in data.items():
            self.node(path + (name,), rel + (name,), value)

    def node(self, path: Path, rel: Path, value: Any) -> None:
        tree = self.tree
        exists = tree.exists(path)
        info = tree.info(path) if exists else None
        if isinstance(value, dict):
            if info is not None and info.children is None:
                tree.delete(path, by=self.by)
                info = None
            if info is None:
                tree.add(path, format="node", type="", by=self.by)
            self.children(path, rel, value)
            return
        where = "/".join(rel) or "."
        if info is not None and info.children is None:
            new, _ = _convert(value, info.format, where)
            if new != info.value:
                tree.replace(path, new, by=self.by)
            return
        new, fmt = _convert(value, self._format(rel), where)
        if info is not None:  # an interior node becomes a leaf
            tree.delete(path, by=self.by)
        tree.add(path, new, format=fmt, type=_mime(new), by=self.by)


def _single(mo_data: dict[str, Any], what: str) -> tuple[str, Any]:
    if len(mo_data) != 1:
        raise CommandError(f"{what}: MOData must hold exactly one top node, has {len(mo_data)}", status=415)
    return next(iter(mo_data.items()))


def create_instance(
    tree: Tree, actor: Actor, moid: str, mo_data: dict[str, Any], miid: str | None = None
) -> str:
    """A new instance from MO serialization data; returns its ClientURI. Call inside a transaction."""
    check_perm(actor, moid)
    root_name, content = _single(mo_data, f"new {moid} instance")
    if not isinstance(content, dict):
        raise CommandError(f"new {moid} instance: the MO root must be an object", status=415)
    if miid is None:
        path, miid = new_instance_path(tree, moid)
    else:
        path = DM2_BASE + (moid_name(moid), miid)
        if tree.exists(path):
            raise CommandError(f"{format_client_uri(moid, miid)}: the node exists and is not an instance of "
                               f"{moid}", status=405)
    container = path[:-1]
    if not tree.exists(container):
        tree.set_node(container, format="node")
    tree.set_node(path, format="node", type=moid, acl=exclusive_acl(actor.server_id), title=root_name[:255])
    _Writer(tree, actor.server_id, actor.describe(moid)).children(path, (), content)
    return format_client_uri(moid, miid)


def _create_missing(tree: Tree, actor: Actor, uri: ClientURI, mo_data: dict[str, Any]) -> str:
    """HGET at a ClientURI that does not resolve: a new instance with the server's MIID, or a new
    node inside an existing instance; anything else stays 404."""
    literal = uri.instance not in ("", WILDCARD) and not is_xname(uri.instance)
    if not literal or any(s == WILDCARD or is_xname(s) for s in uri.path):
        raise ResolveError(f"{uri}: no node matches")
    existing = find_instances(tree, uri.moid)
    if uri.instance not in existing:
        if uri.path:
            raise ResolveError(f"{uri}: no instance {uri.instance} of {uri.moid}")
        return create_instance(tree, actor, uri.moid, mo_data, uri.instance)
    root = existing[uri.instance]
    if uri.instance not in visible_instances(tree, uri.moid, actor.server_id):
        raise ResolveError(f"{uri}: no node matches")
    _, value = _single(mo_data, str(uri))
    writer = _Writer(tree, actor.server_id, actor.describe(uri.moid))
    writer.node(root + uri.path, uri.path, value)
    return format_client_uri(uri.moid, uri.instance, uri.path)


def store(tree: Tree, actor: Actor, items: list[MOSerialization], client_uri: str | None) -> list[str]:
    """HGET: store fetched serialization objects; returns the ClientURIs written (Status URI)."""
    if not items:
        raise CommandError("the repository sent no MO serialization object", status=415)
    written: list[str] = []
    with tree.transaction():
        if client_uri is None:
            for index, item in enumerate(items):
                try:
                    moid = parse(item.client_uri).moid
                except DecodeError as exc:
                    raise CommandError(f"object {index}: {exc}", status=415) from exc
                written.append(create_instance(tree, actor, moid, item.mo_data))
            return written
        uri = parse(client_uri)
        check_perm(actor, uri.moid)
        if len(items) != 1:
            raise CommandError(f"HGET to {client_uri} takes one MO serialization object, got {len(items)}",
                               status=415)
        data = items[0].mo_data
        try:
            targets = resolve_targets(tree, uri, actor)
        except ResolveError:
            return [_create_missing(tree, actor, uri, data)]
        writer = _Writer(tree, actor.server_id, actor.describe(uri.moid))
        for t in targets:
            if not tree.exists(t.path):
                continue  # an earlier target's replace removed it
            _, value = _single(data, t.client_uri)
            writer.node(t.path, t.rel, value)
            written.append(t.client_uri)
    return written


def delete(tree: Tree, text: str, actor: Actor) -> list[str]:
    """DELETE: the nodes (with descendants) the ClientURI names; an instance root removes it."""
    targets = resolve_targets(tree, parse(text), actor)
    with tree.transaction():
        for t in sorted(targets, key=lambda t: -len(t.path)):
            if tree.exists(t.path):
                tree.delete(t.path, by=actor.server_id)
    return [t.client_uri for t in targets]


def execute(tree: Tree, text: str, actor: Actor, reply_to: str | None = None) -> tuple[int, str]:
    """EXEC of one executable node: (DM 2.0 status of the device behaviour, ClientURI).

    EXEC has no data parameter: the ClientURI's query, when there is one, is handed to the node's
    behaviour as its data (how a server passes arguments, e.g. ``Ext/Delegate?delegate=...``) [P].
    """
    targets = resolve_targets(tree, parse(text), actor)
    if len(targets) != 1:
        raise CommandError(f"EXEC needs exactly one node, {text} names {len(targets)}", status=400)
    target = targets[0]
    status = tree.exec(target.path, text.partition("?")[2] or None, by=actor.server_id, reply_to=reply_to)
    return dm2_status(status), target.client_uri


def status_of(exc: BaseException) -> int:
    """The DM 2.0 status for an exception a command raised (bodies: 400 becomes 415 by caller)."""
    if isinstance(exc, TooLargeError):
        return 413
    if isinstance(exc, EmulatorError):
        return dm2_status(exc.status)
    return 500
