"""WBXML 1.1-1.3 (WAP-192) codec for OMA DM: SyncML 1.1/1.2 messages and DM DDF 1.2 / TNDS.

DM servers may send any WBXML 1.x (PROTOCOL.md 2.1), so the device must read it even though it
prefers XML; the reference server writes it to exercise clients. The codec maps between WBXML bytes
and the same lxml trees the XML path produces, so everything above it works on one representation:
SyncML tags in ``SYNCML:SYNCML1.2`` (``SYNCML:SYNCML1.1`` when the document declares the 1.1 public
identifier), MetInf tags in ``syncml:metinf``, DDF/TNDS tags in ``syncml:dmddf1.2``.

Token tables, checked against two independent public implementations each:
- code page 0 (SyncML) and 1 (MetInf): libwbxml ``src/wbxml_tables.c`` (sv_syncml_syncml12_tag_table)
  and the SyncML reference toolkit ``xlttags.c`` (intel/libdmclient, Android OMA-DM engine).
  One table serves SyncML 1.1 and 1.2: 1.2 only adds tokens (0x35-0x3C, MetInf 0x16).
- code page 2 (DM DDF 1.2, used by TNDS): libwbxml sv_syncml_dmddf12_tag_table and the Android
  OMA-DM engine ``xlttags.c`` (dmtnd table); that engine's WBXML scanner maps page 2 to TNDS, so a
  TNDS object may appear inline (SWITCH_PAGE 2 inside Data) as well as in a standalone document.
- public identifiers: 0x0FD3 = ``-//SYNCML//DTD SyncML 1.1//EN``, 0x1201 = ``-//SYNCML//DTD SyncML
  1.2//EN`` (libwbxml ``wbxml_tables.h``). DM DDF 1.2 has no numeric id: it is always sent as a
  string-table reference to ``-//OMA//DTD-DM-DDF 1.2//EN``. Public id 0x01 ("unknown") is read as
  SyncML 1.2, because some encoders write it for SyncML.

Decisions a caller should know:
- Charset: UTF-8 (106); US-ASCII (3) and ISO-8859-1 (4) are also read. ``encode`` writes UTF-8.
- Attributes (tag bit 0x80), processing instructions, LITERAL and EXT tokens do not occur in SyncML
  and are rejected with a DecodeError rather than skipped, so nothing is silently lost.
- OPAQUE: an lxml element cannot carry Python state (its proxy object is rebuilt on demand), so the
  fact that content was opaque is stored in the tree, in a private attribute ``OPAQUE_ATTR``:
  ``"text"`` when the bytes are UTF-8 text that XML can hold (the text is kept as is), ``"base64"``
  otherwise (the text is the base64 of the bytes, e.g. a binary Data or an embedded WBXML TNDS).
  Use ``opaque_bytes(el)`` to get the raw bytes back and ``set_opaque(el, data)`` to make ``encode``
  write an element as OPAQUE; nobody needs to touch the attribute directly. The traffic view shows
  it, which is useful; ``lxml.etree.strip_attributes(root, OPAQUE_ATTR)`` removes it.
- ``encode`` drops whitespace-only text between child elements (indentation from an XML source) and
  treats an element without a namespace as being in its parent's namespace (the root: SyncML 1.2,
  or DDF for ``MgmtTree``). A SyncML-namespace element that only exists on the MetInf page (a sloppy
  ``<Type>`` without ``xmlns='syncml:metinf'``) is written on the MetInf page, as the SyncML toolkit
  does.
- Leniency for real servers: public identifiers are matched ignoring case and surrounding spaces;
  a string-table entry may lack its terminator at the end of the table (the Android DM encoder
  writes its public identifier that way, see the aosp-dm12 vectors).
- Limits against hostile input: ``max_size`` on the input, nesting depth ``MAX_DEPTH``, and the text
  produced by string-table references bounded to ``_EXPANSION_FACTOR`` times the input size.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Final, cast

from lxml import etree

from emulator.errors import DecodeError, TooLargeError, UnsupportedError
from emulator.protocol.syncml.codes import NS_METINF, NS_SYNCML_11, NS_SYNCML_12
from emulator.util import xmlsafe

NS_DMDDF_12: Final = "syncml:dmddf1.2"
OPAQUE_ATTR: Final = "{urn:dm-emulator:wbxml}opaque"
etree.register_namespace("wbxml", "urn:dm-emulator:wbxml")

PUBLIC_ID_UNKNOWN: Final = 0x01
PUBLIC_ID_SYNCML_11: Final = 0x0FD3
PUBLIC_ID_SYNCML_12: Final = 0x1201
FPI_SYNCML_11: Final = "-//SYNCML//DTD SyncML 1.1//EN"
FPI_SYNCML_12: Final = "-//SYNCML//DTD SyncML 1.2//EN"
FPI_DMDDF_12: Final = "-//OMA//DTD-DM-DDF 1.2//EN"

CHARSET_UTF8: Final = 106
MAX_DEPTH: Final = 64
_EXPANSION_FACTOR: Final = 16
_EXPANSION_FLOOR: Final = 1 << 16

# --- global tokens (WAP-192 section 7.1) ----------------------------------------------------------
SWITCH_PAGE: Final = 0x00
END: Final = 0x01
ENTITY: Final = 0x02
STR_I: Final = 0x03
LITERAL: Final = 0x04
PI: Final = 0x43
STR_T: Final = 0x83
OPAQUE: Final = 0xC3
_UNSUPPORTED_GLOBALS: Final = {
    0x04: "LITERAL",
    0x40: "EXT_I_0",
    0x41: "EXT_I_1",
    0x42: "EXT_I_2",
    0x43: "PI",
    0x44: "LITERAL_C",
    0x80: "EXT_T_0",
    0x81: "EXT_T_1",
    0x82: "EXT_T_2",
    0x84: "LITERAL_A",
    0xC0: "EXT_0",
    0xC1: "EXT_1",
    0xC2: "EXT_2",
    0xC4: "LITERAL_AC",
}
_CONTENT_TOKENS: Final = frozenset((STR_T, ENTITY, OPAQUE))
_TAG_HAS_ATTRS: Final = 0x80
_TAG_HAS_CONTENT: Final = 0x40

# --- code pages -----------------------------------------------------------------------------------
SYNCML_PAGE: Final = 0
METINF_PAGE: Final = 1
DMDDF_PAGE: Final = 2

SYNCML_TAGS: Final[dict[int, str]] = {
    0x05: "Add", 0x06: "Alert", 0x07: "Archive", 0x08: "Atomic", 0x09: "Chal", 0x0A: "Cmd",
    0x0B: "CmdID", 0x0C: "CmdRef", 0x0D: "Copy", 0x0E: "Cred", 0x0F: "Data", 0x10: "Delete",
    0x11: "Exec", 0x12: "Final", 0x13: "Get", 0x14: "Item", 0x15: "Lang", 0x16: "LocName",
    0x17: "LocURI", 0x18: "Map", 0x19: "MapItem", 0x1A: "Meta", 0x1B: "MsgID", 0x1C: "MsgRef",
    0x1D: "NoResp", 0x1E: "NoResults", 0x1F: "Put", 0x20: "Replace", 0x21: "RespURI",
    0x22: "Results", 0x23: "Search", 0x24: "Sequence", 0x25: "SessionID", 0x26: "SftDel",
    0x27: "Source", 0x28: "SourceRef", 0x29: "Status", 0x2A: "Sync", 0x2B: "SyncBody",
    0x2C: "SyncHdr", 0x2D: "SyncML", 0x2E: "Target", 0x2F: "TargetRef",  # 0x30 reserved
    0x31: "VerDTD", 0x32: "VerProto", 0x33: "NumberOfChanges", 0x34: "MoreData", 0x35: "Field",
    0x36: "Filter", 0x37: "Record", 0x38: "FilterType", 0x39: "SourceParent",
    0x3A: "TargetParent", 0x3B: "Move", 0x3C: "Correlator",
}  # fmt: skip

METINF_TAGS: Final[dict[int, str]] = {
    0x05: "Anchor", 0x06: "EMI", 0x07: "Format", 0x08: "FreeID", 0x09: "FreeMem", 0x0A: "Last",
    0x0B: "Mark", 0x0C: "MaxMsgSize", 0x0D: "Mem", 0x0E: "MetInf", 0x0F: "Next",
    0x10: "NextNonce", 0x11: "SharedMem", 0x12: "Size", 0x13: "Type", 0x14: "Version",
    0x15: "MaxObjSize", 0x16: "FieldLevel",
}  # fmt: skip

DMDDF_TAGS: Final[dict[int, str]] = {
    0x05: "AccessType", 0x06: "ACL", 0x07: "Add", 0x08: "b64", 0x09: "bin", 0x0A: "bool",
    0x0B: "chr", 0x0C: "CaseSense", 0x0D: "CIS", 0x0E: "Copy", 0x0F: "CS", 0x10: "date",
    0x11: "DDFName", 0x12: "DefaultValue", 0x13: "Delete", 0x14: "Description", 0x15: "DFFormat",
    0x16: "DFProperties", 0x17: "DFTitle", 0x18: "DFType", 0x19: "Dynamic", 0x1A: "Exec",
    0x1B: "float", 0x1C: "Format", 0x1D: "Get", 0x1E: "int", 0x1F: "Man", 0x20: "MgmtTree",
    0x21: "MIME", 0x22: "Mod", 0x23: "Name", 0x24: "Node", 0x25: "node", 0x26: "NodeName",
    0x27: "null", 0x28: "Occurrence", 0x29: "One", 0x2A: "OneOrMore", 0x2B: "OneOrN",
    0x2C: "Path", 0x2D: "Permanent", 0x2E: "Replace", 0x2F: "RTProperties", 0x30: "Scope",
    0x31: "Size", 0x32: "time", 0x33: "Title", 0x34: "TStamp", 0x35: "Type", 0x36: "Value",
    0x37: "VerDTD", 0x38: "VerNo", 0x39: "xml", 0x3A: "ZeroOrMore", 0x3B: "ZeroOrN",
    0x3C: "ZeroOrOne",
}  # fmt: skip

_PAGE_TAGS: Final = {SYNCML_PAGE: SYNCML_TAGS, METINF_PAGE: METINF_TAGS, DMDDF_PAGE: DMDDF_TAGS}
_CHARSETS: Final = {CHARSET_UTF8: "utf-8", 3: "ascii", 4: "latin-1"}
_SYNCML_NS_BY_NUMERIC_ID: Final = {
    PUBLIC_ID_SYNCML_11: NS_SYNCML_11,
    PUBLIC_ID_SYNCML_12: NS_SYNCML_12,
    PUBLIC_ID_UNKNOWN: NS_SYNCML_12,
}
# Keyed upper-case: servers write these identifiers with varying case and stray spaces.
_SYNCML_NS_BY_FPI: Final = {
    FPI_SYNCML_11.upper(): NS_SYNCML_11,
    FPI_SYNCML_12.upper(): NS_SYNCML_12,
    FPI_DMDDF_12.upper(): NS_SYNCML_12,
}
_PAGE_NAMESPACES: Final = {METINF_PAGE: NS_METINF, DMDDF_PAGE: NS_DMDDF_12}
# XML 1.0 cannot hold these characters, so lxml refuses them as text.
_NOT_XML_TEXT: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Text that needs escaping before it goes into XML text; \r would otherwise become \n.
_XML_SPECIAL: Final = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ESCAPES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
_OPAQUE_DECL: Final = ' xmlns:wbxml="urn:dm-emulator:wbxml" wbxml:opaque="{}">'


# --- opaque content ------------------------------------------------------------------------------
def _xml_text(data: bytes) -> str | None:
    """The bytes as text if they are UTF-8 that an XML element can hold, else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _NOT_XML_TEXT.search(text) else text


