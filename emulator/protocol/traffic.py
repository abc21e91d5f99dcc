"""How a logged message reads for people: decoded, secrets masked, statuses paired with commands.

The traffic log keeps raw bytes; this module is the one place that turns them into text, so the
window, a saved log and a report all show the same thing. Bodies come from servers: nothing here
raises; what cannot be decoded is shown as a hex dump with the reason on top.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lxml import etree

from emulator.errors import EmulatorError
from emulator.mo.result_codes import explain_alert
from emulator.protocol.syncml import wbxml
from emulator.protocol.values import Direction
from emulator.util.masking import MASK, MASK_BYTES, is_secret_uri, is_secret_value, mask_json, mask_tnds_text
from emulator.util.xmlsafe import children, parse

HEX_LIMIT = 4096
DM1_NOTIFICATION = "application/vnd.syncml.notification"
DM2_NOTIFICATION = "application/vnd.oma.dm.notification"


def hexdump(body: bytes, limit: int = HEX_LIMIT) -> str:
    lines = []
    for off in range(0, min(len(body), limit), 16):
        chunk = body[off : off + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:08x}  {chunk.hex(' '):<47}  {text}")
    if len(body) > limit:
        lines.append(f"... {len(body) - limit} more bytes")
    return "\n".join(lines)


def _base(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def describe(content_type: str, body: bytes, *, reveal: bool = False) -> str:
    """A readable form of one message body: pretty XML (WBXML decoded), pretty JSON, or Package#0
    field by field. Secrets (credentials, AAuthSecret ...) are masked unless ``reveal``."""
    base = _base(content_type)
    if not body:
        return "(empty body)"
    try:
        if base == DM1_NOTIFICATION:
            return _dm1_notification(body)
        if base == DM2_NOTIFICATION:
            return _dm2_notification(body)
        if "wbxml" in base:
            root = wbxml.decode(body)
            return _xml_text(root, reveal) + _results_explained(_syncml_alerts(root))
        if "xml" in base or body.lstrip().startswith(b"<"):
            from emulator.protocol.syncml.message import parse_xml_safely

            root = parse_xml_safely(body)
            return _xml_text(root, reveal) + _results_explained(_syncml_alerts(root))
        if "json" in base or body.lstrip()[:1] in (b"{", b"["):
            data = json.loads(body)
            alerts = _json_alerts(data)
            if not reveal:
                data, _ = mask_json(data)
            return json.dumps(data, indent=2, ensure_ascii=False) + _results_explained(alerts)
        return body.decode("utf-8")
    except (EmulatorError, ValueError, etree.LxmlError) as exc:
        return f"(could not decode as {base or 'text'}: {exc})\n\n{hexdump(body)}"


def _syncml_alerts(root: etree._Element) -> list[tuple[str | None, str | None, object]]:
    """(alert type, source, data) of every generic alert (1226) in a SyncML message."""
    out: list[tuple[str | None, str | None, object]] = []
    for body in children(root, "SyncBody"):
        for alert in children(body, "Alert"):
            if "".join(d.text or "" for d in children(alert, "Data")).strip() != "1226":
                continue
            for item in children(alert, "Item"):
                kind = next((t.text for m in children(item, "Meta") for t in children(m, "Type")), None)
                source = next((u.text for s in children(item, "Source") for u in children(s, "LocURI")), None)
                data = next((d.text for d in children(item, "Data")), None)
                out.append((kind, source, data))
    return out


def _json_alerts(data: object) -> list[tuple[str | None, str | None, object]]:
    """(alert type, source, data) of the alerts of a DM 2.0 Package#1."""
    alerts = data.get("Alert") if isinstance(data, dict) else None
    return [(a.get("AlertType"), a.get("SourceURI"), a.get("Data")) for a in alerts or [] if isinstance(a, dict)]


def _results_explained(alerts: list[tuple[str | None, str | None, object]]) -> str:
    """A footer that says what each generic alert's result code means (:mod:`emulator.mo.result_codes`)."""
    lines = []
    for kind, source, data in alerts:
        words = explain_alert(kind, data)
        if words is not None:
            lines.append(f"  {kind or 'generic alert'}{f' from {source}' if source else ''}: {words}")
    return "\n\nResult codes explained:\n" + "\n".join(lines) if lines else ""


def _xml_text(root: etree._Element, reveal: bool) -> str:
    if not reveal:
        mask_syncml(root)
    return etree.tostring(root, pretty_print=True, encoding="unicode")


