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
import operator
import re
from collections.abc import Callable, Iterator
from typing import overload

from lxml import etree

from emulator.errors import DecodeError, EmulatorError, TooLargeError, UnsupportedError
from emulator.protocol.syncml import codes, quirks, wbxml
from emulator.protocol.syncml.commands import (
    ITEM_COMMANDS,
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


_COMMAND_NAMES = (*(cls.name for cls in ITEM_COMMANDS), "Alert", "Atomic", "Sequence", "Status", "Results")
_META_FIELDS = {"Format": "format", "Type": "type", "Mark": "mark", "Size": "size", "Version": "version",
                "NextNonce": "next_nonce", "MaxMsgSize": "max_msg_size", "MaxObjSize": "max_obj_size"}
"""The MetInf values DM reads, by element name: the Meta field each one sets."""
_META_NUMBERS = {"size": "Meta/Size", "max_msg_size": "Meta/MaxMsgSize", "max_obj_size": "Meta/MaxObjSize"}
"""The Meta fields that hold numbers, with the name a malformed one is reported by."""

_LOCAL_NAMES: dict[object, str] = {
    name if ns is None else f"{{{ns}}}{name}": name
    for ns in (None, *sorted(_SYNCML_NS), codes.NS_METINF)
    for name in ("SyncML", "SyncHdr", "SyncBody", "Final", "VerDTD", "VerProto", "SessionID", "MsgID", "Target",
                 "Source", "RespURI", "NoResp", "Cred", "Meta", "LocURI", "LocName", "CmdID", "Data", "Item",
                 "MoreData", "Correlator", "MsgRef", "CmdRef", "Cmd", "TargetRef", "SourceRef", "Chal", "MetInf",
                 *_COMMAND_NAMES, *_NOT_IN_DM, *_META_FIELDS)
}
"""Local name of each tag a DM message usually holds, in every namespace it comes in: the reader looks a tag
up here instead of cutting the namespace off each element's tag (the lookup costs a fraction)."""


def _name(tag: object) -> str:
    """The local name of a tag, whatever its namespace (what lxml's ``{*}name`` matches); "" for a
    comment or processing instruction, which the reader then skips like lxml's ``Element`` filter."""
    name = _LOCAL_NAMES.get(tag)
    if name is None:
        name = tag.rpartition("}")[2] if isinstance(tag, str) else ""
    return name


def _local(el: etree._Element) -> str:
    return _name(el.tag)


_TAG = operator.attrgetter("tag")


def _kids(el: etree._Element) -> Iterator[etree._Element]:
    """Element children only (no comments or PIs); the filter runs in C."""
    return el.iterchildren(etree.Element)


class _Kids:
    """A command's (or the header's) child elements, read in one pass: what every later question about
    them (the first of a name, all of a name, the order of names) is answered from, without lxml.

    The pass runs in C where it can (the children, their tags, their names from ``_LOCAL_NAMES``, the
    first of each name); a tag outside the table or a comment takes the long way."""

    __slots__ = ("first", "all", "names")

    def __init__(self, el: etree._Element) -> None:
        kids = el[:]
        tags = list(map(_TAG, kids))
        names: list[str] = list(map(_LOCAL_NAMES.get, tags))  # type: ignore[arg-type]  # None: fixed below
        if None in names:
            names = [_name(tag) for tag in tags]
            if "" in names:  # comments and PIs are not children here, as for lxml's Element filter
                kids = [kid for kid, name in zip(kids, names, strict=True) if name]
                names = [name for name in names if name]
        self.all, self.names = kids, names
        self.first = dict(zip(reversed(names), reversed(kids), strict=True))  # the first of a name wins

    def named(self, name: str) -> list[etree._Element]:
        if name not in self.first:
            return []
        return [kid for kid, kid_name in zip(self.all, self.names, strict=True) if kid_name == name]


def _first(el: etree._Element, name: str) -> etree._Element | None:
    """The first child element called ``name`` in any namespace, or None."""
    for child in el:
        tag = child.tag
        if (_LOCAL_NAMES.get(tag) or _name(tag)) == name:
            return child
    return None


def _text(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    return (el.text or "").strip()


def _int(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    if not _DIGITS.fullmatch(text):
        raise DecodeError(f"{what} is not a number: {text[:40]!r}")
    return int(text)


def _loc(holder: etree._Element) -> tuple[str | None, str | None]:
    """The texts of the first LocURI and of the first LocName of a Target or Source (None: absent)."""
    uri = loc_name = None
    for child in holder:
        tag = child.tag
        name = _LOCAL_NAMES.get(tag) or _name(tag)
        if name == "LocURI":
            if uri is None:
                uri = (child.text or "").strip()
        elif name == "LocName" and loc_name is None:
            loc_name = (child.text or "").strip()
    return uri, loc_name


def _set_meta(meta: Meta, el: etree._Element, name: str) -> None:
    field_name = _META_FIELDS.get(name)
    if field_name is not None:
        text = (el.text or "").strip()
        what = _META_NUMBERS.get(field_name)
        setattr(meta, field_name, text if what is None else _int(text, what))


def _parse_meta(el: etree._Element | None) -> Meta | None:
    """Meta's values, inside a ``MetInf`` wrapper or not; a value given twice: the last one counts."""
    if el is None:
        return None
    meta = Meta()
    for child in el:
        tag = child.tag
        name = _LOCAL_NAMES.get(tag) or _name(tag)
        if name == "MetInf":
            for value in child:
                tag = value.tag
                _set_meta(meta, value, _LOCAL_NAMES.get(tag) or _name(tag))
        else:
            _set_meta(meta, child, name)
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
        etree.strip_attributes(clone, wbxml.OPAQUE_ATTR)  # the decoder's private mark, not content
    etree.cleanup_namespaces(clone)
    return etree.tostring(clone, encoding="unicode", with_tail=True)


def _data_value(el: etree._Element) -> str | bytes:
    """Data content: bytes exactly when it was WBXML OPAQUE (lossless), else text."""
    if el.attrib:  # only decoded WBXML marks opaque content with an attribute
        raw = wbxml.opaque_bytes(el)
        if raw is not None:
            return raw
    if not len(el) or not any(True for _ in _kids(el)):
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
    """One pass over the Item's children (the first of each name counts), then its values in the order
    their errors are reported: Meta, then Data."""
    target = source = meta_el = data_el = None
    more = False
    for child in el:
        tag = child.tag
        name = _LOCAL_NAMES.get(tag) or _name(tag)
        if name == "Data":
            if data_el is None:
                data_el = child
        elif name == "Meta":
            if meta_el is None:
                meta_el = child
        elif name == "Target":
            if target is None:
                target = child
        elif name == "Source":
            if source is None:
                source = child
        elif name == "MoreData":
            more = True
    meta = _parse_meta(meta_el)
    data = None if data_el is None else _data_value(data_el)
    if isinstance(data, bytes) and not more:  # a chunk may end inside a character: joined chunks are decoded
        data = chr_text(data, (meta.format if meta is not None else None)
                        or (cmd_meta.format if cmd_meta is not None else None))
    return Item(target=None if target is None else _loc(target)[0] or "",
                source=None if source is None else _loc(source)[0] or "",
                meta=meta, data=data, more_data=more)


def _items(kids: _Kids, cmd_meta: Meta | None = None) -> list[Item]:
    return [_parse_item(child, cmd_meta) for child in kids.named("Item")]


def _required(kids: _Kids, cmd: str, name: str) -> str:
    value = _text(kids.first.get(name))
    if value is None:
        raise _BadCommand(f"{cmd} without {name}", status=412)
    return value


def _code(kids: _Kids, what: str) -> int:
    data_el = kids.first.get("Data")
    if data_el is None:
        raise _BadCommand(f"{what} without Data", status=412)
    value = _int(_text(data_el), f"{what}/Data")
    assert value is not None
    return value


_Parser = Callable[[_Kids, str], Command]
"""A command's parser: its element's children (read once), its CmdID."""


def _item_command(cls: type[ItemCommand]) -> _Parser:
    def parse(kids: _Kids, cmd_id: str) -> Command:
        k = kids.first
        meta = _parse_meta(k.get("Meta"))
        cmd = cls(
            cmd_id=cmd_id,
            no_resp="NoResp" in k,
            meta=meta,
            items=_items(kids, meta),
        )
        if isinstance(cmd, Exec):
            cmd.correlator = _text(k.get("Correlator"))
        return cmd

    return parse


def _parse_alert(kids: _Kids, cmd_id: str) -> Command:
    k = kids.first
    return Alert(
        cmd_id=cmd_id,
        code=_code(kids, "Alert"),
        no_resp="NoResp" in k,
        correlator=_text(k.get("Correlator")),
        items=_items(kids),
    )


def _container(cls: type[Atomic] | type[Sequence]) -> _Parser:
    skip = {"CmdID", "NoResp", "Meta", "Cred"}

    def parse(kids: _Kids, cmd_id: str) -> Command:
        k = kids.first
        return cls(
            cmd_id=cmd_id,
            no_resp="NoResp" in k,
            meta=_parse_meta(k.get("Meta")),
            commands=[_parse_command(child, name, _Kids(child))
                      for child, name in zip(kids.all, kids.names, strict=True) if name not in skip],
        )

    return parse


def _parse_chal(el: etree._Element | None) -> Chal | None:
    if el is None:
        return None
    meta = _parse_meta(_first(el, "Meta")) or Meta()
    return Chal(type=meta.type, format=meta.format, next_nonce=meta.next_nonce)


def _refs(kids: _Kids, name: str) -> list[str]:
    return [_text(child) or "" for child in kids.named(name)]


def _parse_status(kids: _Kids, cmd_id: str) -> Command:
    k = kids.first
    return Status(
        cmd_id=cmd_id,
        msg_ref=_text(k.get("MsgRef")),
        cmd_ref=_required(kids, "Status", "CmdRef"),
        cmd=_required(kids, "Status", "Cmd"),
        code=_code(kids, "Status"),
        target_refs=_refs(kids, "TargetRef"),
        source_refs=_refs(kids, "SourceRef"),
        chal=_parse_chal(k.get("Chal")),
        items=_items(kids),
    )


def _parse_results(kids: _Kids, cmd_id: str) -> Command:
    k = kids.first
    meta = _parse_meta(k.get("Meta"))
    return Results(
        cmd_id=cmd_id,
        msg_ref=_text(k.get("MsgRef")),
        cmd_ref=_required(kids, "Results", "CmdRef"),
        meta=meta,
        target_refs=_refs(kids, "TargetRef"),
        source_refs=_refs(kids, "SourceRef"),
        items=_items(kids, meta),
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


def _parse_command(el: etree._Element, name: str, kids: _Kids) -> Command:
    """The command element ``el`` called ``name``, whose children ``kids`` holds."""
    cmd_id = _text(kids.first.get("CmdID")) or None
    parser = _PARSERS.get(name)
    if parser is None:
        status = codes.COMMAND_NOT_IMPLEMENTED if name in _NOT_IN_DM else codes.BAD_REQUEST
        return Unknown(name=name, cmd_id=cmd_id, status=status, reason=f"unknown command element {name}")
    if cmd_id is None:
        return Unknown(name=name, cmd_id=None, status=codes.BAD_REQUEST, reason=f"{name} without CmdID")
    try:
        return parser(kids, cmd_id)
    except _BadCommand as exc:
        return Unknown(name=name, cmd_id=cmd_id, status=exc.status, reason=exc.reason)
    except DecodeError as exc:
        return Unknown(name=name, cmd_id=cmd_id, status=codes.BAD_REQUEST, reason=str(exc))


def _parse_header(kids: _Kids) -> SyncHdr:
    k = kids.first
    session_id = _text(k.get("SessionID"))
    msg_id = _text(k.get("MsgID"))
    if not session_id:
        raise DecodeError("SyncHdr without SessionID")
    if not msg_id:
        raise DecodeError("SyncHdr without MsgID")
    target = k.get("Target")
    source = k.get("Source")
    target_uri, target_name = (None, None) if target is None else _loc(target)
    source_uri, source_name = (None, None) if source is None else _loc(source)
    cred_el = k.get("Cred")
    cred = None
    if cred_el is not None:
        cred_meta = _parse_meta(_first(cred_el, "Meta")) or Meta()
        cred = Cred(type=cred_meta.type, format=cred_meta.format, data=_text(_first(cred_el, "Data")) or "")
    meta = _parse_meta(k.get("Meta")) or Meta()
    return SyncHdr(
        session_id=session_id,
        msg_id=msg_id,
        target=target_uri or "",
        source=source_uri or "",
        ver_dtd=_text(k.get("VerDTD")) or "",
        ver_proto=_text(k.get("VerProto")) or "",
        target_name=target_name,
        source_name=source_name,
        resp_uri=_text(k.get("RespURI")),
        no_resp="NoResp" in k,
        cred=cred,
        max_msg_size=meta.max_msg_size,
        max_obj_size=meta.max_obj_size,
    )


def message_from_element(root: etree._Element) -> Message:
    """Model of an already parsed SyncML tree (XML or decoded WBXML).

    Each element is read once: its tag looked up in a table of the names DM uses, its children
    gathered in one pass, its dataclass built from what was gathered (no lookups by name in lxml).
    """
    if _local(root) != "SyncML":
        raise DecodeError(f"root element is {_local(root) or root.tag!r}, not SyncML")
    hdr_el = body_el = None
    for child in root:
        name = _name(child.tag)
        if name == "SyncHdr":
            if hdr_el is None:
                hdr_el = child
        elif name == "SyncBody" and body_el is None:
            body_el = child
    if hdr_el is None:
        raise DecodeError("SyncML message without SyncHdr")
    if body_el is None:
        raise DecodeError("SyncML message without SyncBody")
    hdr_kids = _Kids(hdr_el)
    header = _parse_header(hdr_kids)
    commands: list[Command] = []
    deviations: list[tuple[str, str]] = []
    final = False
    if quirks.out_of_order(hdr_kids.names, quirks.HEADER_ORDER):
        deviations.append(("header-order", "SyncHdr children out of DTD order: " + ", ".join(hdr_kids.names)))
    for child in body_el:
        name = _name(child.tag)
        if not name:
            continue
        if name == "Final":
            final = True
            continue
        kids = _Kids(child)
        commands.append(_parse_command(child, name, kids))
        if name == "Status":
            names = kids.names
            if quirks.out_of_order(names, quirks.STATUS_ORDER):
                deviations.append(("status-order", f"Status children out of DTD order ({', '.join(names)}; "
                                                   f"the DTD wants {', '.join(quirks.STATUS_ORDER[:4])}, ... Data, Item)"))
    return Message(header=header, commands=commands, final=final, deviations=deviations)


# ---------------------------------------------------------------------------------------- building


class _Structure:
    """The SyncML message structure, written once for every writer a subclass makes: lxml elements
    (:class:`_Builder`), XML text (:class:`_XmlWriter`), WBXML tokens (:class:`_WbxmlWriter`).

    Elements are written in document order, each container opened, filled and closed before its next
    sibling, so a writer can stream: only the lxml one keeps a tree.
    """

    def __init__(self, ver_dtd: str) -> None:
        self.ns = codes.NS_SYNCML_11 if ver_dtd == "1.1" else codes.NS_SYNCML_12

    def open(self, name: str) -> None:
        """Start element ``name`` (the root when nothing was written yet), to hold children."""
        raise NotImplementedError

    def close(self, name: str) -> None:
        """End the element ``name`` opened last; one that got no children is written empty."""
        raise NotImplementedError

    def leaf(self, name: str, text: str) -> None:
        """An element ``name`` that holds ``text`` and never children."""
        raise NotImplementedError

    def metinf(self, name: str, text: str) -> None:
        """One MetInf value ``name``: the element declares the MetInf namespace itself."""
        raise NotImplementedError

    def flag(self, name: str, on: bool) -> None:
        if on:
            self.open(name)
            self.close(name)

    def binary(self, data: bytes) -> None:
        """Data that is bytes: over XML it travels as base64 (the caller sets Meta Format b64)."""
        self.leaf("Data", base64.b64encode(data).decode("ascii"))

    def meta(self, meta: Meta | None) -> None:
        if meta is None:
            return
        self.open("Meta")
        for field_name, name in _META_ORDER:
            value = getattr(meta, field_name)
            if value is not None:
                self.metinf(name, value if type(value) is str else str(value))
        self.close("Meta")

    def loc(self, name: str, uri: str | None, loc_name: str | None = None) -> None:
        if uri is None and loc_name is None:
            return
        self.open(name)
        self.leaf("LocURI", uri or "")
        if loc_name is not None:
            self.leaf("LocName", loc_name)
        self.close(name)

    def item(self, item: Item) -> None:
        self.open("Item")
        self.loc("Target", item.target)
        self.loc("Source", item.source)
        self.meta(item.meta)
        data = item.data
        if data is not None:
            if type(data) is str:
                self.leaf("Data", data)
            elif isinstance(data, bytes):
                self.binary(data)
            else:
                self.leaf("Data", data)
        self.flag("MoreData", item.more_data)
        self.close("Item")

    def command(self, cmd: Command) -> None:
        if isinstance(cmd, Unknown):
            raise UnsupportedError(f"cannot encode an Unknown command ({cmd.name})", status=500)
        name = cmd.name
        self.open(name)
        self.leaf("CmdID", cmd.cmd_id)
        if isinstance(cmd, Status):
            self._status(cmd)
        elif isinstance(cmd, Results):
            if cmd.msg_ref is not None:
                self.leaf("MsgRef", cmd.msg_ref)
            self.leaf("CmdRef", cmd.cmd_ref)
            self.meta(cmd.meta)
            for ref in cmd.target_refs:
                self.leaf("TargetRef", ref)
            for ref in cmd.source_refs:
                self.leaf("SourceRef", ref)
            for item in cmd.items:
                self.item(item)
        elif isinstance(cmd, Alert):
            self.flag("NoResp", cmd.no_resp)
            self.leaf("Data", str(cmd.code))
            if cmd.correlator is not None:
                self.leaf("Correlator", cmd.correlator)
            for item in cmd.items:
                self.item(item)
        elif isinstance(cmd, Atomic | Sequence):
            self.flag("NoResp", cmd.no_resp)
            self.meta(cmd.meta)
            for inner in cmd.commands:
                self.command(inner)
        else:
            self.flag("NoResp", cmd.no_resp)
            self.meta(cmd.meta)
            if isinstance(cmd, Exec) and cmd.correlator is not None:
                self.leaf("Correlator", cmd.correlator)
            for item in cmd.items:
                self.item(item)
        self.close(name)

    def _status(self, cmd: Status) -> None:
        if cmd.msg_ref is not None:
            self.leaf("MsgRef", cmd.msg_ref)
        self.leaf("CmdRef", cmd.cmd_ref)
        self.leaf("Cmd", cmd.cmd)
        for ref in cmd.target_refs:
            self.leaf("TargetRef", ref)
        for ref in cmd.source_refs:
            self.leaf("SourceRef", ref)
        if cmd.chal is not None:
            self.open("Chal")
            self.meta(Meta(type=cmd.chal.type, format=cmd.chal.format, next_nonce=cmd.chal.next_nonce))
            self.close("Chal")
        self.leaf("Data", str(cmd.code))
        for item in cmd.items:
            self.item(item)

    def header(self, hdr: SyncHdr) -> None:
        self.open("SyncHdr")
        self.leaf("VerDTD", hdr.ver_dtd)
        self.leaf("VerProto", hdr.ver_proto)
        self.leaf("SessionID", hdr.session_id)
        self.leaf("MsgID", hdr.msg_id)
        self.loc("Target", hdr.target, hdr.target_name)
        self.loc("Source", hdr.source, hdr.source_name)
        if hdr.resp_uri is not None:
            self.leaf("RespURI", hdr.resp_uri)
        self.flag("NoResp", hdr.no_resp)
        if hdr.cred is not None:
            self.open("Cred")
            if hdr.cred.type is not None or hdr.cred.format is not None:
                self.meta(Meta(type=hdr.cred.type, format=hdr.cred.format))
            self.leaf("Data", hdr.cred.data)
            self.close("Cred")
        if hdr.max_msg_size is not None or hdr.max_obj_size is not None:
            self.meta(Meta(max_msg_size=hdr.max_msg_size, max_obj_size=hdr.max_obj_size))
        self.close("SyncHdr")

    def message(self, msg: Message) -> None:
        self.open("SyncML")
        self.header(msg.header)
        self.open("SyncBody")
        for cmd in msg.commands:
            self.command(cmd)
        self.flag("Final", msg.final)
        self.close("SyncBody")
        self.close("SyncML")


class _Builder(_Structure):
    """The message as lxml elements: what the odd text the streaming writers refuse needs."""

    def __init__(self, ver_dtd: str, set_opaque: Callable[[etree._Element, bytes], None] | None = None) -> None:
        super().__init__(ver_dtd)
        self.tags = _TAGS[self.ns]
        self.set_opaque = set_opaque
        self.stack: list[etree._Element] = []
        self.root: etree._Element | None = None

    def open(self, name: str) -> None:
        tag = self.tags[name]
        stack = self.stack
        if stack:
            node = _sub_element(stack[-1], tag)
        else:
            node = self.root = etree.Element(tag, nsmap={None: self.ns})
        stack.append(node)

    def close(self, name: str) -> None:
        self.stack.pop()

    def leaf(self, name: str, text: str) -> None:
        _set_text(_sub_element(self.stack[-1], self.tags[name]), text)

    def metinf(self, name: str, text: str) -> None:
        _set_text(_sub_element(self.stack[-1], _METINF_TAGS[name], nsmap=_METINF_NSMAP), text)

    def binary(self, data: bytes) -> None:
        if self.set_opaque is None:
            super().binary(data)
        else:
            self.set_opaque(_sub_element(self.stack[-1], self.tags["Data"]), data)

    def element(self) -> etree._Element:
        assert self.root is not None
        return self.root


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
_META_ORDER = (
    ("format", "Format"),
    ("type", "Type"),
    ("mark", "Mark"),
    ("size", "Size"),
    ("version", "Version"),
    ("next_nonce", "NextNonce"),
    ("max_msg_size", "MaxMsgSize"),
    ("max_obj_size", "MaxObjSize"),
)
_METINF_TAGS = {name: f"{{{codes.NS_METINF}}}{name}" for _, name in _META_ORDER}


class _NotPlainText(Exception):
    """Internal: a value holds characters (or a message a nesting) the streaming writers leave to lxml
    (which may refuse them)."""


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


class _XmlWriter(_Structure):
    """The message as XML text, written straight into a list of strings joined once.

    Creating lxml elements costs most of an XML message's encoding; this writes the bytes lxml writes
    for the same tree (the element structure stays defined once, in _Structure). Text lxml would
    reject or treat specially raises _NotPlainText so the caller falls back to lxml, which then
    behaves exactly as before.
    """

    def __init__(self, ver_dtd: str) -> None:
        super().__init__(ver_dtd)
        self.out: list[str] = []
        self.last_start = ""

    def open(self, name: str) -> None:
        # The root declares the namespace; ``last_start`` is this very string object, so close() can
        # tell by identity whether anything was written since (an element with no children is empty).
        start = f"<{name}>" if self.out else f'<{name} xmlns="{self.ns}">'
        self.last_start = start
        self.out.append(start)

    def close(self, name: str) -> None:
        out = self.out
        if out[-1] is self.last_start:
            out[-1] = f"{self.last_start[:-1]}/>"
        else:
            out.append(f"</{name}>")

    def flag(self, name: str, on: bool) -> None:
        if on:
            self.out.append(f"<{name}/>")

    def leaf(self, name: str, text: str) -> None:
        self.out.append(f"<{name}>{_escape(text)}</{name}>")

    def metinf(self, name: str, text: str) -> None:
        self.out.append(f'<{name} xmlns="{codes.NS_METINF}">{_escape(text)}</{name}>')

    def getvalue(self) -> bytes:
        return "".join(self.out).encode("utf-8")


def _plain(text: str) -> str:
    """Text the streaming WBXML writer can take as it is (else lxml decides, see _NotPlainText)."""
    if _NOT_PLAIN.search(text):
        raise _NotPlainText
    return text


class _WbxmlWriter(_Structure):
    """The message as WBXML, token by token: the bytes wbxml.encode writes for message_to_element's
    tree (with bytes Data as OPAQUE), without the tree. Text lxml would refuse or nesting deeper than
    WBXML's limit raises _NotPlainText, and the caller takes the tree's way, failing exactly as before."""

    def __init__(self, ver_dtd: str) -> None:
        super().__init__(ver_dtd)
        self.tags = _TAGS[self.ns]
        self.tokens = wbxml.TokenWriter(self.ns)

    def _room(self) -> wbxml.TokenWriter:
        tokens = self.tokens
        if tokens.depth >= wbxml.MAX_DEPTH:
            raise _NotPlainText
        return tokens

    def open(self, name: str) -> None:
        self._room().start(self.tags[name])

    def close(self, name: str) -> None:
        self.tokens.end()

    def leaf(self, name: str, text: str) -> None:
        self._room().leaf(self.tags[name], _plain(text))

    def metinf(self, name: str, text: str) -> None:
        self._room().leaf(_METINF_TAGS[name], _plain(text))

    def binary(self, data: bytes) -> None:
        self._room().opaque(self.tags["Data"], data)

    def getvalue(self) -> bytes:
        return self.tokens.getvalue()


def _set_text(node: etree._Element, text: str) -> None:
    try:
        node.text = text
    except ValueError as exc:  # control characters, lone surrogates: not representable in XML
        raise EmulatorError(f"{_local(node)} value cannot be written as XML: {exc}", status=500) from exc


def message_to_element(
    msg: Message, *, set_opaque: Callable[[etree._Element, bytes], None] | None = None
) -> etree._Element:
    """The lxml tree of the message (what build_message's writers produce the bytes of); `set_opaque`
    marks bytes Data for WBXML OPAQUE."""
    b = _Builder(msg.header.ver_dtd, set_opaque)
    b.message(msg)
    return b.element()


def build_message(msg: Message, *, wbxml: bool = False) -> bytes:
    """Encode a message: UTF-8 XML with declaration, or WBXML (the bytes wbxml.encode writes for the
    message's tree)."""
    if wbxml:
        from emulator.protocol.syncml import wbxml as wbxml_codec  # the argument hides the module

        writer = _WbxmlWriter(msg.header.ver_dtd)
        try:
            writer.message(msg)
        except _NotPlainText:
            return wbxml_codec.encode(message_to_element(msg, set_opaque=wbxml_codec.set_opaque))
        return writer.getvalue()
    xml = _XmlWriter(msg.header.ver_dtd)
    try:
        xml.message(msg)
    except _NotPlainText:
        return etree.tostring(message_to_element(msg), encoding="UTF-8", xml_declaration=True)
    return _XML_DECLARATION + xml.getvalue()


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
        xml = _XmlWriter(ver_dtd)
        try:
            xml.command(cmd)
            alone = len(xml.getvalue())
        except _NotPlainText:
            b = _Builder(ver_dtd)
            b.command(cmd)
            alone = len(etree.tostring(b.element(), encoding="UTF-8"))
        return alone - len(_XMLNS_DECL[xml.ns])
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
