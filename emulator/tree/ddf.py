"""DDF (Device Description Framework) files: what an MO may contain (PROTOCOL.md 3.9, 1.11).

A DDF is the contract a tree is checked against: which nodes exist, which are placeholders
(``<x>``), their format, how many instances may exist and which commands they take. The loader
turns the XML into immutable ``NodeDesc`` trees so thousands of devices can share one description,
and ``validate`` checks a live tree through a two-method view, so it works on the real tree, a
TNDS document or a plain dict alike.

DDF files come from outside (vendors, servers, users), so parsing is hardened like every other
decoder: no entities, no DTD loading, no network; each problem names the file and line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal, Protocol, TypedDict

from lxml import etree

from emulator.errors import EmulatorError, FileFormatError, UnsupportedError
from emulator.tree import uri as uri_mod
from emulator.util import xmlsafe

FORMATS = frozenset({"b64", "bin", "bool", "chr", "int", "node", "null", "xml", "date", "time", "float"})
ACCESS_TYPES = frozenset({"Add", "Copy", "Delete", "Exec", "Get", "Replace"})
OCCURRENCE_KINDS = ("One", "ZeroOrOne", "ZeroOrMore", "OneOrMore", "ZeroOrN", "OneOrN")
SCOPES = ("Permanent", "Dynamic")
CASE_SENSES = ("CS", "CIS")
_MAX_N = 65536

# Shipped DDFs live in <repo>/assets/ddf; the repo root is the parent of the ``emulator`` package.
ASSET_DIR = Path(__file__).resolve().parents[2] / "assets" / "ddf"



@dataclass(frozen=True, slots=True)
class Occurrence:
    """How many instances of a node may exist under one parent (``n`` only for the ``...OrN`` kinds)."""

    kind: str = "One"
    n: int | None = None

    @property
    def min(self) -> int:
        return 1 if self.kind in ("One", "OneOrMore", "OneOrN") else 0

    @property
    def max(self) -> int | None:
        """Upper bound; None means unbounded."""
        if self.kind in ("One", "ZeroOrOne"):
            return 1
        if self.kind in ("ZeroOrN", "OneOrN"):
            return self.n
        return None

    def allows(self, count: int) -> bool:
        return count >= self.min and (self.max is None or count <= self.max)

    @property
    def marker(self) -> str:
        """The StdObj graphic marker: '' One, '?' ZeroOrOne, '*' ZeroOrMore, '+' OneOrMore, '*N', '+N'."""
        return {
            "One": "",
            "ZeroOrOne": "?",
            "ZeroOrMore": "*",
            "OneOrMore": "+",
            "ZeroOrN": f"*{self.n}",
            "OneOrN": f"+{self.n}",
        }[self.kind]


ONE = Occurrence("One")


@dataclass(frozen=True, slots=True)
class NodeDesc:
    """One described node. ``name`` None is an unnamed ``<x>`` placeholder filled at run time.

    ``mime`` holds the DFType MIME types (leaves); ``ddf_name`` the DFType DDFName (the MO
    identifier, on an MO root). ``default`` is DefaultValue, or the DDF ``Value`` when there is
    none (both mean "value for a new instance").
    """

    name: str | None
    format: str = "node"
    access: frozenset[str] = frozenset()
    occurrence: Occurrence = ONE
    scope: str = "Dynamic"
    mime: tuple[str, ...] = ()
    ddf_name: str | None = None
    default: str | None = None
    description: str | None = None
    case_sense: str | None = None
    children: tuple[NodeDesc, ...] = ()
    title: str | None = None
    _named: dict[str, NodeDesc] = field(default_factory=dict, init=False, repr=False, compare=False)
    _folded: dict[str, NodeDesc] = field(default_factory=dict, init=False, repr=False, compare=False)
    _placeholder: NodeDesc | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Lookup tables built once: ``child`` runs on every tree command that consults the DDF.
        for c in self.children:
            if c.name is None:
                object.__setattr__(self, "_placeholder", c)
            else:
                self._named[c.name] = c
                if c.case_sense == "CIS":
                    self._folded[c.name.casefold()] = c

    @property
    def is_leaf(self) -> bool:
        return self.format != "node"

    @property
    def is_open(self) -> bool:
        """An interior node whose content the DDF leaves free (Ext, Bearer, Inbox): anything goes below."""
        return self.format == "node" and not self.children

    def child(self, name: str) -> NodeDesc | None:
        """The description a run-time child called ``name`` falls under: its named node, else the placeholder."""
        found = self._named.get(name)
        if found is None and self._folded:
            found = self._folded.get(name.casefold())
        return found if found is not None else self._placeholder


@dataclass(frozen=True, slots=True)
class MODescription:
    """A loaded DDF: the MO root plus where it was found.

    ``path`` is the DDF ``Path`` of the root (URI of its parent, e.g. ``"."`` or ``"./Vendor/MSFT"``)
    or None when the DDF does not place it (DM 2.0 MOs are addressed by MOID). ``others`` holds
    further top-level nodes that are not inside the root (e.g. the same MO under ``./User`` and
    ``./Device`` in a Windows DDF), each with its parent path (or None).
    """

    moid: str | None
    root: NodeDesc
    man: str | None = None
    mod: str | None = None
    source: str = "<bytes>"
    path: str | None = None
    others: tuple[tuple[str | None, NodeDesc], ...] = ()


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a tree instance departs from its description; ``path`` is relative to the MO root."""

    path: tuple[str, ...]
    kind: Literal["format", "unknown", "missing", "occurrence"]
    message: str


