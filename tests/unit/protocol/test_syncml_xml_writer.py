"""build_message's XML writer against lxml's serialiser of the same element tree (message_to_element).

The writer skips lxml for speed; lxml (libxml2) is the independent reference for which bytes a tree
serialises to and which text XML can carry, so every message must come out byte-identical, or fail
the same way (EmulatorError 500) when a value is not representable.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from emulator.errors import EmulatorError
from emulator.protocol.syncml.commands import (
    Add,
    Alert,
    Atomic,
    Chal,
    Cred,
    Exec,
    Item,
    Message,
    Meta,
    Results,
    Status,
    SyncHdr,
)
from emulator.protocol.syncml.message import build_message, command_size, message_to_element

# Any code point, surrogates and control characters included, with XML's special ones made likely.
TEXT = st.text(alphabet=st.one_of(st.characters(), st.sampled_from("&<>\"'\r\n\t]é\x00\x1f\ufffe")),
               max_size=12)
OPT_TEXT = st.none() | TEXT
META = st.none() | st.builds(Meta, format=OPT_TEXT, type=OPT_TEXT, mark=OPT_TEXT,
                             size=st.none() | st.integers(0, 10**9), next_nonce=OPT_TEXT)
ITEM = st.builds(Item, target=OPT_TEXT, source=OPT_TEXT, meta=META,
                 data=st.none() | TEXT | st.binary(max_size=8), more_data=st.booleans())
ITEMS = st.lists(ITEM, max_size=3)
COMMAND = st.one_of(
    st.builds(Status, cmd_id=TEXT, msg_ref=OPT_TEXT, cmd_ref=TEXT, cmd=TEXT, code=st.integers(100, 599),
              target_refs=st.lists(TEXT, max_size=2), source_refs=st.lists(TEXT, max_size=2),
              chal=st.none() | st.builds(Chal, type=OPT_TEXT, format=OPT_TEXT, next_nonce=OPT_TEXT),
              items=ITEMS),
    st.builds(Results, cmd_id=TEXT, msg_ref=OPT_TEXT, cmd_ref=TEXT, meta=META, items=ITEMS),
    st.builds(Alert, cmd_id=TEXT, code=st.integers(1000, 1300), correlator=OPT_TEXT, items=ITEMS),
    st.builds(Exec, cmd_id=TEXT, no_resp=st.booleans(), correlator=OPT_TEXT, items=ITEMS),
    st.builds(Atomic, cmd_id=TEXT, commands=st.lists(st.builds(Add, cmd_id=TEXT, meta=META, items=ITEMS),
                                                      max_size=2)),
)
HEADER = st.builds(SyncHdr, session_id=TEXT, msg_id=TEXT, ver_dtd=st.sampled_from(["1.2", "1.1"]),
                   ver_proto=TEXT, target=TEXT, source=TEXT, target_name=OPT_TEXT, resp_uri=OPT_TEXT,
                   cred=st.none() | st.builds(Cred, type=OPT_TEXT, format=OPT_TEXT, data=TEXT),
                   max_msg_size=st.none() | st.integers(0, 10**6))


def lxml_bytes(msg: Message) -> bytes | str:
    """What lxml writes for the message's tree, or the failure's class when it refuses a value."""
    try:
        return etree.tostring(message_to_element(msg), encoding="UTF-8", xml_declaration=True)
    except EmulatorError as exc:
        return f"{type(exc).__name__} {exc.status}"


def writer_bytes(msg: Message) -> bytes | str:
    try:
        return build_message(msg)
    except EmulatorError as exc:
        return f"{type(exc).__name__} {exc.status}"


@settings(max_examples=200, deadline=None)
@given(HEADER, st.lists(COMMAND, max_size=3), st.booleans())
def test_messages_serialise_exactly_as_lxml_does(header: SyncHdr, commands: list, final: bool) -> None:
    msg = Message(header=header, commands=commands, final=final)
    assert writer_bytes(msg) == lxml_bytes(msg)


@settings(max_examples=200, deadline=None)
@given(COMMAND)
def test_command_size_is_the_growth_of_a_message_with_a_final(cmd) -> None:
    """PROTOCOL.md 2.8: MaxMsgSize bounds the encoded message, so the packer's per-command figure must
    be exactly what adding the command to a (non-empty) body costs, measured here with lxml."""
    base = Message(header=SyncHdr(session_id="1", msg_id="1", ver_dtd="1.2"), final=True)
    empty, full = lxml_bytes(base), lxml_bytes(dataclasses.replace(base, commands=[cmd]))
    if isinstance(full, str):  # not representable: command_size refuses the same way
        try:
            command_size(cmd)
        except EmulatorError as exc:
            assert f"{type(exc).__name__} {exc.status}" == full
        else:
            raise AssertionError("command_size accepted a command lxml refuses")
        return
    assert isinstance(empty, bytes)
    assert command_size(cmd) == len(full) - len(empty)


@settings(max_examples=150, deadline=None)
@given(st.lists(COMMAND, min_size=1, max_size=4), st.integers(200, 1200), st.booleans(), st.booleans())
def test_packing_everything_at_once_takes_what_packing_command_by_command_takes(
        commands: list, max_size: int, trailer: bool, none_limit: bool) -> None:
    """pack() measures the whole message once when it may all fit; its choice (which commands, with
    which CmdIDs, cut where) must be exactly the one of measuring each command (pack_each)."""
    import copy
    from collections import deque

    from emulator.protocol.syncml.packer import assign_ids, pack, pack_each

    header = SyncHdr(session_id="1", msg_id="1", ver_dtd="1.2")
    if isinstance(writer_bytes(Message(header=header, commands=commands, final=True)), str):
        return  # not representable: both refuse the same way (the writer test above)
    limit = None if none_limit else max_size

    def packed(how) -> tuple[list, list]:
        queue = deque(copy.deepcopy(commands))
        tail = [Alert(cmd_id="0", code=1222)] if trailer else []
        out = how(header, queue, max_size=limit, lead=[Status(cmd_id="0", msg_ref="1", cmd_ref="0", cmd="SyncHdr",
                                                                 code=200)], trailer=tail)
        left = list(queue)  # what waits for the next message, which numbers its commands again
        nxt = 1
        for cmd in left:
            nxt = assign_ids(cmd, nxt)
        return [build_message(Message(header=header, commands=out))], [build_message(Message(header=header,
                                                                                           commands=left))]

    assert packed(pack) == packed(pack_each)
    # what pack built while measuring is the message it packed, with Final, byte for byte
    queue, built = deque(copy.deepcopy(commands)), []
    out = pack(header, queue, max_size=limit, trailer=[], built=built)
    if built:
        assert not queue and built == [build_message(Message(header=header, commands=out, final=True))]


# ------------------------------------------------------------------------------ the WBXML writer


def tree_wbxml(msg: Message) -> bytes | str:
    """What wbxml.encode writes for the message's lxml tree (the reference the token writer must match),
    or the failure's class and status."""
    from emulator.protocol.syncml import wbxml

    try:
        return wbxml.encode(message_to_element(msg, set_opaque=wbxml.set_opaque))
    except EmulatorError as exc:
        return f"{type(exc).__name__} {exc.status}"


