"""SyncML DM message <-> model (commands.py), for XML and (through wbxml.py) WBXML.

Parsing is tolerant where real servers are sloppy and strict where a message could hurt us:

- Elements are matched by local name only: with or without the SyncML namespace (1.1 or 1.2), MetInf
  values inside or outside `syncml:metinf`, with or without a `MetInf` wrapper in `Meta`.
- Bare `&` in text (`<Data>MAXDT=15&DR=1</Data>`, as in the AOSP test packages) is repaired to `&amp;`
  and the document parsed again, but only after a strict parse failed.
- DOCTYPEs are allowed (servers send the public SyncML one) but never loaded; any entity declaration
  is refused with DecodeError (entity bombs), nothing is fetched from the network.
- A broken header (no SyncHdr, SessionID or MsgID, a bad MaxMsgSize) fails the whole message with
  DecodeError: nothing sensible can be answered. A broken *command* (no CmdID, a non-numeric code,
  an element DM does not know) becomes `Unknown` in place, so the engine answers that command alone.

Building always produces SyncML 1.2 (or 1.1 when `ver_dtd` says so) with MetInf children carrying
their own `xmlns="syncml:metinf"`, like the examples in the specification.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from lxml import etree

from emulator.errors import DecodeError, EmulatorError, TooLargeError, UnsupportedError
from emulator.protocol.syncml import codes, quirks
from emulator.protocol.syncml.commands import (
    Add,
    Alert,
    Atomic,
    Chal,
    Command,
    Copy,
    Cred,
    Delete,
    Exec,
    Get,
    Item,
    ItemCommand,
    Message,
    Meta,
    Replace,
    Results,
    Sequence,
    Status,
    SyncHdr,
    Unknown,
)
from emulator.util import xmlsafe

_XML_TYPES = frozenset({codes.MEDIA_DM_XML, codes.MEDIA_DS_XML})
_WBXML_TYPES = frozenset({codes.MEDIA_DM_WBXML, codes.MEDIA_DS_WBXML})

# SyncML commands that exist but have no meaning in DM: answered 501 rather than 400.
_NOT_IN_DM = frozenset(
    {"Sync", "Map", "Put", "Search", "Archive", "SftDel", "MapItem", "NoResults", "Move"}
)

_DIGITS = re.compile(r"[0-9]{1,18}")
_SYNCML_NS = frozenset({codes.NS_SYNCML_11, codes.NS_SYNCML_12, "SYNCML:SYNCML1.0"})


# ----------------------------------------------------------------------------------------- parsing


class _BadCommand(Exception):
    """Internal: a command is malformed; carries the status its Unknown stand-in gets."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def media_kind(content_type: str) -> str:
    """'xml' or 'wbxml' for a SyncML DM content type (parameters allowed), else UnsupportedError 415."""
    base = content_type.split(";", 1)[0].strip().lower()
    if base in _XML_TYPES:
        return "xml"
    if base in _WBXML_TYPES:
        return "wbxml"
    raise UnsupportedError(f"unsupported content type {content_type!r} for a SyncML DM message", status=415)


def _charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return None


def parse_xml_safely(data: bytes, *, encoding: str | None = None) -> etree._Element:
    """Untrusted SyncML XML through the project's one safe parser (bare ``&`` repaired once)."""
    return xmlsafe.parse(data, encoding=encoding, repair_ampersands=True)


def parse_message(data: bytes, content_type: str, *, max_size: int | None = None) -> Message:
    """Decode one SyncML DM message (XML or WBXML, chosen by the content type)."""
    kind = media_kind(content_type)
    data = bytes(data)
    if max_size is not None and len(data) > max_size:
        raise TooLargeError(f"SyncML message of {len(data)} bytes exceeds the limit of {max_size}")
    if kind == "wbxml":
        from emulator.protocol.syncml import wbxml  # lazy: lands separately, XML works without it

        root = wbxml.decode(data, max_size=max_size)
    else:
        charset = _charset(content_type)
        declared = data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<?xml")
        root = parse_xml_safely(data, encoding=None if declared else charset)
    try:
        return message_from_element(root)
    except EmulatorError:
        raise
    except (ValueError, TypeError, AttributeError, LookupError) as exc:  # defensive: never leak these
        raise DecodeError(f"cannot decode SyncML message: {exc}") from exc