def _opaque_form(data: bytes) -> tuple[str, str]:
    """The (mark, text) an element holds for opaque ``data``: readable text, else base64."""
    text = _xml_text(data)
    if text is None:
        return "base64", base64.b64encode(data).decode("ascii")
    return "text", text


def set_opaque(el: etree._Element, data: bytes) -> None:
    """Give ``el`` the content ``data`` and make ``encode`` write it as WBXML OPAQUE.

    Text-like bytes stay readable in the tree; anything else is stored as base64 (see module doc).
    """
    mark, el.text = _opaque_form(data)
    el.set(OPAQUE_ATTR, mark)


def opaque_bytes(el: etree._Element) -> bytes | None:
    """The raw bytes of an element that carries opaque content, or None if it does not."""
    mark = el.get(OPAQUE_ATTR)
    if mark is None:
        return None
    text = el.text or ""
    if mark == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecodeError(f"<{etree.QName(el).localname}> is marked base64 opaque but is not base64") from exc
    if mark == "text":
        return text.encode("utf-8")
    raise DecodeError(f"<{etree.QName(el).localname}> has an unknown opaque mark {mark!r}")


# --- decoding ------------------------------------------------------------------------------------
def decode(data: bytes, *, max_size: int | None = None) -> etree._Element:
    """Decode a WBXML document into an lxml element tree (see the module doc for namespaces).

    Raises DecodeError (with the byte offset) for anything malformed or unsupported and
    TooLargeError when the input is over ``max_size`` or string-table references expand too much.
    """
    data = bytes(data)
    if max_size is not None and len(data) > max_size:
        raise TooLargeError(f"WBXML: message of {len(data)} bytes is over the limit of {max_size} bytes")
    return _Decoder(data).document()