class TreeView(Protocol):
    """The two questions ``validate`` asks a tree; paths are tuples relative to the MO instance root."""

    def children(self, path: tuple[str, ...]) -> list[str] | None:
        """Child names of an interior node; None for a leaf."""
        ...

    def format(self, path: tuple[str, ...]) -> str:
        """The node's Format property (``node`` for interior nodes)."""
        ...


# ---------------------------------------------------------------------------------------------
# loading


def load_ddf(source: str | os.PathLike[str] | bytes, *, name: str | None = None) -> MODescription:
    """Parse a DDF file (path) or document (bytes); ``name`` labels bytes in error messages."""
    if isinstance(source, bytes):
        data, label = source, name or "<bytes>"
    else:
        label = name or os.fspath(source)
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise FileFormatError(label, None, f"cannot read DDF: {exc.strerror or exc}") from None
    root = _parse_xml(data, label)
    return _Loader(label).mgmt_tree(root)


def _parse_xml(data: bytes, label: str) -> etree._Element:
    return xmlsafe.parse(data, source=label)


def _local(el: etree._Element) -> str | None:
    """The DDF element name of ``el``, or None for comments, PIs and foreign-namespace extensions.

    DDFs come namespace-free (OMA, Windows) or in ``syncml:dmddf1.2``; vendor additions such as
    ``MSFT:Applicability`` sit in their own namespace and are skipped, not refused.
    """
    tag = el.tag
    if not isinstance(tag, str):
        return None
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return local if ns.lower().startswith("syncml:dmddf") else None
    return tag


def _elements(el: etree._Element) -> Iterator[tuple[str, etree._Element]]:
    for child in el:
        local = _local(child)
        if local is not None:
            yield local, child


def _text(el: etree._Element) -> str:
    return "".join(el.itertext()).strip()


class _Props(TypedDict, total=False):
    """The properties of a node being read, by NodeDesc field name; ``format`` is always set."""

    format: str
    access: frozenset[str]
    occurrence: Occurrence
    scope: str
    mime: tuple[str, ...]
    ddf_name: str | None
    default: str
    description: str | None
    case_sense: str
    title: str | None


@dataclass
class _Draft:
    """A node while the file is read; frozen into NodeDesc once Path grafting is done."""

    name: str | None
    line: int
    props: _Props
    value: str | None
    children: list[_Draft]
    path: tuple[str, ...] | None = None


