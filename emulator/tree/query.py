"""DM Get with a query: ``?list=Struct|StructData|TNDS[+/-props]`` and ``?prop=<Name>`` (PROTOCOL.md 3.6, 3.3).

One function answers every Get a server sends, so the SyncML and DM 2.0 engines only turn a
:class:`QueryResult` into their own wire form (Results items, or one TNDS document).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from emulator.tree import uri as uris
from emulator.tree.errors import TreeError
from emulator.tree.tnds import SELECTABLE, TNDS_XML, export_tnds
from emulator.tree.tree import Tree, Value


class ResultItem(NamedTuple):
    """One Results item: ``Source/LocURI``, ``Data`` and the Meta Format/Type to send with it."""

    path: str
    value: Value
    format: str
    type: str


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Either ``items`` (plain Get, ``?prop=``, ``Struct``, ``StructData``) or one ``document`` of ``mime``."""

    items: tuple[ResultItem, ...] = ()
    document: bytes | None = None
    mime: str | None = None

    @property
    def is_document(self) -> bool:
        return self.document is not None


def run_query(tree: Tree, uri_with_query: str, *, by: str | None) -> QueryResult:
    """Answer ``Get <uri_with_query>`` for server ``by`` (``None``: the device itself, no ACL).

    Raises :class:`TreeError` with the status to answer: 404 missing, 405 Get not allowed,
    406 unknown query/property or mixed ``+``/``-``, 425 the server may not read the node.
    Nodes below the target that the server may not read are left out, not refused.
    """
    query = uris.parse_query(uri_with_query)
    if query.prop is not None:
        value = tree.get_prop(query.path, query.prop, by=by)
        return QueryResult((ResultItem(uri_with_query, value, "chr", "text/plain"),))
    top = tree.get(query.path, by=by)  # 404 / 405 / 425 on the target itself, whatever the query
    if query.list is None:
        if top.children is None:
            item = ResultItem(top.path, top.value, top.format, top.type)
        else:  # interior: its child names joined by '/' (PROTOCOL 3.2)
            item = ResultItem(top.path, "/".join(top.children), "node", top.type)
        return QueryResult((item,))
    kind, props = parse_list(query.list, uri_with_query)
    if kind == "TNDS":
        return QueryResult(document=export_tnds(tree, query.path, props=props, by=by), mime=TNDS_XML)
    with_data = kind == "StructData"
    items = tuple(
        ResultItem(info.path, info.value if with_data and info.children is None else None, info.format, info.type)
        for info in tree.walk(query.path, by=by)
    )
    return QueryResult(items)


def parse_list(value: str, uri: str = "") -> tuple[str, frozenset[str] | None]:
    """``Struct``, ``StructData``, ``TNDS``, ``TNDS+Value+ACL`` (only these) or ``TNDS-Format`` (all but).

    Returns the kind and, for TNDS, the selected properties (None: all). Anything else is 406.
    """
    if value in ("Struct", "StructData", "TNDS"):
        return value, None
    if not value.startswith("TNDS") or value[4] not in "+-":
        raise TreeError(406, f"unsupported ?list={value}", uri=uri)
    sign, rest = value[4], value[5:]
    if ("-" if sign == "+" else "+") in rest:
        raise TreeError(406, f"?list={value} mixes '+' and '-'", uri=uri)
    names = rest.split(sign)
    unknown = [n for n in names if n not in SELECTABLE]
    if unknown:
        raise TreeError(406, f"?list={value}: unknown TNDS property {', '.join(map(repr, unknown))}", uri=uri)
    chosen = frozenset(names)
    return "TNDS", chosen if sign == "+" else SELECTABLE - chosen