class _Decoder:
    """One pass over one document; state is the read position and the string table."""

    __slots__ = ("data", "pos", "end", "codec", "strtbl", "strings", "expanded", "expansion_limit")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.codec = "utf-8"
        self.strtbl = b""
        self.strings: dict[int, str] = {}
        self.expanded = 0
        self.expansion_limit = max(len(data) * _EXPANSION_FACTOR, _EXPANSION_FLOOR)

    def fail(self, at: int, what: str) -> DecodeError:
        return DecodeError(f"WBXML: {what} at byte {at}")

    def byte(self, what: str) -> int:
        if self.pos >= self.end:
            raise self.fail(self.pos, f"truncated input: {what} missing")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def mb_u_int32(self, what: str) -> int:
        start = self.pos
        value = 0
        for _ in range(5):
            octet = self.byte(what)
            value = (value << 7) | (octet & 0x7F)
            if not octet & 0x80:
                if value > 0xFFFFFFFF:
                    raise self.fail(start, f"{what} does not fit in 32 bits")
                return value
        raise self.fail(start, f"{what} is a multi-byte integer longer than 5 bytes")

    def text(self, raw: bytes, at: int) -> str:
        try:
            return raw.decode(self.codec)
        except UnicodeDecodeError as exc:
            raise self.fail(at + exc.start, f"string is not valid {self.codec}") from None

    def table_string(self, index: int, at: int) -> str:
        cached = self.strings.get(index)
        if cached is None:
            if index >= len(self.strtbl):
                raise self.fail(at, f"string table index {index} out of range (table has {len(self.strtbl)} bytes)")
            nul = self.strtbl.find(b"\x00", index)
            if nul < 0:  # the Android DM encoder leaves the last entry unterminated
                nul = len(self.strtbl)
            cached = self.strings[index] = self.text(self.strtbl[index:nul], at)
        return cached

    def header(self) -> str:
        """Read version, public id, charset and string table; return the SyncML namespace."""
        version = self.byte("version")
        if not 0x01 <= version <= 0x03:
            raise self.fail(0, f"unsupported WBXML version 0x{version:02X} (1.1-1.3 supported)")
        id_at = self.pos
        public_id = self.mb_u_int32("public identifier")
        fpi_index = self.mb_u_int32("public identifier index") if public_id == 0 else None
        charset_at = self.pos
        charset = self.mb_u_int32("charset")
        codec = _CHARSETS.get(charset)
        if codec is None:
            raise self.fail(charset_at, f"unsupported charset MIBenum {charset} (UTF-8 required)")
        self.codec = codec
        table_at = self.pos
        length = self.mb_u_int32("string table length")
        if length > self.end - self.pos:
            raise self.fail(table_at, f"truncated input: string table of {length} bytes")
        self.strtbl = self.data[self.pos : self.pos + length]
        self.pos += length
        if fpi_index is None:
            ns = _SYNCML_NS_BY_NUMERIC_ID.get(public_id)
            if ns is None:
                raise self.fail(id_at, f"public identifier 0x{public_id:04X} is not SyncML or DM DDF")
            return ns
        fpi = self.table_string(fpi_index, id_at)
        ns = _SYNCML_NS_BY_FPI.get(fpi.strip().upper())
        if ns is None:
            raise self.fail(id_at, f"public identifier {fpi!r} is not SyncML or DM DDF")
        return ns

    def document(self) -> etree._Element:
        """Walk the body once, checking every token, and write the equivalent XML text.

        lxml's C parser then builds the tree: creating elements one by one from Python costs
        about four times as much, and this way the tree is exactly what the XML path produces.
        """
        syncml_ns = self.header()
        pages = {SYNCML_PAGE: syncml_ns, **_PAGE_NAMESPACES}
        data, end = self.data, self.end
        page, page_ns, page_tags = SYNCML_PAGE, syncml_ns, _PAGE_TAGS[SYNCML_PAGE]
        out: list[str] = []
        # Open elements as [name, namespace, index of the start tag in ``out`` (patched when the
        # content turns out to be opaque), whether a child was written].
        stack: list[list[Any]] = []
        pending: list[str | bytes] = []
        pending_at = 0
        pos = self.pos
        while True:
            if pos >= end:
                what = f"END for <{stack[-1][0]}>" if stack else "root element"
                raise self.fail(pos, f"truncated input: {what} missing")
            at = pos
            token = data[pos]
            pos += 1
            if token == END:
                if not stack:
                    raise self.fail(at, "END without an open element")
                if pending:
                    self.flush(out, pending, pending_at, stack[-1])
                out.append(f"</{stack.pop()[0]}>")
                if not stack:
                    break
            elif token == STR_I:
                if not stack:
                    raise self.fail(at, "content outside the root element")
                nul = data.find(b"\x00", pos)
                if nul < 0:
                    raise self.fail(pos, "truncated input: inline string without terminator")
                text = self.text(data[pos:nul], pos)
                pos = nul + 1
                if not pending:
                    pending_at = at
                pending.append(text)
            elif token in _CONTENT_TOKENS:
                if not stack:
                    raise self.fail(at, "content outside the root element")
                if not pending:
                    pending_at = at
                self.pos = pos
                pending.append(self.content(token, at))
                pos = self.pos
            elif token == SWITCH_PAGE:
                if pos >= end:
                    raise self.fail(pos, "truncated input: code page missing")
                page = data[pos]
                pos += 1
                if page not in pages:
                    raise self.fail(at, f"switch to unknown code page {page}")
                page_ns, page_tags = pages[page], _PAGE_TAGS[page]
            elif token in _UNSUPPORTED_GLOBALS:
                raise self.fail(at, f"{_UNSUPPORTED_GLOBALS[token]} token is not used by SyncML")
            else:
                if token & _TAG_HAS_ATTRS:
                    raise self.fail(at, f"tag 0x{token:02X} has attributes, which SyncML does not use")
                name = page_tags.get(token & 0x3F)
                if name is None:
                    raise self.fail(at, f"unknown tag 0x{token & 0x3F:02X} on code page {page}")
                if stack:
                    parent = stack[-1]
                    if pending:
                        self.flush(out, pending, pending_at, parent)
                    if len(stack) >= MAX_DEPTH:
                        raise self.fail(at, f"elements nested deeper than {MAX_DEPTH}")
                    parent[3] = True
                    start = f"<{name}" if page_ns == parent[1] else f'<{name} xmlns="{page_ns}"'
                elif out:  # pragma: no cover - the loop ends when the root closes
                    raise self.fail(at, "second root element")
                else:
                    start = f'<{name} xmlns="{page_ns}"'
                if token & _TAG_HAS_CONTENT:
                    stack.append([name, page_ns, len(out), False])
                    out.append(start + ">")
                else:
                    out.append(start + "/>")
                    if not stack:
                        break
        if pos != end:
            raise self.fail(pos, f"{end - pos} bytes of trailing data after the root element")
        try:
            return etree.fromstring("".join(out), xmlsafe.parser())
        except etree.XMLSyntaxError as exc:  # pragma: no cover - the walk above rules this out
            raise DecodeError(f"WBXML: decoded document is not well-formed XML: {exc}") from None

    def content(self, token: int, at: int) -> str | bytes:
        """The value of a STR_T, ENTITY or OPAQUE token (STR_I is read in the main loop)."""
        if token == STR_T:
            text = self.table_string(self.mb_u_int32("string table index"), at)
            self.expanded += len(text)
            if self.expanded > self.expansion_limit:
                raise TooLargeError(
                    f"WBXML: string table references expand to over {self.expansion_limit} characters at byte {at}"
                )
            return text
        if token == ENTITY:
            code = self.mb_u_int32("entity")
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise self.fail(at, f"entity {code} is not a Unicode character")
            return chr(code)
        length = self.mb_u_int32("opaque length")
        if length > self.end - self.pos:
            raise self.fail(at, f"truncated input: opaque data of {length} bytes")
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw

    def flush(self, out: list[str], pending: list[str | bytes], at: int, parent: list[Any]) -> None:
        """Write the collected content: the open element's text, or the tail of its last child."""
        text: str
        if len(pending) == 1 and isinstance(pending[0], str):
            text = pending[0]
            pending.clear()
        elif any(isinstance(piece, bytes) for piece in pending):
            raw = b"".join(p if isinstance(p, bytes) else p.encode("utf-8") for p in pending)
            pending.clear()
            if not parent[3]:
                start = parent[2]
                mark, text = _opaque_form(raw)
                out[start] = out[start][:-1] + _OPAQUE_DECL.format(mark)
            else:
                found = _xml_text(raw)
                if found is None:
                    raise self.fail(at, "binary opaque data between elements")
                text = found
        else:
            text = "".join(cast("list[str]", pending))  # no bytes among them: checked above
            pending.clear()
        if _XML_SPECIAL.search(text):
            if _NOT_XML_TEXT.search(text):
                raise self.fail(at, "string with characters that XML cannot hold")
            text = _XML_SPECIAL.sub(_escape, text)
        out.append(text)