class _Loader:
    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, el: etree._Element | None, reason: str) -> FileFormatError:
        return FileFormatError(self.label, el.sourceline if el is not None else None, reason)

    def mgmt_tree(self, root: etree._Element) -> MODescription:
        if _local(root) != "MgmtTree":
            raise self.fail(root, f"root element is <{etree.QName(root).localname}>, expected <MgmtTree>")
        man = mod = None
        tops: list[_Draft] = []
        for tag, el in _elements(root):
            if tag == "VerDTD":
                continue
            if tag == "Man":
                man = _text(el)
            elif tag == "Mod":
                mod = _text(el)
            elif tag == "Node":
                tops.append(self.node(el, top=True))
            else:
                raise self.fail(el, f"unexpected <{tag}> in <MgmtTree>")
        if not tops:
            raise self.fail(root, "<MgmtTree> describes no <Node>")
        main = next((d for d in tops if d.props.get("ddf_name") or _interior_mime(d)), tops[0])
        others: list[tuple[str | None, _Draft]] = []
        main_uri = (*main.path, main.name or "<x>") if main.path is not None else None
        for d in tops:
            if d is main:
                continue
            if main_uri is not None and d.path is not None and _starts_with(d.path, main_uri):
                self.graft(main, d, d.path[len(main_uri) :])
            else:
                others.append((None if d.path is None else uri_mod.join(d.path), d))
        frozen_main = self.freeze(main)
        moid = frozen_main.ddf_name or (frozen_main.mime[0] if _interior_mime(main) else None)
        return MODescription(
            moid=moid,
            root=frozen_main,
            man=man or None,
            mod=mod or None,
            source=self.label,
            path=None if main.path is None else uri_mod.join(main.path),
            others=tuple((p, self.freeze(d)) for p, d in others),
        )

    def graft(self, base: _Draft, draft: _Draft, rest: tuple[str, ...]) -> None:
        """Hang a flat top-level node (``Path`` inside the MO) under the node its Path names."""
        at = base
        for seg in rest:
            nxt = next((c for c in at.children if c.name == seg), None)
            if nxt is None and _is_placeholder_segment(seg):
                nxt = next((c for c in at.children if c.name is None), None)
            if nxt is None:
                shown = uri_mod.join(draft.path or ())
                raise FileFormatError(self.label, draft.line, f"Path {shown} names no node described here")
            at = nxt
        at.children.append(draft)

    def node(self, el: etree._Element, *, top: bool) -> _Draft:
        name: str | None = None
        seen_name = False
        path: tuple[str, ...] | None = None
        props: _Props = {}
        value: str | None = None
        children: list[_Draft] = []
        for tag, sub in _elements(el):
            if tag == "NodeName":
                name = _text(sub) or None
                seen_name = True
            elif tag == "Path":
                path = self.path(sub)
            elif tag == "DFProperties":
                props.update(self.df_properties(sub))
            elif tag == "RTProperties":  # what DFProperties said wins
                rt = self.rt_properties(sub)
                if "format" in rt:
                    props.setdefault("format", rt["format"])
                if "mime" in rt:
                    props.setdefault("mime", rt["mime"])
                if "ddf_name" in rt:
                    props.setdefault("ddf_name", rt["ddf_name"])
            elif tag == "Value":
                value = _text(sub)
            elif tag == "Node":
                children.append(self.node(sub, top=False))
            else:
                raise self.fail(sub, f"unexpected <{tag}> in <Node>")
        if not seen_name:
            raise self.fail(el, "<Node> without <NodeName> (use an empty <NodeName/> for a placeholder)")
        if name is not None and ("/" in name or name in (".", "..")):
            raise self.fail(el, f"node name {name!r} is not a valid URI segment")
        fmt = props.get("format")
        if fmt is None:
            props["format"] = "node" if children else "chr"
        elif fmt == "node" and value is not None:
            raise self.fail(el, f"interior node {name or '<x>'} has a <Value>")
        elif fmt != "node" and children:
            raise self.fail(el, f"leaf node {name or '<x>'} (format {fmt}) has child nodes")
        self.check_siblings(children)
        return _Draft(name, el.sourceline or 0, props, value, children, path if top else None)

    def check_siblings(self, children: list[_Draft]) -> None:
        seen: set[str] = set()
        placeholder = False
        for c in children:
            if c.name is None:
                if placeholder:
                    raise FileFormatError(self.label, c.line, "two unnamed (<x>) nodes under one parent")
                placeholder = True
            elif c.name in seen:
                raise FileFormatError(self.label, c.line, f"node name {c.name!r} appears twice under one parent")
            else:
                seen.add(c.name)

    def path(self, el: etree._Element) -> tuple[str, ...]:
        text = _text(el)
        if text in ("", ".", "./"):
            return ()
        text = text.rstrip("/") if text != "/" else text  # Windows DDFs write "./Vendor/MSFT/"
        try:
            return uri_mod.split(text)
        except EmulatorError as exc:
            raise self.fail(el, f"bad <Path> {text!r}: {exc}") from None

    def df_properties(self, el: etree._Element) -> _Props:
        props: _Props = {}
        for tag, sub in _elements(el):
            if tag == "AccessType":
                props["access"] = self.access(sub)
            elif tag == "DFFormat":
                props["format"] = self.one_of(sub, FORMATS, "DFFormat", fold=True)
            elif tag == "Occurrence":
                props["occurrence"] = self.occurrence(sub)
            elif tag == "Scope":
                props["scope"] = self.one_of(sub, frozenset(SCOPES), "Scope")
            elif tag == "DFType":
                mime, ddf_name = self.df_type(sub)
                props["mime"] = mime
                props["ddf_name"] = ddf_name
            elif tag == "CaseSense":
                props["case_sense"] = self.one_of(sub, frozenset(CASE_SENSES), "CaseSense")
            elif tag == "DefaultValue":
                props["default"] = _text(sub)
            elif tag == "Description":
                props["description"] = _text(sub) or None
            elif tag == "DFTitle":
                props["title"] = _text(sub) or None
            else:
                raise self.fail(sub, f"unexpected <{tag}> in <DFProperties>")
        if "format" not in props:
            raise self.fail(el, "<DFProperties> without <DFFormat>")
        return props

    def rt_properties(self, el: etree._Element) -> _Props:
        """Only Format and Type matter for a description; the other run-time properties are ignored."""
        props: _Props = {}
        for tag, sub in _elements(el):
            if tag == "Format":
                props["format"] = self.one_of(sub, FORMATS, "Format", fold=True)
            elif tag == "Type":
                mime, ddf_name = self.df_type(sub)
                props["mime"] = mime
                props["ddf_name"] = ddf_name
        return props

    def access(self, el: etree._Element) -> frozenset[str]:
        names = []
        for tag, sub in _elements(el):
            if tag not in ACCESS_TYPES:
                raise self.fail(sub, f"unknown access type <{tag}>")
            names.append(tag)
        return frozenset(names)

    def one_of(self, el: etree._Element, allowed: frozenset[str], what: str, *, fold: bool = False) -> str:
        found = [(tag, sub) for tag, sub in _elements(el)]
        if len(found) != 1:
            raise self.fail(el, f"<{what}> must hold exactly one element, found {len(found)}")
        tag, sub = found[0]
        key = tag.lower() if fold else tag  # hostap and others write <Chr/>
        if key not in allowed:
            raise self.fail(sub, f"unknown {what} <{tag}> (expected one of {', '.join(sorted(allowed))})")
        return key

    def occurrence(self, el: etree._Element) -> Occurrence:
        found = list(_elements(el))
        if len(found) != 1:
            raise self.fail(el, f"<Occurrence> must hold exactly one element, found {len(found)}")
        tag, sub = found[0]
        if tag not in OCCURRENCE_KINDS:
            raise self.fail(sub, f"unknown occurrence <{tag}>")
        if tag in ("ZeroOrN", "OneOrN"):
            text = _text(sub)
            if not text.isdigit() or not 1 <= int(text) <= _MAX_N:
                raise self.fail(sub, f"<{tag}> needs a count N between 1 and {_MAX_N}, got {text!r}")
            return Occurrence(tag, int(text))
        return Occurrence(tag)

    def df_type(self, el: etree._Element) -> tuple[tuple[str, ...], str | None]:
        mime: list[str] = []
        ddf_name = None
        for tag, sub in _elements(el):
            if tag == "MIME":
                text = _text(sub)
                if text:
                    mime.append(text)
            elif tag == "DDFName":
                ddf_name = _text(sub) or None
            else:
                raise self.fail(sub, f"unexpected <{tag}> in <{_local(el)}>")
        return tuple(mime), ddf_name

    def freeze(self, d: _Draft) -> NodeDesc:
        self.check_siblings(d.children)  # grafting may have added a clash
        p = d.props
        default = p.get("default")
        return NodeDesc(
            name=d.name,
            format=p["format"],
            access=p.get("access", frozenset()),
            occurrence=p.get("occurrence", ONE),
            scope=p.get("scope", "Dynamic"),
            mime=p.get("mime", ()),
            ddf_name=p.get("ddf_name"),
            default=default if default is not None else d.value,
            description=p.get("description"),
            case_sense=p.get("case_sense"),
            children=tuple(self.freeze(c) for c in d.children),
            title=p.get("title"),
        )


