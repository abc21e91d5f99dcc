"""TNDS: the management tree serialised as XML (PROTOCOL.md 3.10, MIME ``application/vnd.syncml.dmtnds+xml``).

TNDS carries a subtree in one document: ``Get ?list=TNDS`` answers with it, Add and Replace with a
TNDS payload create or rewrite a whole subtree at once, and ``dm-emulator tree export|import`` uses it
to save and restore a device's tree.

Interpretations this module makes (the TNDS text leaves them open):

- Binary values: TNDS has no per-node encoding flag, so a leaf whose Format is ``bin`` carries its
  value base64-encoded in ``<Value>`` and is decoded back to bytes on import. ``b64`` is an ordinary
  text format (the node holds base64 text), kept as text both ways.
- A leaf whose value is null has no ``<Value>``; an empty string is an empty ``<Value></Value>``.
- Every selected property is written for every node, empty or not (``<ACL/>``, ``<Title/>``,
  ``<TStamp/>`` when the node was never stamped), so an import can tell "empty" from "not sent".
  An element that is absent on import leaves the property as it is (or at its default on a new node).
- ``Name`` and ``Size`` are exported when selected but ignored on import (the device keeps them).
  ``TStamp`` and ``VerNo`` are restored only by a device-local import; a server's import stamps
  the nodes it changes like any other command.
- Scope (permanent) and AccessType cannot be expressed in TNDS: a local import keeps them on nodes
  that already exist and gives new nodes the defaults (dynamic, every command). The root itself is
  never a TNDS node, so its properties are neither exported nor imported.
- Nodes a server may not Get are left out; their readable descendants are written as top-level
  continuation nodes whose ``Path`` names the hidden parent (TNDS section 9.2.3.1.5), so nothing
  the server may read is lost and nothing it may not read is shown.
- Paths: a top-level node sits under its ``Path`` (the root when there is none). With ``base_uri``
  (the target of an Add or Replace) the ``Path`` is read relative to that target.
"""

from __future__ import annotations

import base64
import binascii
import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache

from lxml import etree

from emulator.errors import EmulatorError, FileFormatError, UnsupportedError
from emulator.tree import uri as uris
from emulator.tree.acl import EMPTY, Acl
from emulator.tree.ddf import FORMATS, _local
from emulator.tree.errors import TreeError
from emulator.tree.formats import TYPED, TYPED_HINT
from emulator.tree.node import ACCESS_ALL, PERMANENT, Node, NodeMeta, access_names, descend
from emulator.tree.tree import PROPERTIES, Tree, Value, format_tstamp
from emulator.util import xmlsafe
from emulator.util.masking import MASK, MASK_BYTES, is_secret_name, is_secret_value

TNDS_XML = "application/vnd.syncml.dmtnds+xml"
TNDS_WBXML = "application/vnd.syncml.dmtnds+wbxml"
NAMESPACE = "syncml:dmddf1.2"
VERSION = "1.2"
#: what ``?list=TNDS+...`` may select: the run-time properties plus the leaf value
SELECTABLE = frozenset(PROPERTIES) | {"Value"}

_RT_TAGS = frozenset(PROPERTIES)  # Name and Size are read but ignored: the device keeps them
_TAGS = (
    *("MgmtTree", "VerDTD", "Man", "Mod", "Node", "NodeName", "Path", "RTProperties", "DFProperties", "Value"),
    *("ACL", "Format", "Name", "Size", "Title", "TStamp", "Type", "VerNo", "MIME", "DDFName"),
)
_MASKED_BIN = base64.b64encode(MASK_BYTES).decode("ascii")
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# ---------------------------------------------------------------------------------------------- export


