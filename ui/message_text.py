"""How a logged message reads in the traffic pane: pretty XML for SyncML, pretty JSON for DM 2.0.

Bodies come from servers, so decoding never raises: what cannot be decoded is shown as a hex dump
with the reason on top.
"""

from __future__ import annotations

import json

from lxml import etree

from emulator.errors import EmulatorError

HEX_LIMIT = 4096


def hexdump(body: bytes, limit: int = HEX_LIMIT) -> str:
    lines = []
    for off in range(0, min(len(body), limit), 16):
        chunk = body[off : off + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:08x}  {chunk.hex(' '):<47}  {text}")
    if len(body) > limit:
        lines.append(f"... {len(body) - limit} more bytes")
    return "\n".join(lines)


def decode_body(content_type: str, body: bytes) -> str:
    """A readable form of one message body; a hex dump with the reason when it cannot be decoded."""
    base = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return "(empty body)"
    try:
        if "wbxml" in base:
            from emulator.protocol.syncml.wbxml import decode, to_xml_text

            return to_xml_text(decode(body))
        if "xml" in base or body.lstrip().startswith(b"<"):
            from emulator.protocol.syncml.message import parse_xml_safely

            root = parse_xml_safely(body)
            return etree.tostring(root, pretty_print=True, encoding="unicode")
        if "json" in base or body.lstrip()[:1] in (b"{", b"["):
            return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        return body.decode("utf-8")
    except (EmulatorError, ValueError, etree.LxmlError) as exc:
        return f"(could not decode as {base or 'text'}: {exc})\n\n{hexdump(body)}"