def _interior_mime(d: _Draft) -> bool:
    """Windows DDFs put the MO id of a CSP root in DFType/MIME instead of DDFName."""
    return d.props.get("format") == "node" and bool(d.props.get("mime"))


def _is_placeholder_segment(seg: str) -> bool:
    return seg.lower() in ("<x>", "*")


def _starts_with(path: tuple[str, ...], prefix: tuple[str, ...]) -> bool:
    if len(path) < len(prefix):
        return False
    return all(a == b or (b == "<x>" and _is_placeholder_segment(a)) for a, b in zip(path, prefix, strict=False))


# ---------------------------------------------------------------------------------------------
# shipped DDFs


@lru_cache(maxsize=1)
def _builtin_index() -> dict[str, MODescription]:
    """Every shipped DDF by MO identifier; read once per process (descriptions are immutable)."""
    index: dict[str, MODescription] = {}
    for file in sorted(ASSET_DIR.glob("*.xml")):
        desc = load_ddf(file)
        if desc.moid is None:
            raise FileFormatError(str(file), None, "shipped DDF has no DDFName on its root node")
        if desc.moid in index:
            raise FileFormatError(str(file), None, f"MO {desc.moid} also described in {index[desc.moid].source}")
        index[desc.moid] = desc
    return index


def builtin_moids() -> tuple[str, ...]:
    """MO identifiers of the DDFs shipped in assets/ddf, sorted."""
    return tuple(sorted(_builtin_index()))


