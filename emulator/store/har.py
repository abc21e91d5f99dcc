"""Traffic as HAR 1.2 (HTTP Archive, http://www.softwareishard.com/blog/har-12-spec/) and as raw
bodies, one file per message.

Why HAR: every browser's developer tools open it (Network tab, "Import HAR"), and so do proxies
and HAR viewers, so people who know those tools read a device's sessions there. A session message
sent by the device is a request; the next message of the same device and session coming back is
its response. Bodies are masked as in a saved log unless ``reveal`` (a HAR is shared like one).

:func:`har_log` and :func:`raw_bodies` build the content without touching files (tested without
Qt or a disk); :func:`write_har` and :func:`write_raw_bodies` are the thin writers the window uses.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emulator import __version__
from emulator.events import MessageLogged
from emulator.protocol.traffic import mask_message

HAR_VERSION = "1.2"
CREATOR = "dm-emulator"
_STATUS = re.compile(r"\bHTTP (\d{3})\b")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
           415: "Unsupported Media Type", 500: "Internal Server Error", 503: "Service Unavailable"}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")


def _body(m: MessageLogged, reveal: bool) -> bytes:
    return m.body if reveal else mask_message(m.content_type, m.body)


def _text(body: bytes) -> tuple[str, bool]:
    """(text, is_base64): UTF-8 text as it is, anything else (WBXML) in base64."""
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def _status(m: MessageLogged | None) -> int:
    if m is None:
        return 0  # no answer: HAR viewers show status 0 as a failed request
    found = _STATUS.search(m.summary)
    return int(found.group(1)) if found else 200


def pair_exchanges(messages: Sequence[MessageLogged]) -> list[tuple[MessageLogged, MessageLogged | None]]:
    """(sent, answer or None) in the order sent: an answer is the next message coming back in the
    same device's same session. Answers with no request before them are left out."""
    pairs: list[tuple[MessageLogged, MessageLogged | None]] = []
    waiting: dict[tuple[str, str], int] = {}  # (device, session) -> index in pairs of the open request
    for m in messages:
        key = (m.device_id, m.session_id)
        if m.direction == "out":
            pairs.append((m, None))
            waiting[key] = len(pairs) - 1
        elif key in waiting:
            i = waiting.pop(key)
            pairs[i] = (pairs[i][0], m)
    return pairs


def _entry(sent: MessageLogged, answer: MessageLogged | None, reveal: bool) -> dict[str, Any]:
    out_body = _body(sent, reveal)
    text, b64 = _text(out_body)
    method = "POST" if out_body else "GET"  # session packages are POSTed; command fetches (HGET) GET
    request: dict[str, Any] = {
        "method": method, "url": sent.url or "about:blank", "httpVersion": "HTTP/1.1", "cookies": [],
        "headers": [{"name": "Content-Type", "value": sent.content_type}] if sent.content_type else [],
        "queryString": [], "headersSize": -1, "bodySize": len(out_body),
    }
    if out_body:
        request["postData"] = {"mimeType": sent.content_type, "text": text, "params": []}
        if b64:
            request["postData"]["comment"] = "binary body in base64"
    status = _status(answer)
    content: dict[str, Any] = {"size": 0, "mimeType": "x-unknown", "text": ""}
    if answer is not None:
        in_body = _body(answer, reveal)
        text, b64 = _text(in_body)
        content = {"size": len(in_body), "mimeType": answer.content_type or "x-unknown", "text": text}
        if b64:
            content["encoding"] = "base64"
    wait = answer.rtt_ms if answer is not None and answer.rtt_ms is not None else 0.0
    return {
        "startedDateTime": _iso(sent.ts), "time": wait,
        "request": request,
        "response": {
            "status": status, "statusText": REASONS.get(status, "" if status else "no answer"),
            "httpVersion": "HTTP/1.1" if answer is not None else "", "cookies": [],
            "headers": [{"name": "Content-Type", "value": answer.content_type}] if answer and answer.content_type else [],
            "content": content, "redirectURL": "", "headersSize": -1,
            "bodySize": content["size"] if answer is not None else 0,
        },
        "cache": {}, "timings": {"send": 0, "wait": wait, "receive": 0},
        "comment": " / ".join(s for s in (sent.summary, answer.summary if answer else "no answer") if s),
        "_device": sent.device_id, "_session": sent.session_id,
    }


def har_log(messages: Sequence[MessageLogged], *, reveal: bool = False) -> dict[str, Any]:
    """The HAR document (a dict ready for ``json.dumps``) of ``messages``, oldest first."""
    return {"log": {
        "version": HAR_VERSION,
        "creator": {"name": CREATOR, "version": __version__},
        "pages": [],
        "entries": [_entry(sent, answer, reveal) for sent, answer in pair_exchanges(messages)],
    }}


def write_har(path: str | Path, messages: Sequence[MessageLogged], *, reveal: bool = False) -> int:
    """Write the HAR file; returns the number of entries (request/response pairs)."""
    doc = har_log(messages, reveal=reveal)
    Path(path).write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
    return len(doc["log"]["entries"])


def _suffix(content_type: str) -> str:
    base = content_type.split(";", 1)[0].strip().lower()
    for marker, suffix in (("wbxml", ".wbxml"), ("json", ".json"), ("xml", ".xml"), ("notification", ".bin")):
        if marker in base:
            return suffix
    return ".txt" if base.startswith("text/") else ".bin"


def raw_bodies(messages: Sequence[MessageLogged], *, reveal: bool = False) -> list[tuple[str, bytes]]:
    """(file name, body) per message: ``00001-IMEI_1-s3-out.xml``, numbered in log order, names
    safe on every file system; bodies masked unless ``reveal``."""
    width = max(5, len(str(len(messages))))
    return [(f"{i:0{width}d}-{_UNSAFE.sub('_', m.device_id)}-{_UNSAFE.sub('_', m.session_id)}-{m.direction}"
             f"{_suffix(m.content_type)}", _body(m, reveal)) for i, m in enumerate(messages, 1)]


def write_raw_bodies(folder: str | Path, messages: Sequence[MessageLogged], *, reveal: bool = False) -> int:
    """One file per message in ``folder`` (created if missing); returns how many were written."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    files = raw_bodies(messages, reveal=reveal)
    for name, body in files:
        (target / name).write_bytes(body)
    return len(files)
