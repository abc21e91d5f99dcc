"""A DM server that never ends the session (Package 2/4 for ever): the device stops at its limit.

Issue 12: about 3,600 packages in 180 s kept a device busy for ever, under both protocols. Each
session now ends after 200 messages (the 200th goes, the 201st does not), under both drivers, with
Alert 1223 where DM 1.2 allows it; a server that ends the session at the 200th completes it.
"""

from __future__ import annotations

import pytest
from session_kit import DRIVERS, Forever, hostile_account, phone, run_session, serve

from emulator.events import SessionEnded
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.message import content_type, parse_message


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("protocol", ["dm2", "dm12"])
def test_a_server_that_never_ends_the_session_gets_200_messages(driver, protocol):
    server = Forever()
    with serve(server.app()) as base:
        dev = phone(base)
        done, events = run_session(driver, dev, protocol, account=hostile_account(dev, protocol, base))
    assert done.outcome == "failed"
    assert done.detail == "server never ended the session after 200 messages (limit 200)"
    ended = [e for e in events if isinstance(e, SessionEnded)]
    assert [(e.outcome, e.detail) for e in ended] == [(done.outcome, done.detail)]
    if protocol == "dm2":
        assert len(server.posts) == 200  # DM 2.0 has no client END: the device just stops
        return
    # DM 1.2: 200 messages, then Alert 1223 with Final in place of the 201st, with its MsgID
    assert len(server.posts) == 201
    last = parse_message(server.posts[-1], content_type())
    assert last.header.msg_id == "201" and last.final
    assert [(c.name, getattr(c, "code", None)) for c in last.commands] == [("Alert", codes.ALERT_SESSION_ABORT)]
    assert not any(b"<Data>1223</Data>" in p for p in server.posts[:-1])


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("protocol", ["dm2", "dm12"])
def test_a_session_ended_by_the_server_at_the_200th_message_completes(driver, protocol):
    server = Forever(end_at=200)
    with serve(server.app()) as base:
        dev = phone(base)
        done, _ = run_session(driver, dev, protocol, account=hostile_account(dev, protocol, base))
    assert done.outcome == "completed", done
    assert len(server.posts) == 200


