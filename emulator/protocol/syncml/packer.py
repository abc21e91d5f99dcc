"""Filling SyncML messages up to the peer's MaxMsgSize, and large objects in chunks (PROTOCOL.md 2.8).

Both sides of DM 1.2 need the same thing: a queue of commands to send, a size limit, and the rule that
a command that does not fit goes to the next message, except a single item bigger than a whole
message, which is cut into chunks (`MoreData` on all but the last, `Meta/Size` on the first). The
client engine packs Status/Results this way and the reference server its Add/Replace, with this one
module.

Sizes are exact for XML (message.command_size); for WBXML each command gets a small margin because
code-page switches make its size depend a little on its neighbours.

`Meta/Size` is the size of the object as transmitted: the UTF-8 length of text data (base64 text for
binary values over XML, so the receiver can concatenate the chunks and decode once), the byte length
of WBXML opaque data. Receivers accept the decoded size too (executor.py), because servers differ.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable
from typing import TypeVar

from emulator.protocol.syncml.commands import (
    Atomic,
    Command,
    Item,
    ItemCommand,
    Message,
    Meta,
    Results,
    Sequence,
    SyncHdr,
)
from emulator.protocol.syncml.message import build_message, command_size, message_size

WBXML_MARGIN_PER_COMMAND = 8
WBXML_MARGIN = 32
MIN_CHUNK = 64  # bytes of room below which a chunk waits for the next message


@dataclasses.dataclass(slots=True, kw_only=True)
class Continued(Item):
    """The rest of a chunked item: its chunks never carry Meta/Size again."""


def assign_ids(cmd: Command, first: int) -> int:
    """Give `cmd` (and the members of an Atomic/Sequence) CmdIDs from `first`; returns the next free one."""
    cmd.cmd_id = str(first)
    nxt = first + 1
    if isinstance(cmd, Atomic | Sequence):
        for inner in cmd.commands:
            nxt = assign_ids(inner, nxt)
    return nxt


def _size(cmd: Command, wbxml: bool, ver_dtd: str) -> int:
    size = command_size(cmd, wbxml=wbxml, ver_dtd=ver_dtd)
    return size + WBXML_MARGIN_PER_COMMAND if wbxml else size


def data_size(data: str | bytes | None) -> int:
    if data is None:
        return 0
    return len(data) if isinstance(data, bytes) else len(data.encode("utf-8"))


def pack(
    header: SyncHdr,
    queue: deque[Command],
    *,
    max_size: int | None,
    wbxml: bool = False,
    lead: Iterable[Command] = (),
    trailer: Iterable[Command] = (),
    built: list[bytes] | None = None,
) -> list[Command]:
    """The commands of the next message: `lead` always, then as much of `queue` as fits (taken off it),
    then `trailer` only if the queue ran empty. CmdIDs are assigned in message order from 1.

    A command too big for the room left is split when it can be (several items: by items; one item:
    in chunks), else it waits for the next message; a command that fits no message at all is sent
    alone rather than never (the peer will refuse it with a status, which is better than a hang).

    ``built``: when given, and everything fitted with no trailer, it receives the encoded message of
    the packed commands with Final (measuring it meant building it): the caller sending that
    message with Final need not build it again.
    """
    lead, trailer = list(lead), list(trailer)
    whole = _all_fit(header, queue, max_size=max_size, wbxml=wbxml, lead=lead, trailer=trailer, built=built)
    if whole is not None:
        queue.clear()
        return whole
    return pack_each(header, queue, max_size=max_size, wbxml=wbxml, lead=lead, trailer=trailer)


def pack_each(header: SyncHdr, queue: deque[Command], *, max_size: int | None, wbxml: bool = False,
              lead: Iterable[Command] = (), trailer: Iterable[Command] = ()) -> list[Command]:
    """:func:`pack` measuring command by command (what it does when not everything fits)."""
    lead, trailer = list(lead), list(trailer)
    ver = header.ver_dtd
    out: list[Command] = []
    nxt = 1
    total = message_size(Message(header=header, final=True), wbxml=wbxml) + (WBXML_MARGIN if wbxml else 0)
    for cmd in lead:
        nxt = assign_ids(cmd, nxt)
        total += _size(cmd, wbxml, ver)
        out.append(cmd)
    reserve = 0
    if trailer and max_size is not None:
        probe = nxt + 1000  # ids get longer, never shorter: measure with a generous one
        for cmd in trailer:
            probe = assign_ids(cmd, probe)
            reserve += _size(cmd, wbxml, ver)
    placed_body = False
    while queue:
        cmd = queue[0]
        after = assign_ids(cmd, nxt)
        size = _size(cmd, wbxml, ver)
        room = None if max_size is None else max_size - total - reserve
        if room is None or size <= room:
            queue.popleft()
            out.append(cmd)
            total += size
            nxt = after
            placed_body = True
            continue
        parts = split_to_fit(cmd, room, wbxml=wbxml, ver_dtd=ver) if room >= MIN_CHUNK or not placed_body else None
        if parts is not None:
            first, rest = parts
            queue[0] = rest
            nxt = assign_ids(first, nxt)
            out.append(first)
        elif not placed_body:
            queue.popleft()  # fits no message: send it alone
            out.append(cmd)
            nxt = after
        break
    if not queue:
        for cmd in trailer:
            nxt = assign_ids(cmd, nxt)
            out.append(cmd)
    return out


def _all_fit(header: SyncHdr, queue: deque[Command], *, max_size: int | None, wbxml: bool,
             lead: list[Command], trailer: list[Command], built: list[bytes] | None = None) -> list[Command] | None:
    """Every command in one message when they all fit (the common case), measured with one encoding of
    the whole message rather than one per command; None when they may not (then :func:`pack` measures
    command by command). The same answer as the loop: XML sizes add up exactly, so the whole fits
    exactly when every prefix does. WBXML sizes do not add up exactly: always measured the long way."""
    if max_size is not None and wbxml:
        return None
    out = [*lead, *queue]
    nxt = 1
    for cmd in out:
        nxt = assign_ids(cmd, nxt)
    if max_size is not None:
        reserve = 0
        probe = nxt + 1000  # as pack() does: ids get longer, never shorter
        for cmd in trailer:
            probe = assign_ids(cmd, probe)
            reserve += _size(cmd, wbxml, header.ver_dtd)
        whole = build_message(Message(header=header, commands=out, final=True), wbxml=wbxml)
        if len(whole) + reserve > max_size:
            return None
        if built is not None and not trailer:  # the very message to send, when it is the package's Final one
            built.append(whole)
    for cmd in trailer:
        nxt = assign_ids(cmd, nxt)
        out.append(cmd)
    return out


_Split = TypeVar("_Split", bound=Results | ItemCommand)
"""A command split_to_fit can cut in two: Results and the item commands."""


def _with_items(cmd: _Split, items: list[Item]) -> _Split:
    return dataclasses.replace(cmd, items=items)


def split_to_fit(cmd: Command, room: int, *, wbxml: bool = False, ver_dtd: str = "1.2") -> tuple[Command, Command] | None:
    """(part that fits in `room` bytes, rest) for Results/Add/Replace-like commands, or None."""
    if not isinstance(cmd, Results | ItemCommand) or not cmd.items:
        return None
    items = cmd.items

    def fits(candidate: Command) -> bool:
        return _size(candidate, wbxml, ver_dtd) <= room

    if len(items) > 1:
        lo, hi = 0, len(items) - 1  # largest k with items[:k] fitting
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(_with_items(cmd, items[:mid])):
                lo = mid
            else:
                hi = mid - 1
        if lo >= 1:
            return _with_items(cmd, items[:lo]), _with_items(cmd, items[lo:])
    head = items[0]
    data = head.data
    if data is None or len(data) < 2:
        return None
    meta = dataclasses.replace(head.meta) if head.meta is not None else Meta()
    first_meta = dataclasses.replace(meta, size=None if isinstance(head, Continued) else data_size(data))
    rest_meta = dataclasses.replace(meta, size=None)

    def chunk(n: int) -> Item:
        return Item(target=head.target, source=head.source, meta=first_meta, data=data[:n], more_data=True)

    lo, hi = 0, len(data) - 1  # largest n with data[:n] fitting
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(_with_items(cmd, [chunk(mid)])):
            lo = mid
        else:
            hi = mid - 1
    if lo < 1:
        return None
    rest = Continued(target=head.target, source=head.source, meta=rest_meta, data=data[lo:],
                     more_data=head.more_data)
    return _with_items(cmd, [chunk(lo)]), _with_items(cmd, [rest, *items[1:]])
