"""The SyncML codec on what `dm-emulator bench` sends: every message of a DM 1.2 session with the bench's
quick script (packages 1 to 4 and the challenge round), a smartphone's in XML and an nbiot-sensor's in
WBXML, each parsed and encoded again. Engine and reference server talk through function calls here,
so only the codec is timed.

Run for real with ``scripts/dev test tests/benchmarks/test_syncml_codec_bench.py --benchmark-enable -s``;
under the default ``--benchmark-disable`` it runs once as a smoke test. Figures are printed, never
asserted; what is asserted is that both sessions complete and that every message reads back into the
message that encodes to the very same bytes.
"""

from __future__ import annotations

import time

import pytest
from test_tree_bench import enabled, report  # one way to print figures

from emulator.commands.bench import quick_dm12_script
from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.fleet.engines import make_engine
from emulator.protocol.actions import AskUser, HttpResult, SendMessage, SessionDone, UserAnswer
from emulator.protocol.syncml.message import build_message, parse_message
from emulator.server.dm12 import Dm12Config, Dm12Server
from emulator.server.state import ServerState

SERVER = "http://127.0.0.1:9"


def session_messages(profile: str) -> list[tuple[str, bytes]]:
    """(content type, body) of every message of one first DM 1.2 session, in the order sent."""
    config = Dm12Config.shipped()
    config.script = quick_dm12_script
    server = Dm12Server(config, ServerState(base_url=SERVER))
    dev = VirtualDevice(find_profile(profile), 0, server=SERVER)
    engine = make_engine(dev, dev.account(protocol="dm12"), "s1")
    out: list[tuple[str, bytes]] = []
    while True:
        action = engine.next_action()
        if isinstance(action, SessionDone) or action is None:
            assert action is not None and action.outcome == "completed", action
            return out
        if isinstance(action, SendMessage):
            reply = server.handle(action.body, action.content_type, action.headers, url=action.url)
            out += [(action.content_type, bytes(action.body)), (reply.content_type, bytes(reply.body))]
            engine.receive_message(HttpResult(reply.status, reply.body,
                                              {"content-type": reply.content_type, **reply.headers}))
        elif isinstance(action, AskUser):
            engine.answer_user(action.request_id, UserAnswer("ok"))


@pytest.mark.parametrize("profile", ["smartphone", "nbiot-sensor"])
def test_parse_and_encode_a_bench_session(benchmark, request, capsys, profile):
    messages = session_messages(profile)
    wbxml = "wbxml" in messages[0][0]
    assert wbxml == (profile == "nbiot-sensor") and len(messages) >= 6
    parsed = [parse_message(body, ctype) for ctype, body in messages]
    assert [build_message(msg, wbxml=wbxml) for msg in parsed] == [body for _, body in messages]

    def round_trip() -> None:
        for ctype, body in messages:
            build_message(parse_message(body, ctype), wbxml=wbxml)

    benchmark(round_trip)
    n = 300 if enabled(request) else 2
    t0 = time.perf_counter()
    for _ in range(n):
        for ctype, body in messages:
            parse_message(body, ctype)
    dec = (time.perf_counter() - t0) / n / len(messages)
    t0 = time.perf_counter()
    for _ in range(n):
        for msg in parsed:
            build_message(msg, wbxml=wbxml)
    enc = (time.perf_counter() - t0) / n / len(messages)
    size = sum(len(body) for _, body in messages) // len(messages)
    report(request, capsys, f"{profile} DM 1.2 session, {len(messages)} {'WBXML' if wbxml else 'XML'} messages "
                            f"(~{size:,} bytes): decode {dec * 1e6:.0f} us, encode {enc * 1e6:.0f} us per message")