def find_builtin(moid: str) -> MODescription | None:
    """The shipped DDF of ``moid``, or None (an MO the device knows no description of)."""
    return _builtin_index().get(moid)


def load_builtin(moid: str) -> MODescription:
    """The shipped description of ``moid``; UnsupportedError (406) for an MO we do not describe."""
    try:
        return _builtin_index()[moid]
    except KeyError:
        known = ", ".join(builtin_moids())
        raise UnsupportedError(f"no shipped DDF for MO {moid!r} (known: {known})") from None


# ---------------------------------------------------------------------------------------------
# lookup and validation


def describe(desc: MODescription | NodeDesc, relpath: tuple[str, ...]) -> NodeDesc | None:
    """The description of the node at ``relpath`` below the MO root (``()`` is the root itself).

    Named nodes win over the placeholder at each level; below an open node (Ext, Bearer) nothing
    is described, so the answer is None there as for a path that leaves the MO.
    """
    node = desc.root if isinstance(desc, MODescription) else desc
    for seg in relpath:
        nxt = node.child(seg)
        if nxt is None:
            return None
        node = nxt
    return node


def validate(desc: MODescription | NodeDesc, view: TreeView) -> list[Violation]:
    """Every departure of the instance seen through ``view`` from ``desc``, in tree order.

    Checks format (leaf vs interior, and the leaf format), unknown children, missing required
    children and instance counts against Occurrence. Subtrees of open nodes are not checked.
    """
    root = desc.root if isinstance(desc, MODescription) else desc
    out: list[Violation] = []
    _check(root, (), view, out)
    return out


def _check(node: NodeDesc, path: tuple[str, ...], view: TreeView, out: list[Violation]) -> None:
    kids = view.children(path)
    shown = uri_mod.join(path) if path else "the MO root"
    if node.format != "node":
        if kids is not None:
            out.append(Violation(path, "format", f"{shown} should be a leaf ({node.format}) but is interior"))
            return
        actual = view.format(path)
        if actual.lower() != node.format:
            out.append(Violation(path, "format", f"{shown} has format {actual}, the DDF says {node.format}"))
        return
    if kids is None:
        out.append(Violation(path, "format", f"{shown} should be an interior node but is a leaf"))
        return
    if node.is_open:
        return
    counts: dict[int, int] = {}
    for name in kids:
        sub = node.child(name)
        child_path = (*path, name)
        if sub is None:
            out.append(Violation(child_path, "unknown", f"{uri_mod.join(child_path)} is not described by the DDF"))
            continue
        counts[id(sub)] = counts.get(id(sub), 0) + 1
        _check(sub, child_path, view, out)
    for sub in node.children:
        n = counts.get(id(sub), 0)
        occ = sub.occurrence
        if occ.allows(n):
            continue
        label = uri_mod.join((*path, sub.name or "<x>"))
        if n == 0:
            out.append(Violation((*path, sub.name or "<x>"), "missing", f"{label} is required ({occ.kind})"))
        else:
            bound = f"{occ.kind}({occ.n})" if occ.n else occ.kind
            out.append(Violation((*path, sub.name or "<x>"), "occurrence", f"{label}: {n} instances, DDF allows {bound}"))