def writer_wbxml(msg: Message) -> bytes | str:
    try:
        return build_message(msg, wbxml=True)
    except EmulatorError as exc:
        return f"{type(exc).__name__} {exc.status}"


@settings(max_examples=200, deadline=None)
@given(HEADER, st.lists(COMMAND, max_size=3), st.booleans())
def test_wbxml_messages_are_the_bytes_of_their_tree(header: SyncHdr, commands: list, final: bool) -> None:
    """build_message writes WBXML token by token, without the tree: the same bytes wbxml.encode writes
    for the tree (code pages, empty elements, OPAQUE bytes), or the same refusal."""
    msg = Message(header=header, commands=commands, final=final)
    assert writer_wbxml(msg) == tree_wbxml(msg)


def nested_atomics(depth: int) -> Message:
    """SyncML > SyncBody > ``depth`` Atomics, the innermost one's CmdID at element depth ``depth + 3``."""
    cmd = inner = Atomic(cmd_id="1", commands=[])
    for _ in range(depth - 1):
        nxt = Atomic(cmd_id="1", commands=[])
        inner.commands.append(nxt)
        inner = nxt
    return Message(header=SyncHdr(session_id="1", msg_id="1"), commands=[cmd])


def test_wbxml_writer_keeps_the_depth_limit_at_its_exact_value() -> None:
    """wbxml.MAX_DEPTH (64) bounds element nesting in what is written too: 61 Atomics put the innermost
    CmdID at depth 64 and are written; 62 put it at 65 and are refused as the tree encoder refuses."""
    from emulator.protocol.syncml import wbxml

    assert wbxml.MAX_DEPTH == 64
    at_limit, over = nested_atomics(61), nested_atomics(62)
    assert writer_wbxml(at_limit) == tree_wbxml(at_limit)
    assert isinstance(writer_wbxml(at_limit), bytes)
    assert writer_wbxml(over) == tree_wbxml(over) == "UnsupportedError 406"
