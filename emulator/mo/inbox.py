"""The DM 1.3 Inbox: an MO a server adds to ``./Inbox`` is put where the device keeps that MO.

DM 1.2 made ``./Inbox`` an Add-only drop point whose content the device places by its MO identifier;
DM 1.3 clarifies Inbox and TNDS usage (ERELD 4.3). Its text was not reachable, so this is the
project's reading [P] (README "How DM 1.3 is read here"); a DM 1.2 device keeps what it is given under
``./Inbox`` as before.

What a DM 1.3 device takes (an Add; Get, Replace, Delete and Copy into the Inbox keep their statuses):

- ``Add ./Inbox`` with Meta Type ``application/vnd.syncml.dmtnds+xml``: a TNDS whose top-level nodes
  are MO roots, each naming its MO in ``RTProperties/Type/DDFName``. Several MOs may come in one
  document; all are placed or none.
- ``Add ./Inbox/<name>`` (or ``./Inbox``, the device then names it) with Meta Type the MOID: one new
  instance (or entry, below) of that MO; Data, when not empty, is a TNDS of its content, paths
  relative to the new node.

Where an MO goes (its "home"), from the device's own tree and the MO's DDF:

- An MO whose DDF root is a placeholder ``<x>`` (FUMO, SCOMO, LAWMO...) has any number of instances:
  a new one goes beside the device's first instance of it (``./FwUpdate/<name>`` beside
  ``./FwUpdate/fw``). A missing NodeName is the first free ``i<n>``.
- An MO whose DDF root is a named node (DMAcc at ``./DMAcc``) exists once: what comes is entries below
  it (a TNDS's ``DMAcc`` node brings accounts, each added under ``./DMAcc``; ``Add ./Inbox/<name>``
  with Type ``urn:oma:mo:oma-dm-dmacc:1.0`` adds the account ``./DMAcc/<name>``).
- The device supports the MOs it has an instance of (outside ``./DM2`` and the Inbox); any other MOID
  is 406 and changes nothing.

Access rights: every node is added as the server at its real place (``tree.add`` through the TNDS
import), so the Inbox's ``Add=*`` never lends a right the destination's ACL does not give (425), and
an interior node a server adds without Replace on its parent becomes that server's, as any DM Add.

Refusals, the tree unchanged: malformed TNDS, a top node with a ``Path`` (the device places it) or
without a DDFName 400; WBXML TNDS 415; content the Inbox cannot place (a leaf, a Type that is no MOID)
415; a node that exists 418; ``./Inbox/<a>/<b>`` 404 (nothing stays in the Inbox).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from lxml import etree

from emulator.errors import DecodeError, UnsupportedError
from emulator.mo.instances import effective_acl, exclusive_acl, is_moid
from emulator.mo.virtual_uri import instances
from emulator.tree import Tree, TreeError
from emulator.tree import uri as uris
from emulator.tree.ddf import find_builtin
from emulator.tree.tnds import TNDS_WBXML, TNDS_XML, import_tnds
from emulator.util import xmlsafe

Path = tuple[str, ...]
INBOX: Path = ("Inbox",)


@dataclass(frozen=True, slots=True)
class Home:
    """Where new content of one MO goes: under ``parent``; ``entry``: below the one MO root, not beside it."""

    moid: str
    parent: Path
    entry: bool


def in_inbox(uri: str) -> bool:
    """Whether a tree URI (query allowed) is the Inbox or below it."""
    path = uri.partition("?")[0]
    try:
        return uris.split(path)[:1] == INBOX
    except TreeError:
        return False


def home(tree: Tree, moid: str) -> Home:
    """Where the device keeps ``moid``; 406 for an MO it has no instance of."""
    found = instances(tree, moid)
    if not found:
        raise UnsupportedError(f"this device keeps no MO {moid!r}: it cannot take one from the Inbox")
    first = next(iter(found.values()))
    desc = find_builtin(moid)
    if desc is not None and desc.root.name is not None:
        return Home(moid, first, entry=True)
    return Home(moid, first[:-1], entry=False)


def free_name(tree: Tree, parent: Path) -> str:
    taken = set(tree.children(parent))
    n = 1
    while f"i{n}" in taken:
        n += 1
    return f"i{n}"


def add_to_inbox(tree: Tree, target: str, data: str | bytes | None, mime: str | None, *, by: str | None) -> list[str]:
    """Place what an Add to ``target`` (``./Inbox`` or below) brings; the URIs of the new MO nodes.

    EmulatorError with the status to answer (module doc); nothing is changed then.
    """
    if "?" in target:
        raise DecodeError(f"a query has no meaning on the Inbox: {target!r}")
    segs = uris.split(target)
    if len(segs) > 2:
        raise TreeError(404, f"node {uris.join(segs[:2])} not found: nothing stays in the Inbox", uri=target)
    name = segs[1] if len(segs) == 2 else None
    if mime == TNDS_WBXML:
        raise UnsupportedError(f"WBXML TNDS ({TNDS_WBXML}) is not supported", status=415)
    with tree.transaction():
        if mime == TNDS_XML:
            if name is not None:
                raise TreeError(404, f"node {target} not found: a TNDS is added to ./Inbox itself", uri=target)
            return _place_tnds(tree, data, by)
        if mime and is_moid(mime):
            return [_place_one(tree, mime, name, data, by)]
    raise UnsupportedError(f"the Inbox takes MOs (a TNDS, or Meta Type an MO identifier), not {mime or 'no Type'!r}",
                           status=415)


def _text(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError("TNDS in the Inbox is not UTF-8") from exc
    return data or ""


def _new_root(tree: Tree, where: Home, name: str, by: str | None) -> str:
    """Create the root of a new MO instance (or entry) at its home, for server ``by``: 418 if it
    exists, 425 unless the ACL there lets the server Add (the Inbox's own rights lend nothing). The
    device creates it, so a DDF that gives no Add at the home (DMAcc's Get-only root) does not stop it,
    and makes it the server's alone (the DM 1.3 rule this project reads, as DM 2.0's creator-owns)."""
    segs = where.parent + (name,)
    uri = uris.join(segs)
    if tree.exists(uri):
        raise TreeError(418, f"node {uri} already exists", uri=uri)
    if by is not None and not effective_acl(tree, where.parent).allows("Add", by):
        raise TreeError(425, f"{by} may not Add under {uris.join(where.parent)}", uri=uri)
    tree.set_node(uri, format="node", type="" if where.entry else where.moid,
                  acl=exclusive_acl(by) if by is not None else None)
    return uri


def _place_one(tree: Tree, moid: str, name: str | None, data: str | bytes | None, by: str | None) -> str:
    where = home(tree, moid)
    uri = _new_root(tree, where, name or free_name(tree, where.parent), by)
    content = _text(data)
    if content.strip():
        import_tnds(tree, content, base_uri=uri, by=by, source=f"Inbox {moid}")
    return uri


def _place_tnds(tree: Tree, data: str | bytes | None, by: str | None) -> list[str]:
    raw = _text(data).encode("utf-8")
    if not raw.strip():
        raise DecodeError("empty TNDS added to the Inbox")
    root = xmlsafe.parse(raw)
    if not isinstance(root.tag, str) or etree.QName(root).localname != "MgmtTree":
        raise UnsupportedError("the Inbox TNDS is not a <MgmtTree>", status=415)
    tops = xmlsafe.children(root, "Node")
    if not tops:
        raise DecodeError("the Inbox TNDS holds no <Node>")
    placed: list[str] = []
    for top in tops:
        if xmlsafe.children(top, "Path"):
            raise DecodeError("an MO in the Inbox has no <Path>: the device places it")
        where = home(tree, _ddf_name(top))
        # an MO with many instances brings one; an MO that exists once brings entries below its root
        news = xmlsafe.children(top, "Node") if where.entry else [top]
        if not news:
            raise TreeError(418, f"MO {where.moid} exists at {uris.join(where.parent)}: nothing new to add",
                            uri=uris.join(where.parent))
        for new in news:
            uri = _new_root(tree, where, _node_name(new) or free_name(tree, where.parent), by)
            content = xmlsafe.children(new, "Node")
            if content:
                import_tnds(tree, _document(root, content), base_uri=uri, by=by, source=f"Inbox {where.moid}")
            placed.append(uri)
    return placed


def _node_name(node: etree._Element) -> str:
    names = xmlsafe.children(node, "NodeName")
    name = (names[0].text or "").strip() if names else ""
    if name in (".", "..", "*") or "/" in name or "?" in name:
        raise DecodeError(f"node name {name!r} is not a valid URI segment")
    return name


def _ddf_name(node: etree._Element) -> str:
    for rt in xmlsafe.children(node, "RTProperties"):
        for typ in xmlsafe.children(rt, "Type"):
            for ddf in xmlsafe.children(typ, "DDFName"):
                moid = (ddf.text or "").strip()
                if moid:
                    return moid
    raise DecodeError("an MO in the Inbox needs its identifier in RTProperties/Type/DDFName")


def _document(root: etree._Element, nodes: list[etree._Element]) -> bytes:
    """A TNDS of these nodes with the original's VerDTD (and namespace)."""
    doc = etree.Element(root.tag, nsmap=root.nsmap)
    for ver in xmlsafe.children(root, "VerDTD"):
        doc.append(copy.deepcopy(ver))
    for node in nodes:
        doc.append(copy.deepcopy(node))
    return etree.tostring(doc)

