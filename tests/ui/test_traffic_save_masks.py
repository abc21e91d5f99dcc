"""Saving the traffic log from the window: real DM 1.2 sessions (Basic and MD5 ``Cred``) against the
reference server on loopback, saved with the panel's Save. The file holds no credential unless the
user ticks "Save secrets"."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.events import EventBus, MessageLogged
from emulator.fleet.drive import SessionContext, drive
from emulator.fleet.engines import make_engine
from emulator.fleet.headless import HeadlessUi
from emulator.server.app import start_server
from emulator.server.state import ServerState
from emulator.transport.http import HttpTransport
from emulator.util.masking import MASK

pytestmark = pytest.mark.qt


async def _traffic(auth: str) -> tuple[list[MessageLogged], str, str]:
    server = await start_server(ServerState())
    dev = VirtualDevice(find_profile("smartphone"), 0, server=server.url)
    account = replace(dev.account(protocol="dm12"), auth=auth)
    bus = EventBus()
    seen: list[MessageLogged] = []
    bus.subscribe(seen.append, MessageLogged)
    transport = HttpTransport(timeout=10)
    try:
        engine = make_engine(dev, account, "s1")
        ctx = SessionContext(device_id=dev.id, session_id="s1", protocol="dm12", server=account.server_id,
                             bus=bus, transport=transport)
        await drive(engine, ctx, HeadlessUi())
    finally:
        await transport.aclose()
        await server.runner.cleanup()
    return seen, account.client_user, account.client_secret


@pytest.mark.parametrize("auth", ["basic", "md5"])
def test_saved_traffic_masks_credentials_unless_asked(qtbot, arun, tmp_path, auth):
    from ui.traffic_panel import TrafficPanel

    messages, user, secret = arun(_traffic(auth))
    creds = [m for m in messages if b"<Cred>" in m.body]
    assert creds, "the session sent no credentials: nothing was attacked"
    raw_cred = creds[0].body.split(b"<Data>", 2)[1].split(b"</Data>")[0] if auth == "md5" else \
        base64.b64encode(f"{user}:{secret}".encode())
    assert raw_cred in creds[0].body

    panel = TrafficPanel()
    qtbot.addWidget(panel)
    panel.add_messages(messages)
    assert not panel.reveal_box.isChecked()
    panel.save(tmp_path / "masked.jsonl")
    saved = (tmp_path / "masked.jsonl").read_text()
    bodies = b"".join(base64.b64decode(line.split('"body": "')[1].split('"')[0]) for line in saved.splitlines())
    assert raw_cred not in bodies and secret.encode() not in bodies
    assert MASK.encode() in bodies

    panel.reveal_box.setChecked(True)  # the explicit choice
    panel.save(tmp_path / "clear.jsonl")
    panel.clear()
    panel.load(tmp_path / "clear.jsonl")
    assert panel.model.messages == messages
