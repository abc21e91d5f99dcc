"""A device that gave up a session and opens a new one with the same SessionID is served, not refused."""

from __future__ import annotations

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.protocol.syncml.client import SyncMLClient
from emulator.protocol.syncml.message import parse_message
from emulator.server.dm12 import Dm12Config, Dm12Server
from emulator.server.state import ServerState

URL = "http://127.0.0.1:9/dm12"


def package1(dev: VirtualDevice) -> tuple[bytes, str, dict]:
    account = dev.account(protocol="dm12")
    engine = SyncMLClient(dev.tree, account, dev_id=dev.id, session_id="1F")
    action = engine.next_action()
    return action.body, action.content_type, action.headers


def test_package1_again_on_an_unfinished_session_starts_a_new_one():
    dev = VirtualDevice(find_profile("smartphone"), 0, server="http://127.0.0.1:9")
    server = Dm12Server(Dm12Config(), ServerState())
    body, media, headers = package1(dev)
    first = server.handle(body, media, headers, url=URL)
    assert first.status == 200
    again = server.handle(body, media, headers, url=URL)  # the device restarted mid-session
    assert again.status == 200
    reply = parse_message(again.body, again.content_type)
    assert reply.header.session_id == "1F"
    assert len(server.sessions[dev.id]) == 2