def _escape(match: re.Match[str]) -> str:
    return _ESCAPES[match.group()]


# --- encoding ------------------------------------------------------------------------------------
_ENCODE_PAGES: Final = {
    NS_SYNCML_11.lower(): SYNCML_PAGE,
    NS_SYNCML_12.lower(): SYNCML_PAGE,
    NS_METINF.lower(): METINF_PAGE,
    NS_DMDDF_12.lower(): DMDDF_PAGE,
}
_TOKENS: Final = {page: {name: tok for tok, name in tags.items()} for page, tags in _PAGE_TAGS.items()}
# Fast path for the usual spelling of each namespace: '{ns}Local' -> (page, token).
_TOKEN_BY_TAG: Final = {
    f"{{{ns}}}{name}": (page, token)
    for ns, page in ((NS_SYNCML_11, 0), (NS_SYNCML_12, 0), (NS_METINF, 1), (NS_DMDDF_12, 2))
    for token, name in _PAGE_TAGS[page].items()
}


def encode(root: etree._Element, *, version: int = 0x02) -> bytes:
    """Encode a SyncML message (or a DDF/TNDS ``MgmtTree``) as WBXML, UTF-8, inline strings.

    The public identifier follows the document's SyncML namespace (the root's, or the first one
    found below a non-SyncML root): 1.1 -> 0x0FD3, otherwise 0x1201; a DDF ``MgmtTree`` root with no
    SyncML element below gets the string ``-//OMA//DTD-DM-DDF 1.2//EN`` in the string table.
    Raises UnsupportedError for an element that has no WBXML token or carries attributes.
    """
    if not 0x01 <= version <= 0x03:
        raise ValueError(f"WBXML version must be 0x01-0x03, not {version!r}")
    tag = root.tag
    if not isinstance(tag, str):  # a comment or processing instruction given as the root
        raise UnsupportedError(f"WBXML: the root must be an element, not {type(root).__name__}")
    ns, local = _split(tag)
    if ns is None:
        root_page = DMDDF_PAGE if local == "MgmtTree" else SYNCML_PAGE
    else:
        found = _ENCODE_PAGES.get(ns.lower())
        if found is None:
            raise UnsupportedError(f"WBXML: no code page for namespace {ns!r} (root <{local}>)")
        root_page = found
    syncml_ns = _document_syncml_ns(root)
    out = bytearray([version])
    table = b""
    if syncml_ns == NS_SYNCML_11.lower():
        out += _mb_u_int32(PUBLIC_ID_SYNCML_11)
    elif syncml_ns is None and root_page == DMDDF_PAGE:
        out += b"\x00\x00"  # public id 0: the identifier is the string at index 0
        table = FPI_DMDDF_12.encode("ascii") + b"\x00"
    else:
        out += _mb_u_int32(PUBLIC_ID_SYNCML_12)
    out += _mb_u_int32(CHARSET_UTF8)
    out += _mb_u_int32(len(table))
    out += table
    _Encoder(out).element(root, tag, root_page, 1)
    return bytes(out)