def _dm1_notification(body: bytes) -> str:
    from emulator.protocol.syncml.notification import parse_notification

    n = parse_notification(body)
    ui = {0: "not specified", 1: "background", 2: "informative", 3: "user interaction"}.get(n.ui_mode, "?")
    return "\n".join([
        "DM 1.2 Package 0 (notification)",
        f"  digest          {n.digest.hex()}",
        f"  version         {n.version} ({n.version / 10:.1f})",
        f"  ui-mode         {n.ui_mode} ({ui})",
        f"  initiator       {n.initiator} ({'server' if n.initiator else 'user/client'})",
        f"  session id      {n.session_id} (SessionID {n.syncml_session_id})",
        f"  server id       {n.server_id}",
        f"  vendor          {n.vendor.hex() or '(none)'}",
    ])


def _dm2_notification(body: bytes) -> str:
    from emulator.protocol.dm2.notification import parse_notification

    n = parse_notification(body)
    con = {0: "any available", 1: "cellular", 2: "WLAN", 3: "wireline"}.get(n.preferred_con_type, "?")
    return "\n".join([
        "DM 2.0 Package#0 (notification; option lengths in the project encoding, PROTOCOL 1.19 item 7)",
        f"  version             {n.version}",
        f"  1 SERVER-ID         {n.server_id}",
        f"  2 PREFERRED-CON     {n.preferred_con_type} ({con})",
        f"  3 NOTIFICATION-ID   {'(absent)' if n.notification_id is None else n.notification_id}",
        f"  4 SHA256-DIGEST     {'(absent)' if n.digest is None else n.digest.hex()}",
        f"  5 TIMESTAMP         {'(absent)' if n.timestamp is None else n.timestamp}",
        f"  6 REQ-MOS           {'yes' if n.req_mos else 'no'}",
    ])


# ---------------------------------------------------------------------------------------- summaries

SUMMARY_LIMIT = 80
"""Characters of a command summary in the list (the full message is in the detail)."""