def _local(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def _kids(el: etree._Element) -> Iterator[etree._Element]:
    """Element children only (no comments or PIs); the filter runs in C."""
    return el.iterchildren(etree.Element)


def _find(el: etree._Element, name: str) -> etree._Element | None:
    """The first child called ``name`` in any namespace or none (lxml's ``{*}`` matches both, in C).

    ``iterchildren`` rather than ``find``: it skips ElementPath's path parsing, half the cost per call.
    """
    return next(el.iterchildren("{*}" + name), None)


def _find_all(el: etree._Element, name: str) -> list[etree._Element]:
    return list(el.iterchildren("{*}" + name))


_Index = dict[str, etree._Element]


def _index(el: etree._Element) -> _Index:
    """The first child of each local name, in one pass: what `_find` answers, for elements (commands,
    items, the header) that are asked for several children, each lookup then a dict get."""
    out: _Index = {}
    for child in el.iterchildren(etree.Element):
        tag = child.tag
        if not isinstance(tag, str):  # never, for a parsed element; lxml's types allow bytes and QName
            continue
        name = tag[tag.find("}") + 1:]
        if name not in out:
            out[name] = child
    return out


def _text(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    return (el.text or "").strip()


def _child_text(el: etree._Element, name: str) -> str | None:
    return _text(_find(el, name))


def _int(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    if not _DIGITS.fullmatch(text):
        raise DecodeError(f"{what} is not a number: {text[:40]!r}")
    return int(text)


def _loc_uri(k: _Index, name: str) -> str | None:
    holder = k.get(name)
    if holder is None:
        return None
    return _child_text(holder, "LocURI") or ""


def _meta_values(meta_el: etree._Element) -> Iterator[etree._Element]:
    for child in _kids(meta_el):
        if _local(child) == "MetInf":
            yield from _kids(child)
        else:
            yield child


def _parse_meta(el: etree._Element | None) -> Meta | None:
    if el is None:
        return None
    meta = Meta()
    for child in _meta_values(el):
        name = _local(child)
        if name == "Format":
            meta.format = _text(child)
        elif name == "Type":
            meta.type = _text(child)
        elif name == "Mark":
            meta.mark = _text(child)
        elif name == "Size":
            meta.size = _int(_text(child), "Meta/Size")
        elif name == "Version":
            meta.version = _text(child)
        elif name == "NextNonce":
            meta.next_nonce = _text(child)
        elif name == "MaxMsgSize":
            meta.max_msg_size = _int(_text(child), "Meta/MaxMsgSize")
        elif name == "MaxObjSize":
            meta.max_obj_size = _int(_text(child), "Meta/MaxObjSize")
    return meta


def _embedded_xml(child: etree._Element) -> str:
    """Serialise an element found inside Data; SyncML's inherited namespace is dropped from it."""
    clone = copy.deepcopy(child)
    for el in clone.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            ns, _, local = el.tag[1:].partition("}")
            if ns in _SYNCML_NS:
                el.tag = local
    if clone.xpath("boolean(descendant-or-self::*[@*])"):
        from emulator.protocol.syncml import wbxml

        etree.strip_attributes(clone, wbxml.OPAQUE_ATTR)  # the decoder's private mark, not content
    etree.cleanup_namespaces(clone)
    return etree.tostring(clone, encoding="unicode", with_tail=True)


def _data_value(el: etree._Element) -> str | bytes:
    """Data content: bytes exactly when it was WBXML OPAQUE (lossless), else text."""
    if el.attrib:  # only decoded WBXML marks opaque content with an attribute
        from emulator.protocol.syncml import wbxml

        raw = wbxml.opaque_bytes(el)
        if raw is not None:
            return raw
    if not any(True for _ in _kids(el)):
        return el.text or ""
    parts = [el.text or ""]
    parts.extend(_embedded_xml(child) for child in _kids(el))
    return "".join(parts).strip()


@overload
def chr_text(data: str | bytes, fmt: str | None) -> str | bytes: ...
@overload
def chr_text(data: None, fmt: str | None) -> None: ...
def chr_text(data: str | bytes | None, fmt: str | None) -> str | bytes | None:
    """Data in Format ``chr`` as text: WBXML may carry it as OPAQUE bytes (libwbxml, some servers),
    and the same value must not read ``b'test model'`` there and ``test model`` in XML.

    The one place both sides decode it (the device's executor and the reference server read parsed
    messages). Bytes that are not UTF-8 stay bytes: the value is kept, nothing is lost or guessed.
    Other formats (bin, b64, absent) are left alone.
    """
    if isinstance(data, bytes) and (fmt or "").strip().lower() == "chr":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data
    return data


def _parse_item(el: etree._Element, cmd_meta: Meta | None = None) -> Item:
    k = _index(el)
    data_el = k.get("Data")
    meta = _parse_meta(k.get("Meta"))
    data = None if data_el is None else _data_value(data_el)
    more = "MoreData" in k
    if isinstance(data, bytes) and not more:  # a chunk may end inside a character: joined chunks are decoded
        data = chr_text(data, (meta.format if meta is not None else None)
                        or (cmd_meta.format if cmd_meta is not None else None))
    return Item(target=_loc_uri(k, "Target"), source=_loc_uri(k, "Source"), meta=meta, data=data, more_data=more)


def _items(el: etree._Element, cmd_meta: Meta | None = None) -> list[Item]:
    return [_parse_item(child, cmd_meta) for child in _find_all(el, "Item")]


def _required(el: etree._Element, k: _Index, name: str) -> str:
    value = _text(k.get(name))
    if value is None:
        raise _BadCommand(f"{_local(el)} without {name}", status=412)
    return value


def _code(k: _Index, what: str) -> int:
    data_el = k.get("Data")
    if data_el is None:
        raise _BadCommand(f"{what} without Data", status=412)
    value = _int(_text(data_el), f"{what}/Data")
    assert value is not None
    return value


_Parser = Callable[[etree._Element, _Index, str], Command]
"""A command's parser: its element, that element's `_index`, its CmdID."""


def _item_command(cls: type[ItemCommand]) -> _Parser:
    def parse(el: etree._Element, k: _Index, cmd_id: str) -> Command:
        meta = _parse_meta(k.get("Meta"))
        cmd = cls(
            cmd_id=cmd_id,
            no_resp="NoResp" in k,
            meta=meta,
            items=_items(el, meta),
        )
        if isinstance(cmd, Exec):
            cmd.correlator = _text(k.get("Correlator"))
        return cmd

    return parse


def _parse_alert(el: etree._Element, k: _Index, cmd_id: str) -> Command:
    return Alert(
        cmd_id=cmd_id,
        code=_code(k, "Alert"),
        no_resp="NoResp" in k,
        correlator=_text(k.get("Correlator")),
        items=_items(el),
    )


def _container(cls: type[Atomic] | type[Sequence]) -> _Parser:
    skip = {"CmdID", "NoResp", "Meta", "Cred"}

    def parse(el: etree._Element, k: _Index, cmd_id: str) -> Command:
        return cls(
            cmd_id=cmd_id,
            no_resp="NoResp" in k,
            meta=_parse_meta(k.get("Meta")),
            commands=[_parse_command(child) for child in _kids(el) if _local(child) not in skip],
        )

    return parse


def _parse_chal(el: etree._Element | None) -> Chal | None:
    if el is None:
        return None
    meta = _parse_meta(_find(el, "Meta")) or Meta()
    return Chal(type=meta.type, format=meta.format, next_nonce=meta.next_nonce)


def _refs(el: etree._Element, name: str) -> list[str]:
    return [_text(child) or "" for child in _find_all(el, name)]


def _parse_status(el: etree._Element, k: _Index, cmd_id: str) -> Command:
    return Status(
        cmd_id=cmd_id,
        msg_ref=_text(k.get("MsgRef")),
        cmd_ref=_required(el, k, "CmdRef"),
        cmd=_required(el, k, "Cmd"),
        code=_code(k, "Status"),
        target_refs=_refs(el, "TargetRef") if "TargetRef" in k else [],
        source_refs=_refs(el, "SourceRef") if "SourceRef" in k else [],
        chal=_parse_chal(k.get("Chal")),
        items=_items(el),
    )


def _parse_results(el: etree._Element, k: _Index, cmd_id: str) -> Command:
    meta = _parse_meta(k.get("Meta"))
    return Results(
        cmd_id=cmd_id,
        msg_ref=_text(k.get("MsgRef")),
        cmd_ref=_required(el, k, "CmdRef"),
        meta=meta,
        target_refs=_refs(el, "TargetRef") if "TargetRef" in k else [],
        source_refs=_refs(el, "SourceRef") if "SourceRef" in k else [],
        items=_items(el, meta),
    )


_PARSERS: dict[str, _Parser] = {
    "Add": _item_command(Add),
    "Replace": _item_command(Replace),
    "Delete": _item_command(Delete),
    "Get": _item_command(Get),
    "Copy": _item_command(Copy),
    "Exec": _item_command(Exec),
    "Alert": _parse_alert,
    "Atomic": _container(Atomic),
    "Sequence": _container(Sequence),
    "Status": _parse_status,
    "Results": _parse_results,
}


def _parse_command(el: etree._Element) -> Command:
    name = _local(el)
    k = _index(el)
    cmd_id = _text(k.get("CmdID")) or None
    parser = _PARSERS.get(name)
    if parser is None:
        status = codes.COMMAND_NOT_IMPLEMENTED if name in _NOT_IN_DM else codes.BAD_REQUEST
        return Unknown(name=name, cmd_id=cmd_id, status=status, reason=f"unknown command element {name}")
    if cmd_id is None:
        return Unknown(name=name, cmd_id=None, status=codes.BAD_REQUEST, reason=f"{name} without CmdID")
    try:
        return parser(el, k, cmd_id)
    except _BadCommand as exc:
        return Unknown(name=name, cmd_id=cmd_id, status=exc.status, reason=exc.reason)
    except DecodeError as exc:
        return Unknown(name=name, cmd_id=cmd_id, status=codes.BAD_REQUEST, reason=str(exc))


def _parse_header(el: etree._Element) -> SyncHdr:
    k = _index(el)
    session_id = _text(k.get("SessionID"))
    msg_id = _text(k.get("MsgID"))
    if not session_id:
        raise DecodeError("SyncHdr without SessionID")
    if not msg_id:
        raise DecodeError("SyncHdr without MsgID")
    target = k.get("Target")
    source = k.get("Source")
    cred_el = k.get("Cred")
    cred = None
    if cred_el is not None:
        cred_meta = _parse_meta(_find(cred_el, "Meta")) or Meta()
        cred = Cred(type=cred_meta.type, format=cred_meta.format, data=_child_text(cred_el, "Data") or "")
    meta = _parse_meta(k.get("Meta")) or Meta()
    return SyncHdr(
        session_id=session_id,
        msg_id=msg_id,
        target=(_child_text(target, "LocURI") or "") if target is not None else "",
        source=(_child_text(source, "LocURI") or "") if source is not None else "",
        ver_dtd=_text(k.get("VerDTD")) or "",
        ver_proto=_text(k.get("VerProto")) or "",
        target_name=_child_text(target, "LocName") if target is not None else None,
        source_name=_child_text(source, "LocName") if source is not None else None,
        resp_uri=_text(k.get("RespURI")),
        no_resp="NoResp" in k,
        cred=cred,
        max_msg_size=meta.max_msg_size,
        max_obj_size=meta.max_obj_size,
    )


def message_from_element(root: etree._Element) -> Message:
    """Model of an already parsed SyncML tree (XML or decoded WBXML)."""
    if _local(root) != "SyncML":
        raise DecodeError(f"root element is {_local(root) or root.tag!r}, not SyncML")
    hdr_el = _find(root, "SyncHdr")
    body_el = _find(root, "SyncBody")
    if hdr_el is None:
        raise DecodeError("SyncML message without SyncHdr")
    if body_el is None:
        raise DecodeError("SyncML message without SyncBody")
    header = _parse_header(hdr_el)
    commands: list[Command] = []
    deviations: list[tuple[str, str]] = []
    final = False
    if quirks.out_of_order([_local(c) for c in _kids(hdr_el)], quirks.HEADER_ORDER):
        deviations.append(("header-order", "SyncHdr children out of DTD order: "
                                           + ", ".join(_local(c) for c in _kids(hdr_el))))
    for child in _kids(body_el):
        name = _local(child)
        if name == "Final":
            final = True
            continue
        commands.append(_parse_command(child))
        if name == "Status":
            names = [_local(c) for c in _kids(child)]
            if quirks.out_of_order(names, quirks.STATUS_ORDER):
                deviations.append(("status-order", f"Status children out of DTD order ({', '.join(names)}; "
                                                   f"the DTD wants {', '.join(quirks.STATUS_ORDER[:4])}, ... Data, Item)"))
    return Message(header=header, commands=commands, final=final, deviations=deviations)


# ---------------------------------------------------------------------------------------- building


_N = TypeVar("_N")


class _Structure(Generic[_N]):
    """The SyncML message structure, written once for both kinds of node ``_N`` a subclass makes:
    lxml elements (:class:`_Builder`) or plain lists (:class:`_PlainBuilder`)."""

    def __init__(self, ver_dtd: str, set_opaque: Callable[[_N, bytes], None] | None = None) -> None:
        self.ns = codes.NS_SYNCML_11 if ver_dtd == "1.1" else codes.NS_SYNCML_12
        self.tags = _TAGS[self.ns]
        self.set_opaque = set_opaque

    def el(self, parent: _N | None, name: str) -> _N:
        """A new element ``name`` under ``parent`` (the root when None), to hold children."""
        raise NotImplementedError

    def leaf(self, parent: _N, name: str, text: str) -> None:
        """A new element ``name`` under ``parent`` that holds ``text`` and never children."""
        raise NotImplementedError

    def metinf(self, parent: _N, tag: str, text: str) -> None:
        """One MetInf value: ``tag`` is in Clark notation, and the element declares its namespace."""
        raise NotImplementedError

    def meta(self, parent: _N, meta: Meta | None, name: str = "Meta") -> None:
        if meta is None:
            return
        node = self.el(parent, name)
        for field_name, tag in _META_ORDER:
            value = getattr(meta, field_name)
            if value is not None:
                self.metinf(node, tag, value if type(value) is str else str(value))

    def loc(self, parent: _N, name: str, uri: str | None, loc_name: str | None = None) -> None:
        if uri is None and loc_name is None:
            return
        node = self.el(parent, name)
        self.leaf(node, "LocURI", uri or "")
        if loc_name is not None:
            self.leaf(node, "LocName", loc_name)

    def flag(self, parent: _N, name: str, on: bool) -> None:
        if on:
            self.el(parent, name)

    def item(self, parent: _N, item: Item) -> None:
        node = self.el(parent, "Item")
        self.loc(node, "Target", item.target)
        self.loc(node, "Source", item.source)
        self.meta(node, item.meta)
        if item.data is not None:
            if isinstance(item.data, bytes):
                if self.set_opaque is not None:
                    self.set_opaque(self.el(node, "Data"), item.data)
                else:  # over XML binary travels as base64 (the caller sets Meta Format b64)
                    self.leaf(node, "Data", base64.b64encode(item.data).decode("ascii"))
            else:
                self.leaf(node, "Data", item.data)
        self.flag(node, "MoreData", item.more_data)

    def command(self, parent: _N | None, cmd: Command) -> _N:
        if isinstance(cmd, Unknown):
            raise UnsupportedError(f"cannot encode an Unknown command ({cmd.name})", status=500)
        node = self.el(parent, cmd.name)
        self.leaf(node, "CmdID", cmd.cmd_id)
        if isinstance(cmd, Status):
            self._status(node, cmd)
        elif isinstance(cmd, Results):
            if cmd.msg_ref is not None:
                self.leaf(node, "MsgRef", cmd.msg_ref)
            self.leaf(node, "CmdRef", cmd.cmd_ref)
            self.meta(node, cmd.meta)
            for ref in cmd.target_refs:
                self.leaf(node, "TargetRef", ref)
            for ref in cmd.source_refs:
                self.leaf(node, "SourceRef", ref)
            for item in cmd.items:
                self.item(node, item)
        elif isinstance(cmd, Alert):
            self.flag(node, "NoResp", cmd.no_resp)
            self.leaf(node, "Data", str(cmd.code))
            if cmd.correlator is not None:
                self.leaf(node, "Correlator", cmd.correlator)
            for item in cmd.items:
                self.item(node, item)
        elif isinstance(cmd, Atomic | Sequence):
            self.flag(node, "NoResp", cmd.no_resp)
            self.meta(node, cmd.meta)
            for inner in cmd.commands:
                self.command(node, inner)
        else:
            self.flag(node, "NoResp", cmd.no_resp)
            self.meta(node, cmd.meta)
            if isinstance(cmd, Exec) and cmd.correlator is not None:
                self.leaf(node, "Correlator", cmd.correlator)
            for item in cmd.items:
                self.item(node, item)
        return node

    def _status(self, node: _N, cmd: Status) -> None:
        if cmd.msg_ref is not None:
            self.leaf(node, "MsgRef", cmd.msg_ref)
        self.leaf(node, "CmdRef", cmd.cmd_ref)
        self.leaf(node, "Cmd", cmd.cmd)
        for ref in cmd.target_refs:
            self.leaf(node, "TargetRef", ref)
        for ref in cmd.source_refs:
            self.leaf(node, "SourceRef", ref)
        if cmd.chal is not None:
            chal = self.el(node, "Chal")
            self.meta(chal, Meta(type=cmd.chal.type, format=cmd.chal.format, next_nonce=cmd.chal.next_nonce))
        self.leaf(node, "Data", str(cmd.code))
        for item in cmd.items:
            self.item(node, item)

    def header(self, parent: _N, hdr: SyncHdr) -> None:
        node = self.el(parent, "SyncHdr")
        self.leaf(node, "VerDTD", hdr.ver_dtd)
        self.leaf(node, "VerProto", hdr.ver_proto)
        self.leaf(node, "SessionID", hdr.session_id)
        self.leaf(node, "MsgID", hdr.msg_id)
        self.loc(node, "Target", hdr.target, hdr.target_name)
        self.loc(node, "Source", hdr.source, hdr.source_name)
        if hdr.resp_uri is not None:
            self.leaf(node, "RespURI", hdr.resp_uri)
        self.flag(node, "NoResp", hdr.no_resp)
        if hdr.cred is not None:
            cred = self.el(node, "Cred")
            if hdr.cred.type is not None or hdr.cred.format is not None:
                self.meta(cred, Meta(type=hdr.cred.type, format=hdr.cred.format))
            self.leaf(cred, "Data", hdr.cred.data)
        if hdr.max_msg_size is not None or hdr.max_obj_size is not None:
            self.meta(node, Meta(max_msg_size=hdr.max_msg_size, max_obj_size=hdr.max_obj_size))


class _Builder(_Structure[etree._Element]):
    """The message as lxml elements: what WBXML encoding and the odd text plain lists refuse need."""

    def el(self, parent: etree._Element | None, name: str) -> etree._Element:
        tag = self.tags[name]
        return etree.Element(tag, nsmap={None: self.ns}) if parent is None else _sub_element(parent, tag)

    def leaf(self, parent: etree._Element, name: str, text: str) -> None:
        _set_text(_sub_element(parent, self.tags[name]), text)

    def metinf(self, parent: etree._Element, tag: str, text: str) -> None:
        _set_text(_sub_element(parent, tag, nsmap=_METINF_NSMAP), text)


class _Tags(dict[str, str]):
    """Clark-notation tags of one namespace, each formatted once per process rather than per element."""

    def __init__(self, ns: str) -> None:
        super().__init__()
        self.ns = ns

    def __missing__(self, name: str) -> str:
        tag = self[name] = f"{{{self.ns}}}{name}"
        return tag


_TAGS = {ns: _Tags(ns) for ns in (codes.NS_SYNCML_11, codes.NS_SYNCML_12)}
_XML_DECLARATION = b"<?xml version='1.0' encoding='UTF-8'?>\n"  # as lxml writes it
_XMLNS_DECL = {ns: f' xmlns="{ns}"'.encode() for ns in _TAGS}
_METINF_NSMAP = {None: codes.NS_METINF}
_sub_element = etree.SubElement

# MetInf DTD order: Format, Type, Mark, Size, Anchor, Version, NextNonce, MaxMsgSize, MaxObjSize, ...
_META_ORDER = tuple(
    (field_name, f"{{{codes.NS_METINF}}}{tag}")
    for field_name, tag in (
        ("format", "Format"),
        ("type", "Type"),
        ("mark", "Mark"),
        ("size", "Size"),
        ("version", "Version"),
        ("next_nonce", "NextNonce"),
        ("max_msg_size", "MaxMsgSize"),
        ("max_obj_size", "MaxObjSize"),
    )
)


class _NotPlainText(Exception):
    """Internal: a value holds characters the plain-text writer leaves to lxml (which may refuse them)."""


# What XML 1.0 allows in text and lxml accepts unchanged; anything else goes the lxml way.
_NOT_PLAIN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape(text: str) -> str:
    """Text content escaped exactly as lxml (libxml2) serialises it."""
    if _NOT_PLAIN.search(text):
        raise _NotPlainText
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


# A plain node: [start tag body, end tag name, children]; a child is a node or a finished leaf's text.
_Plain = list[Any]


class _PlainBuilder(_Structure[_Plain]):
    """The same message structure as plain lists, serialised by string joins.

    Creating lxml elements costs most of an XML message's encoding; these lists cost a fraction and
    serialise to the bytes lxml writes for the same tree (the element structure stays defined once, in
    _Builder). Text lxml would reject or treat specially raises _NotPlainText so the caller falls back
    to lxml, which then behaves exactly as before.
    """

    def __init__(self, ver_dtd: str) -> None:
        super().__init__(ver_dtd)

    def el(self, parent: _Plain | None, name: str) -> _Plain:
        if parent is None:
            return [f'{name} xmlns="{self.ns}"', name, []]
        node: _Plain = [name, name, []]
        parent[2].append(node)
        return node

    def leaf(self, parent: _Plain, name: str, text: str) -> None:
        parent[2].append(f"<{name}>{_escape(text)}</{name}>")

    def metinf(self, parent: _Plain, tag: str, text: str) -> None:
        local = tag.rpartition("}")[2]
        parent[2].append(f'<{local} xmlns="{codes.NS_METINF}">{_escape(text)}</{local}>')


def _write_plain(node: _Plain, out: list[str]) -> None:
    start, end, kids = node
    if not kids:
        out.append(f"<{start}/>")
        return
    out.append(f"<{start}>")
    for kid in kids:
        if type(kid) is str:
            out.append(kid)
        else:
            _write_plain(kid, out)
    out.append(f"</{end}>")


def _plain_bytes(node: _Plain) -> bytes:
    out: list[str] = []
    _write_plain(node, out)
    return "".join(out).encode("utf-8")


def _plain_message(msg: Message) -> _Plain:
    b = _PlainBuilder(msg.header.ver_dtd)
    root = b.el(None, "SyncML")
    b.header(root, msg.header)
    body = b.el(root, "SyncBody")
    for cmd in msg.commands:
        b.command(body, cmd)
    b.flag(body, "Final", msg.final)
    return root


def _set_text(node: etree._Element, text: str) -> None:
    try:
        node.text = text
    except ValueError as exc:  # control characters, lone surrogates: not representable in XML
        raise EmulatorError(f"{_local(node)} value cannot be written as XML: {exc}", status=500) from exc


def message_to_element(
    msg: Message, *, set_opaque: Callable[[etree._Element, bytes], None] | None = None
) -> etree._Element:
    """The lxml tree build_message serialises; `set_opaque` marks bytes Data for WBXML OPAQUE."""
    b = _Builder(msg.header.ver_dtd, set_opaque)
    root = b.el(None, "SyncML")
    b.header(root, msg.header)
    body = b.el(root, "SyncBody")
    for cmd in msg.commands:
        b.command(body, cmd)
    b.flag(body, "Final", msg.final)
    return root


def build_message(msg: Message, *, wbxml: bool = False) -> bytes:
    """Encode a message: UTF-8 XML with declaration, or WBXML through wbxml.encode."""
    if wbxml:
        from emulator.protocol.syncml import wbxml as wbxml_codec  # lazy, see parse_message

        return wbxml_codec.encode(message_to_element(msg, set_opaque=wbxml_codec.set_opaque))
    try:
        return _XML_DECLARATION + _plain_bytes(_plain_message(msg))
    except _NotPlainText:
        return etree.tostring(message_to_element(msg), encoding="UTF-8", xml_declaration=True)


def content_type(*, wbxml: bool = False) -> str:
    """Content-Type header value for a message built with the same `wbxml` flag."""
    return codes.MEDIA_DM_WBXML if wbxml else f"{codes.MEDIA_DM_XML}; charset=UTF-8"


# ----------------------------------------------------------------------------- sizes (MaxMsgSize)

def message_size(msg: Message, *, wbxml: bool = False) -> int:
    """Exact encoded size of `msg` (what MaxMsgSize limits)."""
    return len(build_message(msg, wbxml=wbxml))


def command_size(cmd: Command, *, wbxml: bool = False, ver_dtd: str = "1.2") -> int:
    """Bytes one more command adds to a message body.

    Exact for XML once the body holds anything (a Final counts: an empty `<SyncBody/>` grows by its
    closing tag too); MetInf children declare their own namespace, so a command costs the same
    anywhere. For WBXML it is the growth of a one-command message over an empty one, which can
    differ by a few bytes (code page switches) from the growth in another message: keep a margin.
    Lets the engine keep a running total instead of re-encoding the whole message per command.
    """
    header = SyncHdr(session_id="1", msg_id="1", ver_dtd=ver_dtd)
    if not wbxml:
        # Built on its own, the command's element carries the SyncML namespace declaration that a
        # body's child inherits instead: the same bytes otherwise, for one build and one serialisation.
        try:
            plain = _PlainBuilder(ver_dtd)
            ns = plain.ns
            alone = len(_plain_bytes(plain.command(None, cmd)))
        except _NotPlainText:
            b = _Builder(ver_dtd)
            ns = b.ns
            alone = len(etree.tostring(b.command(None, cmd), encoding="UTF-8"))
        return alone - len(_XMLNS_DECL[ns])
    empty = message_size(Message(header=header), wbxml=True)
    return message_size(Message(header=header, commands=[cmd]), wbxml=True) - empty


def fits(msg: Message, extra: Command, max_size: int, *, wbxml: bool = False, margin: int = 0) -> bool:
    """Would `msg` plus `extra` (and a Final) stay within `max_size` bytes (minus `margin`)?"""
    trial = Message(header=msg.header, commands=[*msg.commands, extra], final=True)
    return message_size(trial, wbxml=wbxml) + margin <= max_size


def walk(commands: list[Command]) -> Iterator[Command]:
    """Every command, depth first, including those inside Atomic and Sequence."""
    for cmd in commands:
        yield cmd
        if isinstance(cmd, Atomic | Sequence):
            yield from walk(cmd.commands)
