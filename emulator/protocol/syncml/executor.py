"""Executing a DM server's commands on the device tree: statuses and results out (PROTOCOL.md 2.4-2.8).

The executor is a generator per message: it yields the user interaction it needs (AskUser,
OpenBrowser) and is resumed with the answer, so a confirmation inside an Atomic can wait for a person
while the Atomic's transaction stays open. It returns the Status/Results commands to send back, in
command order, CmdIDs left for the packer to assign.

Rules this module follows (choices marked [P] are the project's reading, see PROTOCOL.md):

- Items of one command run one by one; items with the same outcome share one Status (TargetRefs
  list them), so every command gets at least one Status.
- Atomic: a pre-check refuses members DM does not allow there (Get, Exec, nested Atomic: 500 for that
  member, 215 for the others, nothing executed); otherwise members run inside `tree.transaction`; at the
  first failure (a non-2xx status, a UI "no") the rest get 215, the members already executed 216, the
  failed one keeps its code, the Atomic 507, and the tree is rolled back. A Sequence inside an
  Atomic is allowed; its own members follow the same rules.
- Sequence: members in order, a failure does not stop it [P, as SyncML]; a UI "no" skips the rest (215).
- A user cancel (214) stops the whole message: everything not executed yet gets 215.
- Large objects: only top-level Add/Replace items may be chunked; a chunk gets 213, nothing is applied
  until the last chunk, whose total must match Meta/Size of the first (424 otherwise); an object the
  server interrupts (another command, the end of its package) is answered with Alert 1225 and dropped.
  A chunk inside Atomic/Sequence is refused with 406 [P].
- Suspend and resume (DM-HLF-021) [P]: an object cut by the end of the *session* (a bearer switch,
  an outage: the server did not interrupt it) is kept (:meth:`Executor.partial`); the next session
  with that server announces it in Package 1 (Alert 1226, type :data:`ALERT_LARGE_OBJECT_RESUME`,
  Source the target, Data ``received=<N>&size=<S>``) and takes an Add/Replace of that target whose
  Meta/Size is S - N as the rest of it (the whole must still come to S). A server that sends the
  object anew (Meta/Size S) starts it over, as before.
- Binary values: Meta Format `b64` over XML is decoded and stored as `bin`; a `bin` leaf read by Get is
  sent as base64 with Format `b64` over XML and as opaque bytes with Format `bin` over WBXML.
- Exec: a handler registered on the tree runs (its return is the status, 405 without one). A target
  named `launchBrowserToURI` (Hotspot 2.0 `.../Ops/launchBrowserToURI`) needs neither node nor handler
  (so no ACL check either [P]): the device opens the URL in Data with OpenBrowser(wait=True) and answers 200 when the flow ended well, 500
  otherwise; without a browser 406.
- Alerts: UI alerts 1100-1104 ask the user (406 without UI); 1222 is 200 (the client engine sends
  its next message); any other alert code from a server is 406 [P] (1200/1201/1224/1226 go from
  client to server only).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Generator
from dataclasses import dataclass, field

from emulator.errors import EmulatorError
from emulator.mo import inbox, virtual_uri
from emulator.protocol.actions import AskUser, OpenBrowser, UserAnswer
from emulator.protocol.syncml import codes, useralerts
from emulator.protocol.syncml.commands import (
    Add,
    Alert,
    Atomic,
    Command,
    Copy,
    Delete,
    Exec,
    Get,
    Item,
    Meta,
    Replace,
    Results,
    Sequence,
    Status,
    Unknown,
)
from emulator.protocol.syncml.message import chr_text
from emulator.protocol.syncml.packer import data_size
from emulator.tree import Tree
from emulator.tree.query import run_query
from emulator.tree.tnds import TNDS_WBXML, TNDS_XML, import_tnds
from emulator.tree.uri import parse_query

UiRequest = AskUser | OpenBrowser
Run = Generator[UiRequest, UserAnswer, list[Command]]

BROWSER_NODE = "launchBrowserToURI"
_ATOMIC_FORBIDDEN = (Get, Exec, Atomic)
_NOT_OK = frozenset({codes.OPERATION_CANCELLED, codes.NOT_EXECUTED, codes.ATOMIC_ROLLBACK_OK})


def is_ok(code: int) -> bool:
    """A status that means the command did what was asked (what Atomic checks its members with)."""
    return 200 <= code < 300 and code not in _NOT_OK


ALERT_LARGE_OBJECT_RESUME = "urn:dmemulator:at:LargeObjectResume"
"""Generic alert type of the resume announcement (project's, like ``urn:dmemulator:at:UIResume``)."""


@dataclass(frozen=True, slots=True)
class PartialObject:
    """A large object a cut session left half received: enough to continue it in the next session."""

    kind: str  # "Add" or "Replace"
    target: str
    format: str | None
    type: str | None
    declared: int
    parts: tuple[str | bytes, ...]

    @property
    def received(self) -> int:
        return sum(data_size(p) for p in self.parts)

    @property
    def announcement(self) -> str:
        return f"received={self.received}&size={self.declared}"


@dataclass(slots=True)
class _Chunked:
    """A large object being received: the command it belongs to and the chunks so far."""

    kind: type[Add] | type[Replace]
    target: str
    meta: Meta
    declared: int | None
    parts: list[str | bytes] = field(default_factory=list)


def _merged_meta(cmd_meta: Meta | None, item_meta: Meta | None) -> Meta:
    """Item Meta overrides command Meta, field by field."""
    out = Meta()
    for source in (cmd_meta, item_meta):
        if source is None:
            continue
        for name in ("format", "type", "mark", "size", "version"):
            value = getattr(source, name)
            if value is not None:
                setattr(out, name, value)
    return out


def _join(parts: list[str | bytes]) -> str | bytes:
    texts = [p for p in parts if isinstance(p, str)]
    if len(texts) == len(parts):
        return "".join(texts)
    return b"".join(p if isinstance(p, bytes) else p.encode("utf-8") for p in parts)


def _b64decode(data: str | bytes) -> bytes:
    raw = data if isinstance(data, bytes) else data.encode("ascii", "strict")
    return base64.b64decode(b"".join(raw.split()), validate=True)


class Executor:
    """Runs the commands of one server at a time on a tree, as that server (`by`)."""

    def __init__(
        self,
        tree: Tree,
        server_id: str | None,
        *,
        ui: bool = True,
        browser: bool | None = None,
        wbxml: bool = False,
        max_obj_size: int | None = None,
        request_prefix: str = "ui",
        resume: PartialObject | None = None,
        dm_version: str = "1.2",
    ) -> None:
        self.tree = tree
        self.dm13 = dm_version == "1.3"  # virtual URIs and the placing Inbox (README "DM 1.3")
        self.by = server_id
        self.ui = ui
        self.browser = ui if browser is None else browser
        self.wbxml = wbxml
        self.max_obj_size = max_obj_size
        self.peer_max_obj_size: int | None = None
        self.request_prefix = request_prefix
        self._requests = 0
        self._chunk: _Chunked | None = None
        self.resume = resume  # a cut object announced in Package 1, until the server continues it
        self.resumed: PartialObject | None = None  # the one it continued (for the report)
        self.cancelled = False
        self.alerts_out: list[Command] = []  # client alerts to send (1225)
        self.msg_ref = "1"

    # ------------------------------------------------------------------------------ entry points

    def run(self, commands: list[Command], msg_ref: str, *, final: bool) -> Run:
        """Execute one server message's commands; returns the replies (Status/Results) in order."""
        self.msg_ref = msg_ref
        self.cancelled = False
        out: list[Command] = []
        for cmd in commands:
            if isinstance(cmd, Status | Results):
                continue  # answers to us, handled by the session engine
            if self._chunk is not None and not self._continues_chunk(cmd):
                self._interrupt_chunk()
            out.extend((yield from self.execute(cmd, top=True)))
        if final and self._chunk is not None:
            self._interrupt_chunk()  # a package cannot end in the middle of an object
        return out

    @property
    def receiving_object(self) -> bool:
        return self._chunk is not None

    def reset_chunk(self) -> None:
        self._chunk = None

    def partial(self) -> PartialObject | None:
        """The large object this session leaves half received (its Meta/Size known), to continue in the
        next session if it was cut; else the announced one the server has not continued yet."""
        chunk = self._chunk
        if chunk is not None and chunk.declared is not None and chunk.parts:
            return PartialObject(chunk.kind.name, chunk.target, chunk.meta.format, chunk.meta.type, chunk.declared,
                                 tuple(chunk.parts))
        return self.resume

    def _resumes(self, cmd: Command, item: Item, meta: Meta) -> bool:
        """Whether ``item`` is the rest of the object announced for resumption (see module doc)."""
        r = self.resume
        return (r is not None and self._chunk is None and isinstance(cmd, Add | Replace) and cmd.name == r.kind
                and item.target == r.target and meta.size == r.declared - r.received)

    # ------------------------------------------------------------------------------ helpers

    def status(self, cmd: Command, code: int, *, targets: list[str] | None = None,
               sources: list[str] | None = None, items: list[Item] | None = None) -> Status:
        return Status(
            cmd_id="0",
            msg_ref=self.msg_ref,
            cmd_ref=cmd.cmd_id or "",
            cmd=cmd.name,
            code=code,
            target_refs=targets or [],
            source_refs=sources or [],
            items=items or [],
        )

    def not_executed(self, cmd: Command, code: int = codes.NOT_EXECUTED) -> list[Command]:
        """`code` for `cmd` and, for a container, for every member too."""
        out: list[Command] = [self.status(cmd, code)]
        if isinstance(cmd, Atomic | Sequence):
            for inner in cmd.commands:
                out.extend(self.not_executed(inner, code))
        return out

    def _request_id(self) -> str:
        self._requests += 1
        return f"{self.request_prefix}-{self._requests}"

    def _interrupt_chunk(self) -> None:
        chunk, self._chunk = self._chunk, None
        if chunk is not None:
            self.alerts_out.append(Alert(cmd_id="0", code=codes.ALERT_NO_END_OF_DATA,
                                         items=[Item(target=chunk.target)]))

    def _continues_chunk(self, cmd: Command) -> bool:
        chunk = self._chunk
        return (chunk is not None and isinstance(cmd, Add | Replace) and type(cmd) is chunk.kind
                and bool(cmd.items) and cmd.items[0].target == chunk.target)

    # ------------------------------------------------------------------------------ dispatch

    def execute(self, cmd: Command, *, top: bool = False, in_atomic: bool = False) -> Run:
        if self.cancelled:
            return self.not_executed(cmd)
        if isinstance(cmd, Unknown):
            return [self.status(cmd, cmd.status)]
        if isinstance(cmd, Atomic):
            return (yield from self._atomic(cmd))
        if isinstance(cmd, Sequence):
            return (yield from self._sequence(cmd, in_atomic=in_atomic))
        if isinstance(cmd, Alert):
            return (yield from self._alert(cmd))
        if isinstance(cmd, Exec):
            return (yield from self._exec(cmd))
        if isinstance(cmd, Get):
            return self._get(cmd)
        if isinstance(cmd, Add | Replace | Delete | Copy):
            return self._items(cmd, top=top)
        return [self.status(cmd, codes.COMMAND_NOT_IMPLEMENTED)]

    # ------------------------------------------------------------------------------ containers

    def _atomic(self, cmd: Atomic) -> Run:
        forbidden = self._forbidden_member(cmd.commands)
        if forbidden is not None:
            out: list[Command] = [self.status(cmd, codes.ATOMIC_FAILED)]
            for inner in cmd.commands:
                if inner is forbidden:
                    out.append(self.status(inner, codes.COMMAND_FAILED))
                else:
                    out.extend(self.not_executed(inner))
            return out
        replies: list[list[Command]] = []
        failed = False
        failed_index = -1
        self.tree.begin()
        try:
            for inner in cmd.commands:
                if failed or self.cancelled:
                    replies.append(self.not_executed(inner))
                    continue
                got = yield from self.execute(inner, in_atomic=True)
                replies.append(got)
                if any(isinstance(r, Status) and not is_ok(r.code) for r in got):
                    failed = True
                    failed_index = len(replies) - 1
        except BaseException:
            self.tree.rollback()
            raise
        if not failed:
            self.tree.commit()
            return [self.status(cmd, codes.OK), *(r for group in replies for r in group)]
        self.tree.rollback()
        out = [self.status(cmd, codes.ATOMIC_FAILED)]
        for i, group in enumerate(replies):
            if i <= failed_index:  # executed (maybe in part), now undone
                out.extend(self._rolled_back(group))
            else:
                out.extend(group)
        return out

    def _rolled_back(self, group: list[Command]) -> list[Command]:
        out: list[Command] = []
        for r in group:
            if isinstance(r, Status):
                out.append(self.status_like(r, codes.ATOMIC_ROLLBACK_OK if is_ok(r.code) else r.code))
        return out

    @staticmethod
    def status_like(s: Status, code: int) -> Status:
        return Status(cmd_id=s.cmd_id, msg_ref=s.msg_ref, cmd_ref=s.cmd_ref, cmd=s.cmd, code=code,
                      target_refs=s.target_refs, source_refs=s.source_refs)

    def _forbidden_member(self, commands: list[Command]) -> Command | None:
        for inner in commands:
            if isinstance(inner, _ATOMIC_FORBIDDEN):
                return inner
            if isinstance(inner, Sequence):
                found = self._forbidden_member(inner.commands)
                if found is not None:
                    return inner
        return None

    def _sequence(self, cmd: Sequence, *, in_atomic: bool) -> Run:
        out: list[Command] = [self.status(cmd, codes.OK)]
        skip = False
        for inner in cmd.commands:
            if skip or self.cancelled:
                out.extend(self.not_executed(inner))
                continue
            got = yield from self.execute(inner, in_atomic=in_atomic)
            out.extend(got)
            if isinstance(inner, Alert) and got and isinstance(got[0], Status) and got[0].code == codes.NOT_MODIFIED:
                skip = True  # the user said no: the rest of the Sequence is bypassed
        return out

    # ------------------------------------------------------------------------------ user interaction

    def _alert(self, cmd: Alert) -> Run:
        if cmd.code == codes.ALERT_NEXT_MESSAGE or cmd.code == codes.ALERT_NO_END_OF_DATA:
            return [self.status(cmd, codes.OK)]
        if cmd.code not in codes.UI_ALERTS:
            return [self.status(cmd, codes.OPTIONAL_FEATURE_NOT_SUPPORTED)]
        if not self.ui:
            return [self.status(cmd, codes.OPTIONAL_FEATURE_NOT_SUPPORTED)]
        ask = useralerts.question(cmd, self._request_id())
        if isinstance(ask, int):
            return [self.status(cmd, ask)]
        answer = yield ask
        code, items = useralerts.answer_status(ask, answer)
        if code == codes.OPERATION_CANCELLED:
            self.cancelled = True
        return [self.status(cmd, code, items=items)]

    def _exec(self, cmd: Exec) -> Run:
        groups: dict[int, list[str]] = {}
        for item in cmd.items:
            target = item.target
            if not target:
                code = codes.INCOMPLETE_COMMAND
            elif target.rstrip("/").rsplit("/", 1)[-1] == BROWSER_NODE:
                code = yield from self._browse(item)
            else:
                code = self._run_exec(target, item.data, cmd.correlator)
            groups.setdefault(code, []).append(target or "")
        return self._grouped(cmd, groups)

    def _browse(self, item: Item) -> Generator[UiRequest, UserAnswer, int]:
        if not self.browser:
            return codes.OPTIONAL_FEATURE_NOT_SUPPORTED
        data = item.data
        url = (data.decode("utf-8", "replace") if isinstance(data, bytes) else data or "").strip()
        if not url:
            return codes.INCOMPLETE_COMMAND
        answer = yield OpenBrowser(self._request_id(), url, wait=True)
        return codes.OK if answer.outcome == "ok" else codes.COMMAND_FAILED

    def _run_exec(self, target: str, data: str | bytes | None, correlator: str | None) -> int:
        try:
            target = self._locate(target)
            return int(self.tree.exec(target, data, by=self.by, correlator=correlator))
        except EmulatorError as exc:
            return exc.status
        except Exception:  # a device behaviour's bug must not end the session
            return codes.COMMAND_FAILED

    # ------------------------------------------------------------------------------ tree commands

    def _grouped(self, cmd: Command, groups: dict[int, list[str]], *, sources: bool = False) -> list[Command]:
        if not groups:
            return [self.status(cmd, codes.INCOMPLETE_COMMAND)]  # a command without items
        out: list[Command] = []
        for code, uris in groups.items():
            refs = [u for u in uris if u]
            out.append(self.status(cmd, code, targets=[] if sources else refs, sources=refs if sources else []))
        return out

    def _items(self, cmd: Add | Replace | Delete | Copy, *, top: bool) -> list[Command]:
        groups: dict[int, list[str]] = {}
        for item in cmd.items:
            groups.setdefault(self._item(cmd, item, top=top), []).append(item.target or "")
        return self._grouped(cmd, groups)

    def _item(self, cmd: Add | Replace | Delete | Copy, item: Item, *, top: bool) -> int:
        target = item.target
        if not target:
            return codes.INCOMPLETE_COMMAND
        try:
            target = self._locate(target, new=isinstance(cmd, Add | Copy))
            if isinstance(cmd, Delete):
                return self.tree.delete(target, by=self.by)
            if isinstance(cmd, Copy):
                if not item.source:
                    return codes.INCOMPLETE_COMMAND
                if self.dm13 and inbox.in_inbox(target):
                    return codes.COMMAND_NOT_ALLOWED  # only an Add puts an MO in the Inbox, and it does not stay
                return self.tree.copy(self._locate(item.source), target, by=self.by)
            meta = _merged_meta(cmd.meta, item.meta)
            data = item.data
            if item.more_data or self._continues_chunk(cmd) or self._resumes(cmd, item, meta):
                if not top or isinstance(cmd, Copy | Delete):
                    return codes.OPTIONAL_FEATURE_NOT_SUPPORTED
                done = self._take_chunk(cmd, item, meta)
                if isinstance(done, int):
                    return done
                data = done
            return self._write(cmd, target, data, meta)
        except EmulatorError as exc:
            return exc.status

    def _take_chunk(self, cmd: Add | Replace, item: Item, meta: Meta) -> int | str | bytes:
        """213 while more is to come; the whole data on the last chunk; an error status otherwise."""
        chunk = self._chunk
        if chunk is None and self.resume is not None and self._resumes(cmd, item, meta):
            r, self.resume = self.resume, None
            self.resumed = r
            chunk = self._chunk = _Chunked(type(cmd), r.target, Meta(format=r.format, type=r.type), r.declared,
                                           list(r.parts))
        elif chunk is None:
            if not item.more_data:
                return item.data if item.data is not None else ""
            if meta.size is not None and self.max_obj_size and meta.size > self.max_obj_size:
                return codes.REQUEST_ENTITY_TOO_LARGE
            chunk = self._chunk = _Chunked(type(cmd), item.target or "", meta, meta.size)
        chunk.parts.append(item.data if item.data is not None else "")
        if item.more_data:
            if chunk.declared is not None and sum(data_size(p) for p in chunk.parts) > chunk.declared:
                self._chunk = None
                return codes.SIZE_MISMATCH
            return codes.CHUNK_ACCEPTED
        self._chunk = None
        whole = chr_text(_join(chunk.parts), chunk.meta.format)
        if chunk.declared is not None and chunk.declared != data_size(whole):
            decoded = None
            if (chunk.meta.format or "").lower() == "b64":
                try:
                    decoded = len(_b64decode(whole))
                except (binascii.Error, ValueError):
                    decoded = None
            if decoded != chunk.declared:
                return codes.SIZE_MISMATCH
        for name in ("format", "type"):  # Meta repeated on each chunk, or only on the first
            if getattr(meta, name) is None:
                setattr(meta, name, getattr(chunk.meta, name))
        return whole

    def _locate(self, uri: str, *, new: bool = False) -> str:
        """The tree URI a command's LocURI names: a DM 1.3 device resolves a virtual URI (one node; for
        an Add or a Copy target, the node to create), anything else is used as it is."""
        if not (self.dm13 and virtual_uri.is_virtual(uri)):
            return uri
        if new:
            return virtual_uri.resolve_new(self.tree, uri, by=self.by)
        return virtual_uri.resolve_one(self.tree, uri, by=self.by)

    def _write(self, cmd: Add | Replace, target: str, data: str | bytes | None, meta: Meta) -> int:
        fmt = (meta.format or "").lower() or None
        mime = meta.type
        if self.dm13 and inbox.in_inbox(target):
            if not isinstance(cmd, Add):
                return codes.COMMAND_NOT_ALLOWED  # the Inbox takes Adds only, and keeps nothing to replace
            inbox.add_to_inbox(self.tree, target, data, mime, by=self.by)
            return codes.OK
        if mime in (TNDS_XML, TNDS_WBXML):
            if mime == TNDS_WBXML:
                return codes.UNSUPPORTED_MEDIA_TYPE
            import_tnds(self.tree, data or "", base_uri=target, by=self.by, replace=isinstance(cmd, Replace),
                        source=f"{cmd.name} {target}")
            return codes.OK
        if self.max_obj_size and data_size(data) > self.max_obj_size:
            return codes.REQUEST_ENTITY_TOO_LARGE
        query = parse_query(target)
        if query.prop is not None:
            if isinstance(cmd, Add):
                return codes.COMMAND_NOT_ALLOWED
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")
            return self.tree.replace_prop(query.path, query.prop, text, by=self.by)
        if query.list is not None:
            return codes.BAD_REQUEST
        value: str | bytes | None = data
        if fmt == "b64" and data is not None:
            try:
                value = _b64decode(data)
            except (binascii.Error, ValueError, UnicodeEncodeError):
                return codes.BAD_REQUEST
            fmt = "bin"
        elif fmt == "bin" and isinstance(data, str):
            value = data.encode("utf-8")
        elif isinstance(data, bytes) and fmt not in ("bin", "node"):  # WBXML opaque carrying text
            try:
                value = data.decode("utf-8")
            except UnicodeDecodeError:
                fmt = "bin"
        if isinstance(cmd, Add):
            if fmt == "node":
                return self.tree.add(target, None, format="node", type=mime or "", by=self.by)
            return self.tree.add(target, value, format=fmt or "chr", type=mime or "text/plain", by=self.by)
        return self.tree.replace(target, value, format=fmt, type=mime, by=self.by)

    def _get(self, cmd: Get) -> list[Command]:
        groups: dict[int, list[str]] = {}
        found: list[Item] = []
        for item in cmd.items:
            target = item.target
            if not target:
                groups.setdefault(codes.INCOMPLETE_COMMAND, []).append("")
                continue
            try:
                items = self._answer(target)
            except EmulatorError as exc:
                groups.setdefault(exc.status, []).append(target)
                continue
            limit = self.peer_max_obj_size
            if limit and any(data_size(i.data) > limit for i in items):
                groups.setdefault(codes.REQUEST_ENTITY_TOO_LARGE, []).append(target)
                continue
            groups.setdefault(codes.OK, []).append(target)
            found.extend(items)
        out = self._grouped(cmd, groups)
        if found:
            out.append(Results(cmd_id="0", msg_ref=self.msg_ref, cmd_ref=cmd.cmd_id, items=found))
        return out

    def _answer(self, target: str) -> list[Item]:
        """The Results items of a Get of ``target``. A DM 1.3 virtual URI is answered for every node it
        names, as a Get of that node's tree URI would be; nodes the server may not read are left out
        (with none left, the first refusal is the status)."""
        if not (self.dm13 and virtual_uri.is_virtual(target)):
            return self._answer_one(target)
        items: list[Item] = []
        refused: EmulatorError | None = None
        for real in virtual_uri.resolve_virtual(self.tree, target, by=self.by).targets():
            try:
                items += self._answer_one(real)
            except EmulatorError as exc:
                refused = refused or exc
        if not items and refused is not None:
            raise refused
        return items

    def _answer_one(self, target: str) -> list[Item]:
        result = run_query(self.tree, target, by=self.by)
        if result.is_document:
            return [Item(source=target, meta=Meta(format="xml", type=result.mime),
                         data=(result.document or b"").decode("utf-8"))]
        structure = parse_query(target).list == "Struct"
        return [self._result_item(r.path, r.value, r.format, r.type, structure) for r in result.items]

    def _result_item(self, path: str, value: str | bytes | None, fmt: str, mime: str, structure: bool) -> Item:
        meta = Meta(format=fmt or "chr", type=mime or None)
        if structure:
            return Item(source=path, meta=meta)
        data: str | bytes
        if isinstance(value, bytes):
            if self.wbxml:
                data = value
                meta.format = "bin"
            else:
                data = base64.b64encode(value).decode("ascii")
                meta.format = "b64"
        else:
            data = value or ""
        return Item(source=path, meta=meta, data=data)
