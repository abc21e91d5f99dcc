"""The traffic detail pane shows a session's server warnings (tolerated protocol deviations) with
each of its messages, as the SessionEnded event carries them."""

from __future__ import annotations

import pytest

from emulator.events import MessageLogged, SessionEnded

pytestmark = pytest.mark.qt

BODY = (b"<SyncML xmlns='SYNCML:SYNCML1.2'><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>"
        b"<SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>d</LocURI></Target><Source><LocURI>s</LocURI>"
        b"</Source></SyncHdr><SyncBody><Final/></SyncBody></SyncML>")


def test_detail_lists_the_warnings_of_the_message_session(qtbot):
    from ui.traffic_panel import TrafficPanel

    panel = TrafficPanel()
    qtbot.addWidget(panel)
    ct = "application/vnd.syncml.dm+xml"
    panel.apply_events([
        MessageLogged("dev-1", "s1", "in", 1.0, ct, BODY, "HTTP 200", 3.0, "http://dm"),
        MessageLogged("dev-1", "s2", "in", 2.0, ct, BODY, "HTTP 200", 3.0, "http://dm"),
        SessionEnded("dev-1", "s1", "completed", "", "", ("CmdID reused in server MsgID 1: 1 2 times",)),
        SessionEnded("dev-1", "s2", "completed", "", ""),
    ])
    panel.show_detail(panel.proxy.index(0, 0))
    assert "Server warnings of this session" in panel.detail.toPlainText()
    assert "CmdID reused" in panel.detail.toPlainText()
    panel.show_detail(panel.proxy.index(1, 0))
    assert "Server warnings" not in panel.detail.toPlainText()