def count_names(names: Sequence[str]) -> str:
    """``["GET", "GET", "HGET"]`` -> ``"GET ×2, HGET"``: names in order of first appearance."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(name if n == 1 else f"{name} ×{n}" for name, n in counts.items())


def summarise_commands(content_type: str, body: bytes, limit: int = SUMMARY_LIMIT) -> str:
    """One line naming the commands of a server's message, as the traffic list shows it:
    ``GET ×2, HGET, SHOW`` (DM 2.0), ``Get, Replace, Atomic`` (SyncML: top-level commands, Status
    left out unless there is nothing else). Empty when the body is not a DM message or cannot be
    decoded (the caller keeps its own summary then); never raises: bodies come from servers."""
    base = _base(content_type)
    if not body:
        return ""
    try:
        if "syncml.dm" in base:
            from emulator.protocol.syncml.message import parse_message

            names = [cmd.name for cmd in parse_message(body, content_type).commands]
            text = count_names([n for n in names if n != "Status"])
            if not text:
                text = "no commands" + (f" ({count_names(names)})" if names else "")
        elif "json" in base and body.lstrip()[:1] == b"{":
            data = json.loads(body)
            cmds = data.get("CMD") if isinstance(data, dict) else None
            if not isinstance(cmds, list):
                return ""
            names = [str(c[0]).upper() if isinstance(c, list) and c else "?" for c in cmds]
            text = count_names(names) or "no commands"
        else:
            return ""
    except (EmulatorError, ValueError, RecursionError, etree.LxmlError):
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------------------ pairing


class WireMessage(Protocol):
    """What pairing reads of a logged message: a :class:`Logged`, or the window's MessageLogged."""

    @property
    def direction(self) -> Direction: ...
    @property
    def content_type(self) -> str: ...
    @property
    def body(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Logged:
    """What pairing needs of a logged message (the window's MessageLogged has these fields)."""

    direction: Direction
    content_type: str
    body: bytes


def pair_statuses(messages: Sequence[WireMessage], index: int) -> list[str]:
    """For message ``index`` of one session, one line per Status naming the command it answers.

    DM 2.0: ``Status[i]`` answers ``CMD[i]`` of the server's previous message. SyncML: a Status
    names its command by MsgRef/CmdRef, looked up in the other side's earlier messages.
    """
    msg = messages[index]
    base = _base(msg.content_type)
    try:
        if "json" in base:
            return _pair_dm2(messages, index)
        if "syncml.dm" in base:
            return _pair_syncml(messages, index)
    except (EmulatorError, ValueError, KeyError, TypeError):
        return []
    return []


def _pair_dm2(messages: Sequence[WireMessage], index: int) -> list[str]:
    statuses = json.loads(messages[index].body).get("Status")
    if not isinstance(statuses, list):
        return []
    commands: list[Any] = []
    for earlier in reversed(messages[:index]):
        if earlier.direction != messages[index].direction and "json" in _base(earlier.content_type):
            commands = json.loads(earlier.body).get("CMD") or []
            break
    lines = []
    for i, status in enumerate(statuses):
        cmd = commands[i] if i < len(commands) else None
        what = " ".join(str(p) for p in cmd) if isinstance(cmd, list) else "(no command at this position)"
        sc = status.get("sc") if isinstance(status, dict) else status
        lines.append(f"Status {sc}  <-  {what}")
    return lines


def _pair_syncml(messages: Sequence[WireMessage], index: int) -> list[str]:
    from emulator.protocol.syncml.commands import Status
    from emulator.protocol.syncml.message import parse_message, walk

    msg = parse_message(messages[index].body, messages[index].content_type)
    sent: dict[tuple[str, str | None], str] = {}
    last_other = ""
    for earlier in messages[:index]:
        if earlier.direction == messages[index].direction:
            continue
        try:
            other = parse_message(earlier.body, earlier.content_type)
        except EmulatorError:
            continue
        last_other = other.header.msg_id
        sent[(other.header.msg_id, "0")] = "SyncHdr"
        for cmd in walk(other.commands):
            items = getattr(cmd, "items", None) or []
            target = next((it.target or it.source for it in items if it.target or it.source), "")
            code = getattr(cmd, "code", None)
            label = f"{cmd.name} {target}".strip() + (f" {code}" if code and cmd.name == "Alert" else "")
            sent[(other.header.msg_id, cmd.cmd_id)] = label
    lines = []
    for cmd in msg.commands:
        if isinstance(cmd, Status):
            msg_ref = cmd.msg_ref or last_other
            what = sent.get((msg_ref, cmd.cmd_ref), f"{cmd.cmd} (MsgID {msg_ref}, CmdID {cmd.cmd_ref}: not in this log)")
            lines.append(f"Status {cmd.code}  <-  {what}  [MsgRef {msg_ref}, CmdRef {cmd.cmd_ref}]")
    return lines


# ---------------------------------------------------------------------------------------------- masking

SYNCML_MASKED = ("Cred",)
"""SyncML elements whose Data is always masked."""


def mask_syncml(root: etree._Element) -> int:
    """Mask, in place, the secrets of a parsed SyncML message; returns how many were masked.

    Masked: the Data of every Cred (basic credentials are the password in base64; a digest is a
    replayable credential for its nonce), the Data of items whose Target or Source names a secret
    leaf, private keys anywhere, and secret leaves of TNDS documents carried in a Data.
    """
    count = 0
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        local = etree.QName(el).localname
        if local in SYNCML_MASKED:
            count += sum(_mask_element(data) for data in children(el, "Data"))
        elif local == "Item":
            names = [loc.text or "" for part in ("Target", "Source") for sub in children(el, part)
                     for loc in children(sub, "LocURI")]
            for data in children(el, "Data"):
                if any(is_secret_uri(n) for n in names) or is_secret_value(data.text):
                    count += _mask_element(data)
                elif data.text and "MgmtTree" in data.text:
                    text, n = mask_tnds_text(data.text)
                    if n:
                        data.text = text
                        count += n
    return count


def mask_message(content_type: str, body: bytes) -> bytes:
    """A message body with its secrets masked, in its own encoding (XML, WBXML or JSON): the bytes
    counterpart of :func:`describe`, for a log that is saved or shared as messages (the traffic
    panel's Save).

    Bodies that cannot be decoded, or hold no secret, come back as they are: masking never makes
    a traffic view fail.
    """
    base = _base(content_type)
    if not body:
        return body
    try:
        if "wbxml" in base:
            root = wbxml.decode(body)
            return wbxml.encode(root) if mask_syncml(root) else body
        if "xml" in base or body.lstrip().startswith(b"<"):
            root = parse(body, repair_ampersands=True)
            if "dmtnds" in base:
                text, n = mask_tnds_text(body.decode("utf-8"))
                return text.encode("utf-8") if n else body
            return etree.tostring(root, encoding="utf-8") if mask_syncml(root) else body
        if "json" in base or body.lstrip()[:1] in (b"{", b"["):
            obj, n = mask_json(json.loads(body))
            return json.dumps(obj, ensure_ascii=False).encode("utf-8") if n else body
    except (EmulatorError, ValueError, RecursionError, etree.LxmlError):
        return body
    return body


def _mask_element(el: etree._Element) -> int:
    if not (el.text or len(el)):
        return 0
    for child in list(el):
        el.remove(child)
    if el.get(wbxml.OPAQUE_ATTR) is not None:  # WBXML opaque data: keep it opaque, so it re-encodes as it came
        wbxml.set_opaque(el, MASK_BYTES)
    else:
        el.text = MASK
    return 1