def _document_syncml_ns(root: etree._Element) -> str | None:
    """The (lower-case) SyncML namespace of the first element in one, in document order."""
    for el in root.iter(etree.Element):
        ns, _ = _split(str(el.tag))
        if ns is not None and _ENCODE_PAGES.get(ns.lower()) == SYNCML_PAGE:
            return ns.lower()
    return None


def _split(tag: str) -> tuple[str | None, str]:
    if tag[:1] == "{":
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag


def _mb_u_int32(value: int) -> bytes:
    octets = [value & 0x7F]
    value >>= 7
    while value:
        octets.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(octets))


def _inline(text: str) -> bytes:
    return b"\x03" + text.encode("utf-8") + b"\x00"


class _Encoder:
    """Writes elements into one output buffer, remembering the current code page."""

    __slots__ = ("out", "page")

    def __init__(self, out: bytearray) -> None:
        self.out = out
        self.page = SYNCML_PAGE

    def element(self, el: etree._Element, tag: str, parent_page: int, depth: int) -> None:
        """Encode ``el``, whose ``tag`` the caller has seen to be a string (an element, not a comment)."""
        if depth > MAX_DEPTH:
            raise UnsupportedError(f"WBXML: elements nested deeper than {MAX_DEPTH}")
        page, token = _TOKEN_BY_TAG.get(tag) or _resolve(tag, parent_page)
        opaque = None
        names = el.keys()
        if names:
            opaque = opaque_bytes(el)
            if len(names) > (opaque is not None):
                raise UnsupportedError(f"WBXML: element {tag} has attributes, which SyncML does not use")
        children = len(el) > 0
        text = el.text
        if children and text is not None and text.isspace():
            text = None
        has_content = children or opaque is not None or bool(text)
        out = self.out
        if page != self.page:
            out += bytes((SWITCH_PAGE, page))
            self.page = page
        out.append(token | _TAG_HAS_CONTENT if has_content else token)
        if not has_content:
            return
        if opaque is not None:
            out.append(OPAQUE)
            out += _mb_u_int32(len(opaque))
            out += opaque
        elif text:
            out += _inline(text)
        for child in el:
            child_tag = child.tag
            if isinstance(child_tag, str):
                self.element(child, child_tag, page, depth + 1)
            tail = child.tail  # comments and PIs are dropped, their tails are content
            if tail and not tail.isspace():
                out += _inline(tail)
        out.append(END)


