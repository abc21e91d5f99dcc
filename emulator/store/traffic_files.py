"""Traffic as JSON-lines files: one message a line, body in base64, secrets masked.

The one format for saved traffic: the window's traffic log saves and opens it, and ``run
--traffic-dir DIR`` writes one file per device whose session failed (``--traffic-all``: every
device), so a CI job keeps what the failing devices and the server said to each other and anyone
can open it in the window later (Traffic, Open). Bodies are masked
(:func:`emulator.protocol.traffic.mask_message`) before they reach a file: CI artifacts are shared.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from pathlib import Path

from emulator.errors import FileFormatError
from emulator.events import EventBus, MessageLogged, SessionEnded, SessionStarted
from emulator.protocol.traffic import mask_message
from emulator.protocol.values import is_direction

SUFFIX = ".jsonl"


def to_json_line(m: MessageLogged, *, reveal: bool = False) -> str:
    """One saved line; the body's secrets (Cred, secret leaves, private keys) masked unless ``reveal``:
    a saved log is shared (bug reports, CI artifacts), as a TNDS export is (``tree export --reveal-secrets``)."""
    body = m.body if reveal else mask_message(m.content_type, m.body)
    return json.dumps({
        "device_id": m.device_id, "session_id": m.session_id, "direction": m.direction, "ts": m.ts,
        "content_type": m.content_type, "body": base64.b64encode(body).decode("ascii"),
        "summary": m.summary, "rtt_ms": m.rtt_ms, "url": m.url,
    })


def read_json_lines(path: str | Path) -> list[MessageLogged]:
    """A saved log back; FileFormatError with the line number when a line is not one of ours."""
    out = []
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                direction = d["direction"]
                if not is_direction(direction):
                    raise ValueError(f"direction {direction!r} is not 'out' or 'in'")
                out.append(MessageLogged(
                    str(d["device_id"]), str(d["session_id"]), direction, float(d["ts"]),
                    str(d.get("content_type", "")), base64.b64decode(d.get("body", ""), validate=True),
                    str(d.get("summary", "")), None if d.get("rtt_ms") is None else float(d["rtt_ms"]),
                    str(d.get("url", "")),
                ))
            except (ValueError, KeyError, TypeError) as exc:
                raise FileFormatError(str(path), no, f"not a traffic log line ({exc})") from None
    return out


def write_json_lines(path: str | Path, messages: Iterable[MessageLogged], *, append: bool = False,
                     reveal: bool = False) -> None:  # fmt: skip
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        for m in messages:
            f.write(to_json_line(m, reveal=reveal) + "\n")


def device_file_name(dev_id: str) -> str:
    """A file name for a device ID (``IMEI:3546...`` -> ``IMEI_3546....jsonl``): no separators, no colons."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", dev_id).lstrip(".") + SUFFIX


def check_output_dir(path: str | Path, what: str) -> Path:
    """A folder to write into, made if missing; FileFormatError now (before a run) when it cannot be."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / ".dm-emulator-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise FileFormatError(str(path), None, f"cannot write the {what} there: {exc.strerror or exc}") from None
    return p


class TrafficRecorder:
    """Keeps each session's messages until it ends, then writes them to its device's file when the
    session did not complete (or always, with ``everything``). Memory holds only the sessions in
    flight; ``files`` maps each device written to its file."""

    def __init__(self, bus: EventBus, folder: str | Path, *, everything: bool = False) -> None:
        self.folder = Path(folder)
        self.everything = everything
        self.files: dict[str, Path] = {}
        self.errors: list[str] = []
        self._open: dict[str, list[MessageLogged]] = {}
        bus.subscribe(self._on_event, SessionStarted, MessageLogged, SessionEnded)

    def _on_event(self, event: object) -> None:
        if isinstance(event, SessionStarted):
            self._open[event.session_id] = []
        elif isinstance(event, MessageLogged):
            kept = self._open.get(event.session_id)
            if kept is not None:
                kept.append(event)
        elif isinstance(event, SessionEnded):
            kept = self._open.pop(event.session_id, None)
            if kept is not None and (self.everything or event.outcome != "completed"):
                self.write(event.device_id, kept)

    def write(self, dev_id: str, messages: list[MessageLogged]) -> None:
        path = self.folder / device_file_name(dev_id)
        try:
            write_json_lines(path, messages, append=dev_id in self.files)
        except OSError as exc:  # a full disk must not stop the run: the report says so
            self.errors.append(f"{path}: {exc.strerror or exc}")
            return
        self.files.setdefault(dev_id, path)

    def flush(self) -> None:
        """Sessions still open (the run was stopped): their traffic so far is what explains them."""
        open_now, self._open = self._open, {}
        for messages in open_now.values():
            if messages:
                self.write(messages[0].device_id, messages)