def export_tnds(
    tree: Tree,
    uri: str = ".",
    *,
    props: frozenset[str] | set[str] | None = None,
    by: str | None = None,
    pretty: bool = False,
    mask_secrets: bool | None = None,
) -> bytes:
    """The subtree at ``uri`` as a TNDS document (UTF-8, no XML declaration so it embeds in ``<Data>``).

    ``props`` selects what each node carries (names from :data:`SELECTABLE`; default all). With
    ``by`` only the nodes that server may Get are written; the top node itself must be readable
    (425) unless ``uri`` is the root. ``pretty`` indents for people; whitespace is ignored on import.
    ``mask_secrets`` writes secret values (:mod:`emulator.util.masking`) as a mask; by default an export
    for people (``by=None``) masks and an answer to a server (its ACL decides) does not.
    """
    selected = SELECTABLE if props is None else frozenset(props)
    unknown = selected - SELECTABLE
    if unknown:
        raise TreeError(406, f"unsupported TNDS property {', '.join(sorted(unknown))}", uri=uri)
    segs = uris.split(uri)
    node, acl, _ = tree._locate(segs, uri)
    writer = _Writer(selected, by, pretty, by is None if mask_secrets is None else mask_secrets)
    if segs:
        if by is not None and not acl.allows("Get", by):
            raise TreeError(425, f"{by} may not Get {uri}", uri=uri)
        writer.node(segs, node, acl, 1, uris.join(segs[:-1]))
    else:
        writer.below(segs, node, acl, with_path=False)
    while writer.hidden:  # readable nodes under unreadable ones, as continuations
        hidden_segs, hidden, hidden_acl = writer.hidden.pop(0)
        writer.below(hidden_segs, hidden, hidden_acl, with_path=True)
    writer.finish()
    return "".join(writer.out).encode("utf-8")


class _Writer:
    """Writes XML text directly: a hundred thousand nodes in well under a second, escaped by hand.

    Building an lxml tree first costs a Python call per element (about ten per node); plain string
    pieces are several times faster and the escaping rules for element text are short.
    """

    def __init__(self, selected: frozenset[str], by: str | None, pretty: bool, mask: bool = False) -> None:
        self.by = by
        self.mask = mask
        self.pretty = pretty
        self.acl = "ACL" in selected
        self.format = "Format" in selected
        self.name = "Name" in selected
        self.size = "Size" in selected
        self.title = "Title" in selected
        self.tstamp = "TStamp" in selected
        self.type = "Type" in selected
        self.verno = "VerNo" in selected
        self.value = "Value" in selected
        self.out: list[str] = [f'<MgmtTree xmlns="{NAMESPACE}">', "<VerDTD>", VERSION, "</VerDTD>"]
        self.hidden: list[tuple[tuple[str, ...], Node, Acl]] = []

    def finish(self) -> None:
        self.out.append("\n</MgmtTree>\n" if self.pretty else "</MgmtTree>")
        if self.pretty:
            self.out[0] += "\n  "

    def below(self, segs: tuple[str, ...], node: Node, eff: Acl, *, with_path: bool) -> None:
        """The children of a node that is not written itself (the root, or one the server can't read)."""
        by = self.by
        path = uris.join(segs) if with_path else None
        for name, child in (node.children or {}).items():
            child_acl = child.acl or eff
            if by is None or child_acl.allows("Get", by):
                self.node(segs + (name,), child, child_acl, 1, path)
            else:
                self.hidden.append((segs + (name,), child, child_acl))

    def node(self, segs: tuple[str, ...], node: Node, eff: Acl, depth: int, path: str | None) -> None:
        out = self.out
        pretty = self.pretty
        nl = "\n" + "  " * depth if pretty else ""
        nl1 = nl + "  " if pretty else ""
        nl2 = nl1 + "  " if pretty else ""
        name = segs[-1]
        out.append(f"{nl}<Node>{nl1}<NodeName>{_escape(name, segs)}</NodeName>")
        if path is not None:
            out.append(f"{nl1}<Path>{_escape(path, segs)}</Path>")
        out.append(f"{nl1}<RTProperties>")
        interior = node.children is not None
        meta = node.meta
        secret = self.mask and not interior and (is_secret_name(name) or is_secret_value(node.value))
        if self.acl:
            text = node.acl.text
            out.append(f"{nl2}<ACL>{_escape(text, segs)}</ACL>" if text else f"{nl2}<ACL/>")
        if self.format:
            if node.format not in FORMATS:
                raise UnsupportedError(f"{uris.join(segs)}: Format {node.format!r} has no TNDS form")
            out.append(f"{nl2}<Format><{node.format}/></Format>")
        if self.name:
            out.append(f"{nl2}<Name>{_escape(name, segs)}</Name>")
        if self.size and not interior:
            out.append(f"{nl2}<Size>{len(MASK_BYTES) if secret and node.value is not None else node.size()}</Size>")
        if self.title:
            title = meta.title if meta is not None else ""
            out.append(f"{nl2}<Title>{_escape(title, segs)}</Title>" if title else f"{nl2}<Title/>")
        if self.tstamp:
            stamp = format_tstamp(meta.tstamp) if meta is not None else ""
            out.append(f"{nl2}<TStamp>{stamp}</TStamp>" if stamp else f"{nl2}<TStamp/>")
        if self.type:
            kind = "DDFName" if interior else "MIME"
            text = node.type
            out.append(
                f"{nl2}<Type><{kind}>{_escape(text, segs)}</{kind}></Type>" if text else f"{nl2}<Type><{kind}/></Type>"
            )
        if self.verno:
            out.append(f"{nl2}<VerNo>{meta.verno if meta is not None else 0}</VerNo>")
        out.append(f"{nl1}</RTProperties>")
        if interior:
            by = self.by
            for child_name, child in node.kids.items():
                child_acl = child.acl or eff
                child_segs = segs + (child_name,)
                if by is None or child_acl.allows("Get", by):
                    self.node(child_segs, child, child_acl, depth + 1, None)
                else:
                    self.hidden.append((child_segs, child, child_acl))
        elif self.value and node.value is not None:
            if secret:
                text = _MASKED_BIN if node.format == "bin" else MASK
            else:
                text = _value_text(node, segs)
            out.append(f"{nl1}<Value>{text}</Value>")
        out.append(f"{nl}</Node>")


