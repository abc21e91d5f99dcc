"""Protocol figures: a 50-command SyncML package encoded and decoded in XML and WBXML, and the engines'
own CPU per message over whole sessions against the reference server (in process, no sockets, so
only the engines and codecs are measured).

Run for real with ``pytest tests/benchmarks --benchmark-enable -s``; under the default
``--benchmark-disable`` each runs once as a smoke test. Target (printed, never asserted): the
engine's own CPU under 1 ms per message.
"""

from __future__ import annotations

import time

import pytest
from test_tree_bench import enabled, report  # one way to print figures

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.fleet.engines import make_engine
from emulator.protocol.actions import AskUser, HttpResult, SendMessage, SessionDone, UserAnswer
from emulator.protocol.syncml.commands import Get, Item, Message, Replace, SyncHdr
from emulator.protocol.syncml.message import build_message, content_type, parse_message
from emulator.server.dm12 import Dm12Config, Dm12Server
from emulator.server.state import ServerState

SERVER = "http://127.0.0.1:9"


def package_of_50() -> Message:
    commands = []
    for i in range(50):
        uri = f"./DevDetail/Ext/Param{i:02d}"
        if i % 2:
            commands.append(Replace(cmd_id=str(i + 1), items=[Item(target=uri, data=f"value-{i}")]))
        else:
            commands.append(Get(cmd_id=str(i + 1), items=[Item(target=uri)]))
    header = SyncHdr(session_id="1A", msg_id="2", target="IMEI:490154203237518", source="dm.example.com")
    return Message(header=header, commands=commands, final=True)


@pytest.mark.parametrize("wbxml", [False, True], ids=["xml", "wbxml"])
def test_encode_decode_50_commands(benchmark, request, capsys, wbxml):
    msg = package_of_50()
    ctype = content_type(wbxml=wbxml)
    body = build_message(msg, wbxml=wbxml)

    def round_trip() -> Message:
        return parse_message(build_message(msg, wbxml=wbxml), ctype)

    back = benchmark(round_trip)
    assert len(back.commands) == 50
    n = 300 if enabled(request) else 3
    t0 = time.perf_counter()
    for _ in range(n):
        build_message(msg, wbxml=wbxml)
    enc = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for _ in range(n):
        parse_message(body, ctype)
    dec = (time.perf_counter() - t0) / n
    report(request, capsys, f"50-command package, {'WBXML' if wbxml else 'XML'} ({len(body):,} bytes): "
                            f"encode {enc * 1e3:.2f} ms, decode {dec * 1e3:.2f} ms")


def _dm12_session(dev: VirtualDevice, server: Dm12Server) -> tuple[SessionDone, int, float]:
    """One session with the engine and the server talking through function calls; returns the
    outcome, the messages the engine handled and the CPU seconds spent inside the engine."""
    engine = make_engine(dev, dev.account(protocol="dm12"), "s1")
    cpu = 0.0
    messages = 0
    while True:
        t0 = time.process_time()
        action = engine.next_action()
        cpu += time.process_time() - t0
        if isinstance(action, SessionDone) or action is None:
            return action, messages, cpu
        if isinstance(action, SendMessage):
            reply = server.handle(action.body, action.content_type, action.headers, url=action.url)
            messages += 2
            t0 = time.process_time()
            engine.receive_message(HttpResult(reply.status, reply.body,
                                              {"content-type": reply.content_type, **reply.headers}))
            cpu += time.process_time() - t0
        elif isinstance(action, AskUser):
            engine.answer_user(action.request_id, UserAnswer("ok"))


def test_dm12_engine_cpu_per_message(request, capsys):
    server = Dm12Server(Dm12Config.shipped(), ServerState(base_url=SERVER))
    profile = find_profile("smartphone")
    sessions = 200 if enabled(request) else 2
    total_cpu = 0.0
    total_messages = 0
    for i in range(sessions):
        dev = VirtualDevice(profile, i, server=SERVER)
        done, messages, cpu = _dm12_session(dev, server)
        assert done is not None and done.outcome == "completed", done
        total_cpu += cpu
        total_messages += messages
    report(request, capsys, f"DM 1.2 engine: {sessions} sessions, {total_messages} messages, "
                            f"{total_cpu / total_messages * 1e3:.3f} ms engine CPU per message (target < 1 ms)")