class TokenWriter:
    """WBXML written element by element, for a caller that knows its document's structure (the SyncML
    message writer): the bytes ``encode`` writes for the same elements, without building a tree.

    Only known tags in their usual namespaces (``_TOKEN_BY_TAG``) and text the caller has checked
    XML can hold; nesting is the caller's to keep within ``MAX_DEPTH`` (see ``depth``).
    """

    __slots__ = ("out", "page", "open_at")

    def __init__(self, syncml_ns: str, *, version: int = 0x02) -> None:
        public_id = PUBLIC_ID_SYNCML_11 if syncml_ns.lower() == NS_SYNCML_11.lower() else PUBLIC_ID_SYNCML_12
        self.out = bytearray([version]) + _mb_u_int32(public_id) + _mb_u_int32(CHARSET_UTF8) + b"\x00"
        self.page = SYNCML_PAGE
        self.open_at: list[int] = []  # where each open element's tag byte is

    @property
    def depth(self) -> int:
        """Elements open now: a new one is at depth ``depth + 1``."""
        return len(self.open_at)

    def _tag(self, tag: str, content: bool) -> None:
        page, token = _TOKEN_BY_TAG[tag]
        out = self.out
        if page != self.page:
            out += bytes((SWITCH_PAGE, page))
            self.page = page
        out.append(token | _TAG_HAS_CONTENT if content else token)

    def start(self, tag: str) -> None:
        """Open an element; ``end`` writes it empty (no content bit) when nothing came in between."""
        self._tag(tag, True)
        self.open_at.append(len(self.out) - 1)

    def end(self) -> None:
        at = self.open_at.pop()
        if len(self.out) == at + 1:
            self.out[at] &= ~_TAG_HAS_CONTENT
        else:
            self.out.append(END)

    def leaf(self, tag: str, text: str) -> None:
        """An element holding ``text`` as an inline string (none when empty, as ``encode`` writes it)."""
        if text:
            self._tag(tag, True)
            self.out += _inline(text)
            self.out.append(END)
        else:
            self._tag(tag, False)

    def opaque(self, tag: str, data: bytes) -> None:
        """An element holding ``data`` as OPAQUE (what ``set_opaque`` marks)."""
        self._tag(tag, True)
        out = self.out
        out.append(OPAQUE)
        out += _mb_u_int32(len(data))
        out += data
        out.append(END)

    def getvalue(self) -> bytes:
        return bytes(self.out)


def _resolve(tag: str, parent_page: int) -> tuple[int, int]:
    """(page, token) for a tag off the fast path: no namespace, odd case, sloppy MetInf."""
    ns, local = _split(tag)
    page = parent_page if ns is None else _ENCODE_PAGES.get(ns.lower())
    if page is None:
        raise UnsupportedError(f"WBXML: no code page for namespace {ns!r} (element <{local}>)")
    token = _TOKENS[page].get(local)
    if token is None and page == SYNCML_PAGE:
        page, token = METINF_PAGE, _TOKENS[METINF_PAGE].get(local)
    if token is None:
        raise UnsupportedError(f"WBXML: element <{local}> has no token on code page {page}")
    return page, token


def to_xml_text(root: etree._Element) -> str:
    """Indented XML of a decoded tree, for the traffic view and logs."""
    return etree.tostring(root, pretty_print=True, encoding="unicode")