def _value_text(node: Node, segs: tuple[str, ...]) -> str:
    value = node.value
    if value is None:
        return ""
    if node.format == "bin":
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        return base64.b64encode(raw).decode("ascii")
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise UnsupportedError(
                f"{uris.join(segs)}: binary value with Format {node.format} cannot be written as TNDS text (use bin)"
            ) from None
    return _escape(value, segs)


def _escape(text: str, segs: tuple[str, ...]) -> str:
    """Element text, escaped; characters XML 1.0 cannot carry at all are refused (406)."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if not text.isprintable():  # fast path: printable text holds no control character or surrogate
        bad = _XML_ILLEGAL.search(text)
        if bad:
            raise UnsupportedError(f"{uris.join(segs)}: character U+{ord(bad.group()):04X} cannot be carried in XML")
        if "\r" in text:  # a raw CR would come back as LF after XML line-end normalisation
            text = text.replace("\r", "&#13;")
    return text


# ---------------------------------------------------------------------------------------------- import


# One described node: (segs, interior, value, format, type, acl, title, tstamp, has_tstamp, verno);
# None means "element absent". A plain tuple of immutables, so the cyclic GC stops tracking it: a
# class instance per node made garbage collection a quarter of a 100,000-node import.
_Item = tuple[tuple[str, ...], bool, Value, "str | None", "str | None", "str | None", "str | None", "float | None", bool, "int | None"]


def import_tnds(
    tree: Tree,
    data: bytes | str,
    *,
    base_uri: str | None = None,
    by: str | None = None,
    replace: bool = False,
    source: str = "TNDS",
) -> list[str]:
    """Apply a TNDS document all-or-nothing; returns the URIs created or changed, in document order.

    ``replace=False`` is DM Add with TNDS: every described node must be new (418 otherwise).
    ``replace=True`` is DM Replace with TNDS: described nodes are created or overwritten and every
    existing child of a described interior node that the document does not describe is deleted.
    With ``by`` (a server) each change is an ACL-checked Add/Replace/Delete/property Replace, so the
    statuses are the commands' own (404, 405, 418, 425 ...). With ``by=None`` (the device, e.g.
    ``dm-emulator tree import``) properties are restored exactly, TStamp and VerNo included.
    ``source`` names the document in error messages (a file name).
    """
    with _collector_paused():
        return _import(tree, data, base_uri, by, replace, source)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector still while an import runs. Reading and building allocate
    hundreds of thousands of objects that all stay alive (none forms a cycle to reclaim), and each
    full collection they trigger walks every live object of the process, a fleet's trees included:
    a fifth of a 100,000-node import. The collector runs again as usual afterwards."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _import(tree: Tree, data: bytes | str, base_uri: str | None, by: str | None, replace: bool, source: str) -> list[str]:
    reader = _read(data, base_uri, source)
    done: list[str] = []
    with tree.transaction():
        if by is None:
            done = _import_local(tree, reader, replace)
        else:
            for item in reader.items:
                if _apply_server(tree, item, replace, by):
                    done.append(uris.join(item[0]))
        if replace:
            for segs in reader.interiors:
                if _find(tree, segs) is None:
                    continue
                names = reader.keep(segs)
                for child in tree.children(segs):
                    if child not in names:
                        tree.delete(segs + (child,), by=by)
    return done


def _import_local(tree: Tree, reader: _Reader, replace: bool) -> list[str]:
    """The device's own import. A node the tree lacks starts a new subtree: it and the nodes nested
    in it are built here and grafted in one go (:meth:`Tree.graft`), not walked to from the root
    one by one; a node that exists is rewritten in place (:func:`_apply_local`). Document order is
    kept for changes and events alike: a subtree is grafted before the next node outside it."""
    done: list[str] = []
    join = uris.join
    tops = reader.tops
    top: tuple[tuple[str, ...], Node] | None = None  # the new subtree being built
    fresh: dict[tuple[str, ...], Node] = {}  # its interior nodes by path
    for i, item in enumerate(reader.items):
        segs = item[0]
        parent = fresh.get(segs[:-1]) if fresh and i not in tops else None
        if parent is not None:  # nested in the new subtree: a continuation node may not be (event order)
            node = _new_node(item)
            parent.kids[segs[-1]] = node
            if node.children is not None:
                fresh[segs] = node
            continue
        if top is not None:
            done += tree.graft(*top)  # its nodes' URIs, in document order
            top = None
            fresh = {}
        existing = _find(tree, segs)
        if existing is None:
            node = _new_node(item)
            top = (segs, node)
            if node.children is not None:
                fresh[segs] = node
        else:
            _apply_local(tree, item, replace, existing)
            done.append(join(segs))
    if top is not None:
        done += tree.graft(*top)
    return done


def _new_node(item: _Item) -> Node:
    """A node the tree lacks, as :meth:`Tree.set_node` with exact Title/TStamp/VerNo would make it
    from the item: default Format and Type, every command allowed, dynamic, properties exact."""
    _, interior, value, fmt, typ, acl, title, tstamp, _, verno = item
    if typ is None:
        typ = "" if interior else "text/plain"
    meta = NodeMeta(title or "", tstamp, verno or 0) if (title or tstamp is not None or verno) else None
    if interior:
        return Node(None, "node", typ, Acl.parse(acl) if acl is not None else EMPTY, {}, ACCESS_ALL, meta)
    return Node(value, fmt or "chr", typ, Acl.parse(acl) if acl is not None else EMPTY, None, ACCESS_ALL, meta)


def _apply_local(tree: Tree, item: _Item, replace: bool, node: Node) -> None:
    """An existing node rewritten by the device: what the document leaves out stays as it was."""
    segs, interior, value, fmt, typ, acl, title, tstamp, has_tstamp, verno = item
    if not replace:
        raise TreeError(418, f"node {uris.join(segs)} already exists", uri=uris.join(segs))
    same_kind = (node.children is not None) == interior
    if fmt is None:
        fmt = node.format if same_kind else ("node" if interior else "chr")
    if typ is None:
        typ = node.type if same_kind else ("" if interior else "text/plain")
    meta = node.meta
    if not interior and value in (MASK, MASK_BYTES):
        value = node.value  # a masked export never overwrites the secret it hid
    if title is None:
        title = meta.title if meta else ""
    if not has_tstamp:
        tstamp = meta.tstamp if meta else None
    if verno is None:
        verno = meta.verno if meta else 0
    tree.set_node(
        segs,
        value,
        format=fmt,
        type=typ,
        acl=acl,
        permanent=bool(node.flags & PERMANENT),
        access=access_names(node.flags),
        title=title,
        tstamp=tstamp,
        verno=verno,
    )


def _find(tree: Tree, segs: tuple[str, ...]) -> Node | None:
    """The node at ``segs`` or None; ``Tree.exists`` answers through a TreeError, too slow per node."""
    return descend(tree.root, segs)


def _apply_server(tree: Tree, item: _Item, replace: bool, by: str) -> bool:
    """One described node through the ACL-checked operations; False when nothing had to change."""
    segs, interior, value, fmt, typ, acl, title, _, _, _ = item
    path = uris.join(segs)
    if tree.limits is not uris.NO_LIMITS:
        uris.check_limits(segs, tree.limits, path)
    if _find(tree, segs) is None:
        _server_add(tree, item, by)
        return True
    if not replace:
        raise TreeError(418, f"node {path} already exists", uri=path)
    cur = tree.info(segs)  # the device's own look, only to compare; nothing of it is returned
    kind_changed = cur.is_leaf == interior
    if kind_changed or (interior and typ and typ != cur.type):
        tree.delete(segs, by=by)
        _server_add(tree, item, by)
        return True
    changed = False
    if not interior:
        fmt = fmt or cur.format
        typ = typ if typ is not None else cur.type
        if (value, fmt, typ) != (cur.value, cur.format, cur.type) or type(value) is not type(cur.value):
            tree.replace(segs, value, format=fmt, type=typ, by=by)
            changed = True
    if acl is not None and Acl.parse(acl).text != cur.acl:
        tree.replace_prop(segs, "ACL", acl, by=by)
        changed = True
    if title is not None and title != cur.title:
        tree.replace_prop(segs, "Title", title, by=by)
        changed = True
    return changed


def _server_add(tree: Tree, item: _Item, by: str) -> None:
    segs, interior, value, fmt, typ, acl, title, _, _, _ = item
    fmt = "node" if interior else (fmt or "chr")
    typ = typ if typ is not None else ("" if interior else "text/plain")
    tree.add(segs, value, format=fmt, type=typ, by=by)
    # an empty <ACL/> on a new node keeps what Add gave it (PROTOCOL 2.4: maybe the server's own rights)
    if acl:
        tree.replace_prop(segs, "ACL", acl, by=by)
    if title:
        tree.replace_prop(segs, "Title", title, by=by)


# ---------------------------------------------------------------------------------------------- reading


@lru_cache(maxsize=1024)
def _parse_tstamp(text: str) -> float:
    """``20010711T163817Z`` -> seconds since the epoch. Cached: a tree built in one go shares a few
    stamps, and strptime costs several microseconds a call. ValueError when malformed."""
    if len(text) != 16 or text[8] != "T" or text[15] != "Z" or not (text[:8] + text[9:15]).isdigit():
        raise ValueError(text)
    y, mo, d, h, mi, s = (int(text[a:b]) for a, b in ((0, 4), (4, 6), (6, 8), (9, 11), (11, 13), (13, 15)))
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC).timestamp()


_CHECKED = frozenset({"bin", *TYPED})  # formats whose text is read (the fast path keeps others as they are)


def _read(data: bytes | str, base_uri: str | None, source: str) -> _Reader:
    """Parse and check the whole document before anything changes."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    head = data.lstrip()[:1]
    if head and head[0] < 0x20:  # WBXML starts with its version byte (0x01..0x03)
        raise UnsupportedError(f"{source}: WBXML TNDS ({TNDS_WBXML}) is not supported", status=415)
    root = xmlsafe.parse(data, source=source)
    reader = _Reader(source, root)
    if base_uri is not None:
        try:
            base = uris.split(base_uri)
        except TreeError as exc:
            raise TreeError(exc.status, str(exc), uri=base_uri) from None
    else:
        base = ()
    reader.document(root, base)
    return reader


