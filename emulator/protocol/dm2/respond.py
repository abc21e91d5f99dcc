"""One DM 2.0 Package#2 in, the device's Package#3 out, with no network (``dm-emulator respond``).

The same engine as a live session runs the commands against the tree; only the outside world is
missing, so the commands that need it answer as if it failed:

- HGET, HPUT, HPOST: their HTTP exchange is refused ("respond mode makes no HTTP requests"), so
  the command's status is 500, as for an unreachable repository; the tree is unchanged;
- SHOW: 500 unless ``has_browser`` (there is no browser component to launch here);
- EXEC with a ServerURI: the node runs and the status is 202 as in a session; the result alert
  that would follow in a new session is kept in ``RespondResult.pending_alerts`` and a note;
- SUB is recorded (200) in a registry private to this call: nothing is ever pushed.

GET, DELETE, EXEC without ServerURI, DEFAULT, UNSUB, CONT and END behave exactly as in a session.
A Package#2 with END yields no Package#3 (empty bytes), as on the wire. A Package#2 that cannot be
read raises DecodeError.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emulator.errors import DecodeError, SessionError
from emulator.mo.accounts import Account
from emulator.protocol.actions import HttpRequest, HttpResult, OpenBrowser, SendMessage, SessionDone
from emulator.protocol.dm2 import media
from emulator.protocol.dm2.client import DM2Client, PendingAlert
from emulator.protocol.dm2.subscriptions import Subscriptions
from emulator.tree import Tree

NO_HTTP = "respond mode makes no HTTP requests"


@dataclass
class RespondResult:
    body: bytes  # the Package#3; b"" after END
    notes: list[str] = field(default_factory=list)  # why commands failed, in the user's words
    pending_alerts: list[PendingAlert] = field(default_factory=list)
    ended: bool = False


def respond_detail(tree: Tree, account: Account, body: bytes, *, dev_id: str | None = None,
                   has_browser: bool = False) -> RespondResult:
    """Run one Package#2 against ``tree`` for ``account``'s server; see the module doc."""
    device_id = dev_id or tree.value("./DM2/DevInfo/DevID") or ""
    if isinstance(device_id, bytes):
        device_id = device_id.decode("utf-8", "replace")
    client = DM2Client(tree, account, dev_id=device_id, has_browser=has_browser, subscriptions=Subscriptions(tree))
    first = client.next_action()
    if not isinstance(first, SendMessage):
        raise SessionError(getattr(first, "detail", "the engine did not start"))
    client.receive_message(HttpResult(200, body, {"content-type": media.REQUEST}))
    notes: list[str] = []
    while True:
        action = client.next_action()
        if isinstance(action, HttpRequest):
            notes.append(f"{action.method} {action.url}: {NO_HTTP}")
            client.receive_http(action.request_id, HttpResult(0, error=NO_HTTP))
        elif isinstance(action, OpenBrowser):
            notes.append(f"SHOW {action.url}: not opened ({NO_HTTP})")
        elif isinstance(action, SendMessage):
            return RespondResult(action.body, _notes(client, notes), client.pending_alerts)
        elif isinstance(action, SessionDone):
            if action.outcome == "completed":
                return RespondResult(b"", _notes(client, notes), client.pending_alerts, ended=True)
            if action.status in (400, 413):
                raise DecodeError(action.detail, status=action.status)
            raise SessionError(action.detail)
        else:
            raise SessionError(f"the engine stopped without an answer ({action!r})")


def _notes(client: DM2Client, notes: list[str]) -> list[str]:
    out = [n for n in client.notes if "RFC 7617" not in n] + notes
    out += [f"EXEC result alert for {p.server_uri} not delivered ({NO_HTTP})" for p in client.pending_alerts]
    return out


def respond(device_tree: Tree, account: Account, body: bytes) -> bytes:
    """The Package#3 bytes for one Package#2 (b"" when it ends the session)."""
    return respond_detail(device_tree, account, body).body
