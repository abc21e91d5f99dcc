"""The one parser for untrusted XML (server messages, DDF, TNDS, profiles' neighbours).

No DTD loading, no entity expansion, no network, no huge trees; entity declarations are refused
before libxml2 sees them (and again after parsing, for encodings a byte scan cannot read). A file
(``source`` given) fails with FileFormatError naming file and line; a message with DecodeError (400).
"""

from __future__ import annotations

import re
import threading

from lxml import etree

from emulator.errors import DecodeError, EmulatorError, FileFormatError, UnsupportedError

_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_BARE_AMP = re.compile(rb"&(?!#[0-9]+;|#x[0-9A-Fa-f]+;|[A-Za-z_:][A-Za-z0-9._:-]*;)")


_PARSERS = threading.local()
"""This thread's parsers, one per forced encoding: lxml parsers must not be shared across threads, and
a parser reused costs about a third less per small document than a new one (its libxml2 context is
set up once)."""


def parser(encoding: str | None = None) -> etree.XMLParser:
    """This thread's safe parser for documents in ``encoding`` (None: as declared, else UTF-8), for
    callers that parse XML text they wrote themselves (the WBXML decoder): untrusted input goes
    through :func:`parse`, which also refuses entities."""
    parsers: dict[str | None, etree.XMLParser] | None = getattr(_PARSERS, "by_encoding", None)
    if parsers is None:
        parsers = _PARSERS.by_encoding = {}
    found = parsers.get(encoding)
    if found is None:
        found = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                                remove_comments=True, remove_pis=True, encoding=encoding)
        if len(parsers) >= 16:  # encodings come from Content-Type headers: keep a few
            parsers.clear()
        parsers[encoding] = found
    return found


def _fail(source: str | None, line: int | None, reason: str) -> EmulatorError:
    return FileFormatError(source, line, reason) if source is not None else DecodeError(reason)


def parse(data: bytes, *, source: str | None = None, encoding: str | None = None,
          repair_ampersands: bool = False) -> etree._Element:
    """Parse untrusted XML. ``repair_ampersands``: real servers (and the AOSP vectors) leave ``&``
    unescaped in option strings; such a document is not XML, but its meaning is unambiguous, so it
    is repaired once after a strict failure."""
    entities = "entity declarations are not allowed" if source is not None \
        else "XML document declares entities (refused: entity expansion)"
    m = _ENTITY_DECL.search(data)
    if m:
        raise _fail(source, data.count(b"\n", 0, m.start()) + 1, entities)
    try:
        xml_parser = parser(encoding)
    except LookupError as exc:
        raise UnsupportedError(f"unknown charset {encoding!r}", status=415) from exc
    try:
        root = etree.fromstring(data, xml_parser)
    except etree.XMLSyntaxError as first:
        reason = f"not well-formed XML: {first.msg}" if source is not None else f"malformed XML: {first}"
        repaired = _BARE_AMP.sub(b"&amp;", data) if repair_ampersands else data
        if repaired == data:
            raise _fail(source, first.lineno or None, reason) from None
        try:
            root = etree.fromstring(repaired, xml_parser)
        except etree.XMLSyntaxError:
            raise _fail(source, first.lineno or None, reason) from None
    except (ValueError, etree.LxmlError) as exc:  # e.g. an encoding declaration lxml cannot honour
        raise _fail(source, None, f"not readable as XML: {exc}" if source is not None
                    else f"malformed XML: {exc}") from None
    if root is None:
        raise _fail(source, None, "empty XML document")
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise _fail(source, 1, entities)
    if any(True for _ in root.iter(etree.Entity)):
        raise _fail(source, None, "XML document uses undeclared entities")
    return root


def children(el: etree._Element, local: str) -> list[etree._Element]:
    """The child elements of ``el`` with this local name, whatever their namespace (SyncML and TNDS
    documents come with and without one)."""
    return [c for c in el if isinstance(c.tag, str) and etree.QName(c).localname == local]