class _Reader:
    """The document as a list of nodes in document order, checked, plus what Replace must keep.

    ``named`` maps a path to the names of the child nodes the document describes under it;
    ``via_path`` to the names a continuation's Path goes through. A Replace deletes, under each
    described interior node (``interiors``), the existing children named in neither.
    """

    def __init__(self, source: str, root: etree._Element) -> None:
        self.source = source
        self.items: list[_Item] = []
        self.named: dict[tuple[str, ...], set[str]] = {}
        self.via_path: dict[tuple[str, ...], set[str]] = {}
        self.interiors: list[tuple[str, ...]] = []
        self.tops: set[int] = set()  # indexes in ``items`` of top-level (Path-placed) nodes
        ns = root.tag[1 : root.tag.index("}")] if isinstance(root.tag, str) and root.tag.startswith("{") else None
        prefix = f"{{{ns}}}" if ns else ""
        # the document's own tags, looked up directly: _local() per element would dominate big imports;
        # keyed by object, as lxml types a tag as str | bytes | QName (it is a str after parsing)
        self.tags: dict[object, str] = {prefix + n: n for n in _TAGS}
        self.formats: dict[object, str] = {prefix + f: f for f in FORMATS}
        self.props: dict[str | None, etree._Element] = {}

    def keep(self, segs: tuple[str, ...]) -> set[str]:
        return self.named.get(segs, set()) | self.via_path.get(segs, set())

    def fail(self, el: etree._Element | None, reason: str) -> FileFormatError:
        return FileFormatError(self.source, el.sourceline if el is not None else None, reason)

    def local(self, el: etree._Element) -> str | None:
        name = self.tags.get(el.tag)
        return name if name is not None else _local(el)

    def document(self, root: etree._Element, base: tuple[str, ...]) -> None:
        if self.local(root) != "MgmtTree":
            found = etree.QName(root).localname
            raise UnsupportedError(f"{self.source}: root element <{found}> is not a TNDS <MgmtTree>", status=415)
        version = None
        for el in root:
            tag = self.local(el)
            if tag is None:
                continue
            if tag == "VerDTD":
                version = (el.text or "").strip()
            elif tag == "Node":
                self.node(el, None, base)
            elif tag not in ("Man", "Mod"):
                raise self.fail(el, f"unexpected <{tag}> in <MgmtTree>")
        if version is None:
            raise self.fail(root, "<MgmtTree> without <VerDTD>")
        if version.split(".")[0] != "1":
            raise UnsupportedError(f"{self.source}: TNDS version {version!r} is not supported (1.x)", status=415)

    def node(self, el: etree._Element, parent: tuple[str, ...] | None, base: tuple[str, ...]) -> None:
        """Read one <Node>; ``parent`` is None for a top-level node (placed by Path under ``base``).

        Runs for every node of an import: elements are gathered by name in one pass and the common
        shapes are read inline; anything unusual goes through the careful helpers below.
        """
        get = self.tags.get
        name: str | None = None
        path = rt = value_el = None
        sub: etree._Element | None
        kids: list[etree._Element] = []
        for sub in el:
            tag = get(sub.tag)
            if tag == "Node":
                kids.append(sub)
            elif tag == "RTProperties":
                rt = sub
            elif tag == "NodeName":
                name = sub.text or ""
            elif tag == "Value":
                value_el = sub
            elif tag == "Path":
                path = sub
            elif tag != "DFProperties":  # a DDF's description part: not run-time state, ignored
                tag = _local(sub)
                if tag is not None:
                    raise self.fail(sub, f"unexpected <{tag}> in <Node>")
        if not name:
            raise UnsupportedError(
                f"{self.source}:{el.sourceline}: <Node> without a NodeName (placement by Type) is not supported",
                status=415,
            )
        if name in (".", "..", "*") or "/" in name or "?" in name:
            raise self.fail(el, f"node name {name!r} is not a valid URI segment")
        if parent is None:
            self.tops.add(len(self.items))
            parent = base + (self.path(path) if path is not None else ())
            for i in range(len(parent)):
                self.via_path.setdefault(parent[:i], set()).add(parent[i])
        siblings = self.named.get(parent)
        if siblings is None:
            siblings = self.named[parent] = set()
        elif name in siblings:
            raise self.fail(el, f"node {uris.join(parent + (name,))} is described twice")
        siblings.add(name)
        segs = parent + (name,)
        if rt is None:
            raise self.fail(el, f"<Node> {name!r} without <RTProperties>")
        props = self.props  # one dict reused: a fresh one per node is measurable garbage on big imports
        props.clear()
        for sub in rt:
            props[get(sub.tag)] = sub
        if None in props or len(props) != len(rt) or not _RT_TAGS.issuperset(props):
            props = self.rt_slow(rt)
        fmt = typ = None
        ddf_name = False
        sub = props.get("Format")
        if sub is not None:
            fmt = self.formats.get(sub[0].tag) if len(sub) == 1 else None
            fmt = fmt or self.format(sub)
        sub = props.get("Type")
        if sub is not None:
            first = sub[0] if len(sub) == 1 else None
            inner = get(first.tag) if first is not None else None
            if first is not None and (inner == "MIME" or inner == "DDFName"):
                text = first.text
                typ = text.strip() if text else ""
                ddf_name = inner == "DDFName"
            else:
                typ, ddf_name = self.type(sub)
        # ACL, Title, TStamp (and whether it was there) and VerNo; Name and Size are the device's.
        # Inline, not a helper: a call and a tuple per node are a measurable part of a big import.
        acl = title = tstamp = verno = None
        sub = props.get("ACL")
        if sub is not None:
            acl = sub.text
            acl = acl.strip() if acl else ""
            if acl:
                try:
                    Acl.parse(acl)
                except TreeError as exc:
                    raise self.fail(sub, str(exc)) from None
        sub = props.get("Title")
        if sub is not None:
            title = sub.text or ""
            if len(title) > 63 and len(title.encode("utf-8")) > 255:
                raise self.fail(sub, "Title is limited to 255 bytes")
        sub = props.get("TStamp")
        has_tstamp = sub is not None
        if sub is not None:
            text = sub.text
            text = text.strip() if text else ""
            if text:
                try:
                    tstamp = _parse_tstamp(text)
                except ValueError:
                    raise self.fail(sub, f"TStamp {text!r} is not ISO 8601 basic UTC (20010711T163817Z)") from None
        sub = props.get("VerNo")
        if sub is not None:
            digits = sub.text
            digits = digits.strip() if digits else ""
            if not digits.isdigit() or int(digits) > 0xFFFF:
                raise self.fail(sub, f"VerNo {digits!r} is not a 16-bit number")
            verno = int(digits)
        interior = fmt == "node" if fmt is not None else bool(kids) or (ddf_name and value_el is None)
        value: Value = None
        if interior:
            if value_el is not None:
                raise self.fail(value_el, f"interior node {uris.join(segs)} has a <Value>")
            self.interiors.append(segs)
        elif kids:
            raise self.fail(kids[0], f"leaf node {uris.join(segs)} (Format {fmt}) has child nodes")
        elif value_el is not None:
            if len(value_el) or fmt in _CHECKED:
                value = self.value(value_el, fmt, segs)
            else:
                value = value_el.text or ""
        self.items.append((segs, interior, value, fmt, typ, acl, title, tstamp, has_tstamp, verno))
        for kid in kids:
            self.node(kid, segs, base)

    def path(self, el: etree._Element) -> tuple[str, ...]:
        """``Path`` of a top-level node; relative to ``base`` (the root unless the caller gave a target)."""
        text = (el.text or "").strip()
        if text in ("", ".", "./"):
            return ()
        if text != "/":
            text = text.rstrip("/")  # Windows writes "./Vendor/MSFT/"
        try:
            return uris.split(text)
        except EmulatorError as exc:
            raise self.fail(el, f"bad <Path> {text!r}: {exc}") from None

    def rt_slow(self, rt: etree._Element) -> dict[str | None, etree._Element]:
        """RTProperties with foreign elements, comments, repeats or unknown names."""
        props: dict[str | None, etree._Element] = {}
        for sub in rt:
            tag = self.local(sub)
            if tag is None:
                continue
            if tag not in _RT_TAGS:
                raise self.fail(sub, f"unexpected <{tag}> in <RTProperties>")
            if tag in props:
                raise self.fail(sub, f"<{tag}> twice in <RTProperties>")
            props[tag] = sub
        return props

    def format(self, el: etree._Element) -> str:
        found = [sub for sub in el if isinstance(sub.tag, str)]
        if len(found) != 1:
            raise self.fail(el, f"<Format> must hold exactly one element, found {len(found)}")
        fmt = etree.QName(found[0]).localname.lower()  # hostap writes <Chr/>
        if fmt not in FORMATS:
            raise self.fail(found[0], f"unknown Format <{etree.QName(found[0]).localname}>")
        return fmt

    def type(self, el: etree._Element) -> tuple[str, bool]:
        found = [sub for sub in el if isinstance(sub.tag, str)]
        if not found:  # lenient: <Type>text/plain</Type>
            return (el.text or "").strip(), False
        if len(found) != 1 or self.local(found[0]) not in ("MIME", "DDFName"):
            raise self.fail(el, "<Type> must hold one <MIME> or <DDFName>")
        return (found[0].text or "").strip(), self.local(found[0]) == "DDFName"

    def value(self, el: etree._Element, fmt: str | None, segs: tuple[str, ...]) -> Value:
        if len(el):
            raise self.fail(el, f"<Value> of {uris.join(segs)} holds markup; escape it or use CDATA")
        text = el.text or ""
        if fmt in TYPED and text.strip() not in ("", MASK) and not TYPED[fmt](text.strip()):
            raise self.fail(el, f"value {text[:40]!r} of {uris.join(segs)} is not a valid {fmt} "
                                f"({TYPED_HINT[fmt]})")
        if fmt != "bin":
            return text
        try:
            return base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise self.fail(el, f"value of {uris.join(segs)} (Format bin) is not base64") from None

