"""A DM 1.2 server as an outside implementation writes it, for tests of our devices against it.

It stands in for the open-source handset server of the "outside peers" report: it never sends
DM-layer credentials (it relies on TLS), accepts whatever the device presents, and writes its
messages as hand-made XML text, so it can do what the project's own builder never does: reuse
CmdIDs, put Status children out of DTD order, answer 212 where 200 is due, name other versions.
One session: Package 2 asks for ``./DevInfo/Mod`` (plus any ``extra`` commands, raw XML with
``{cmd}`` for their CmdID), Package 4 closes. What the device sent is kept in ``received``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from aiohttp import web

from emulator.protocol.syncml.commands import Message, Results, Status
from emulator.protocol.syncml.message import parse_message

MEDIA = "application/vnd.syncml.dm+xml"


@dataclass
class Quirks:
    ver_dtd: str = "1.2"
    ver_proto: str = "DM/1.2"
    reuse_cmd_ids: bool = False  # every command of Package 2 has CmdID 1
    status_disorder: bool = False  # Status children as Cmd, CmdRef, MsgRef, Data, CmdID
    auth_code_later: int = 200  # SyncHdr status of messages after Package 1 (212 is the quirk)
    extra: list[str] = field(default_factory=list)  # raw commands for Package 2, "{cmd}" = CmdID


class OutsideDm12:
    def __init__(self, quirks: Quirks | None = None) -> None:
        self.q = quirks or Quirks()
        self.received: list[Message] = []
        self.results: dict[str, str] = {}
        self.statuses: list[Status] = []
        self._msg = 0

    def _header(self, msg: Message) -> str:
        self._msg += 1
        h = msg.header
        return (f"<SyncHdr><VerDTD>{self.q.ver_dtd}</VerDTD><VerProto>{self.q.ver_proto}</VerProto>"
                f"<SessionID>{h.session_id}</SessionID><MsgID>{self._msg}</MsgID>"
                f"<Target><LocURI>{h.source}</LocURI></Target><Source><LocURI>{h.target}</LocURI></Source>"
                "</SyncHdr>")

    def _status(self, cmd_id: int, msg_ref: str, cmd_ref: str, cmd: str, code: int) -> str:
        if self.q.status_disorder:
            return (f"<Status><Cmd>{cmd}</Cmd><CmdRef>{cmd_ref}</CmdRef><MsgRef>{msg_ref}</MsgRef>"
                    f"<Data>{code}</Data><CmdID>{cmd_id}</CmdID></Status>")
        return (f"<Status><CmdID>{cmd_id}</CmdID><MsgRef>{msg_ref}</MsgRef><CmdRef>{cmd_ref}</CmdRef>"
                f"<Cmd>{cmd}</Cmd><Data>{code}</Data></Status>")

    def answer(self, body: bytes, media: str = MEDIA) -> bytes:
        msg = parse_message(body, media)
        self.received.append(msg)
        first = len(self.received) == 1
        ref = msg.header.msg_id
        ids = iter(range(1, 1000))

        def cmd_id() -> int:
            n = next(ids)
            return 1 if self.q.reuse_cmd_ids else n

        parts = [self._status(cmd_id(), ref, "0", "SyncHdr", 212 if first else self.q.auth_code_later)]
        for cmd in msg.commands:
            if isinstance(cmd, Status):
                self.statuses.append(cmd)
            elif isinstance(cmd, Results):
                for item in cmd.items:
                    self.results[item.source or ""] = item.data if isinstance(item.data, str) else repr(item.data)
            else:
                parts.append(self._status(cmd_id(), ref, cmd.cmd_id, cmd.name, 200))
        if first:
            parts.append(f"<Get><CmdID>{cmd_id()}</CmdID><Item><Target><LocURI>./DevInfo/Mod</LocURI></Target>"
                         "</Item></Get>")
            parts.extend(raw.replace("{cmd}", str(cmd_id())) for raw in self.q.extra)
        body_xml = "".join(parts)
        return (f"<SyncML xmlns='SYNCML:SYNCML1.2'>{self._header(msg)}<SyncBody>{body_xml}<Final/></SyncBody>"
                "</SyncML>").encode()

    async def handle(self, request: web.Request) -> web.Response:
        body = self.answer(await request.read(), request.headers.get("Content-Type", MEDIA))
        return web.Response(body=body, content_type=MEDIA)  # answers in XML whatever the device sent


async def serve(server: OutsideDm12, ssl_context: ssl.SSLContext | None = None) -> tuple[web.AppRunner, str]:
    """Serve on 127.0.0.1 (an ephemeral port); the URL of its DM endpoint."""
    app = web.Application()
    app.router.add_post("/omadm", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}/omadm"
