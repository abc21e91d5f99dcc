"""Every fault the reference server can commit, against a real device over loopback HTTP.

One smartphone per case runs a session against a server told to misbehave at the n-th answer
(default the 2nd) of that device's next session. What the device must do, case by case:

- the session fails, with a detail that says what went wrong (checked on words);
- the device's state is "error" with that detail, and the workspace has the session as failed;
- the traffic log holds the messages up to the fault: every message the device sent, the answers
  before the fault, and the faulty answer itself when it came as an HTTP answer;
- the tree holds no change but those of commands the device applied AND acknowledged (a tree change
  must be followed by a message of the device, which carries its status); a fault that hits before
  any command leaves the tree exactly as it was;
- the next session (the fault is spent) completes.

Notifications (bad digest, replay): no session starts, the listener answers 403, an AlertRaised says
why; the next notification starts a session that completes.

All cases run at once on one loop (each device is its own case), so the module takes the time of
its slowest case. ``-s`` shows the table of faults tried and outcomes.
"""

from __future__ import annotations

import asyncio
import re
import socket
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from emulator.errors import EmulatorError
from emulator.events import AlertRaised, Event, MessageLogged, SessionEnded, SessionStarted, TreeChanged
from emulator.fleet.fleet import Fleet
from emulator.mo.diagmon import device_written
from emulator.protocol.actions import SessionDone
from emulator.server.app import create_app
from emulator.server.faults import KINDS, NOTIFICATION_KINDS, Fault
from emulator.server.notify_out import send_package0
from emulator.server.state import ServerState
from emulator.store import SessionRecord, TrafficRecord, Workspace
from emulator.transport.http import HttpTransport
from emulator.util.admin_token import admin_headers

# The device's read timeout must comfortably exceed a normal round trip on a loaded machine (the next
# session, and every other case, share it), and the slow fault must hold its answer far longer than the
# device waits, so neither side of the race can flip under load. The slow handler is cancelled at
# cleanup (short shutdown_timeout), so SLOW_S costs no time.
CLIENT_TIMEOUT_S = 4.0
SLOW_S = 10 * CLIENT_TIMEOUT_S


@dataclass(frozen=True)
class Case:
    kind: str
    protocol: str
    message: int = 2

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.protocol}" + ("" if self.message == 2 else f"@{self.message}")


SESSION_CASES = [Case(k, p) for k, protocols in KINDS.items() if k not in NOTIFICATION_KINDS for p in protocols]
SESSION_CASES += [
    Case("truncated", "dm12", 4),  # after the writes were applied and acknowledged
    Case("http_503", "dm2", 1),  # before the device ran any command
]
NOTIFY_CASES = [Case(k, p, 0) for k in sorted(NOTIFICATION_KINDS) for p in KINDS[k]]

# What the device's detail must say (the words a tester reads), per fault.
WORDS = {
    "drop": r"no answer",
    "slow": rf"no answer .*within {CLIENT_TIMEOUT_S:g} s",
    "http_500": r"HTTP 500",
    "http_503": r"HTTP 503",
    "malformed": r"bad message from the server|unreadable Package#2",
    "truncated": r"bad message from the server|unreadable Package#2",
    "oversize": r"over the limit of (16384|1048576) bytes .*stopped reading after",
    "repeat_msgid": r"repeated MsgID",
    "switch_sessionid": r"answered for session .*ours is",
    "challenge_forever": r"refused our credentials|HTTP 401",
    "bad_digest_notification": r"digest|does not verify",
    "replayed_notification": r"duplicate|does not verify",
}


@dataclass
class Outcome:
    case: Case
    dev_id: str
    done: SessionDone | None = None
    state: str = ""
    detail: str = ""
    before: dict[str, tuple] = field(default_factory=dict)
    after: dict[str, tuple] = field(default_factory=dict)
    nonce_paths: frozenset[str] = frozenset()
    timeline: list[Event] = field(default_factory=list)
    stored: SessionRecord | None = None
    traffic: list[TrafficRecord] = field(default_factory=list)
    fired: int = 0
    # notifications
    listener_status: int = 0
    listener_detail: str = ""
    alerts: list[AlertRaised] = field(default_factory=list)
    sessions_after_fault: int = -1
    next_outcome: str = ""


def snapshot(tree) -> dict[str, tuple]:
    """Every node with what a command can change (TStamp/VerNo follow value changes, not compared)."""
    return {n.path: (n.value, n.format, n.type, n.acl, n.title, n.children is None) for n in tree.walk()
            if not device_written(n.path)}  # (DiagMon readings, the error log: the device's own, not a command)


async def _serve(state: ServerState) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(create_app(state), shutdown_timeout=0.5)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    return runner, f"http://127.0.0.1:{sock.getsockname()[1]}"


class Lab:
    """The server, the fleet with its workspace, and every event of the bus in order."""

    def __init__(self, state: ServerState, fleet: Fleet, ws: Workspace) -> None:
        self.state, self.fleet, self.ws = state, fleet, ws
        self.events: list[Event] = []
        fleet.bus.subscribe(self.events.append)

    def new_device(self):
        (dev,) = self.fleet.add("smartphone", 1)
        dev.set_bearer("wlan0", up=True)  # 8 ms a request: keeps the module fast
        return dev

    def running(self, dev_id: str) -> int:
        started = sum(1 for e in self.events if isinstance(e, SessionStarted) and e.device_id == dev_id)
        ended = sum(1 for e in self.events if isinstance(e, SessionEnded) and e.device_id == dev_id)
        return started - ended

    async def settle(self, dev_id: str) -> None:
        """Until the device runs no session, the DM 2.0 EXEC result session it may start included."""
        quiet = 0
        for _ in range(200):
            await asyncio.sleep(0.05)
            quiet = quiet + 1 if self.running(dev_id) == 0 else 0
            if quiet >= 3:
                return

    async def wait_ended(self, dev_id: str, count: int) -> list[SessionEnded]:
        for _ in range(200):
            ended = [e for e in self.events if isinstance(e, SessionEnded) and e.device_id == dev_id]
            if len(ended) >= count:
                return ended
            await asyncio.sleep(0.05)
        raise AssertionError(f"{dev_id}: fewer than {count} sessions ended")

    def session_timeline(self, dev_id: str, start: int) -> list[Event]:
        """The device's events of the first session it started after event ``start``."""
        mine = [e for e in self.events[start:] if e.device_id == dev_id]
        first = next(i for i, e in enumerate(mine) if isinstance(e, SessionStarted))
        sid = mine[first].session_id  # type: ignore[attr-defined]
        last = next(i for i, e in enumerate(mine) if isinstance(e, SessionEnded) and e.session_id == sid)
        return mine[first : last + 1]


async def run_session_case(lab: Lab, case: Case) -> Outcome:
    dev = lab.new_device()
    out = Outcome(case, dev.id)
    if case.protocol == "dm12":
        acc = dev.account(protocol="dm12")
        out.nonce_paths = frozenset(f"{acc.path}/AppAuth/{level}/AAuthData" for level in ("CLCRED", "SRVCRED"))
    out.before = snapshot(dev.tree)
    fault = lab.state.add_fault(case.kind, dev.id, protocol=case.protocol, message=case.message, seconds=SLOW_S)
    start = len(lab.events)
    out.done = await lab.fleet.run_session(dev.id, case.protocol)
    out.state, out.detail = dev.state, dev.detail
    out.after = snapshot(dev.tree)
    out.timeline = lab.session_timeline(dev.id, start)
    out.fired = fault.fired
    failed = lab.ws.sessions(dev.id, outcome="failed")
    out.stored = failed[0] if len(failed) == 1 else None
    if out.stored is not None:
        out.traffic = lab.ws.traffic(dev.id, out.stored.id, limit=None)
    await lab.settle(dev.id)
    second = await lab.fleet.run_session(dev.id, case.protocol)
    out.next_outcome = second.outcome + ("" if second.outcome == "completed" else f": {second.detail}")
    await lab.settle(dev.id)
    return out


async def run_notify_case(lab: Lab, case: Case) -> Outcome:
    """Good notification first when the fault replays one; then the faulty one; then a good one."""
    dev = lab.new_device()
    out = Outcome(case, dev.id)
    listener = await lab.fleet.start_listener()
    to = listener.notify_url(dev.id)
    ended = 0
    if case.protocol == "dm12":
        # the server learns which secrets the device has (it cannot sign for a device it never saw), and
        # the nonce moves on from the factory one (a digest made with it passes as a resync, replays too)
        await lab.fleet.run_session(dev.id, "dm12")
        ended += 1
    if case.kind == "replayed_notification":
        first = await send_package0(lab.state, dev.id, to, case.protocol)
        assert first.status == 202, first
        ended += 1
        await lab.wait_ended(dev.id, ended)
        await lab.settle(dev.id)
        ended = len([e for e in lab.events if isinstance(e, SessionEnded) and e.device_id == dev.id])
    fault = lab.state.add_fault(case.kind, dev.id, protocol=case.protocol)
    start = len(lab.events)
    sent = await send_package0(lab.state, dev.id, to, case.protocol)
    out.listener_status, out.listener_detail = sent.status, sent.detail
    await asyncio.sleep(0.2)  # a session, had one started, would show by now
    mine = [e for e in lab.events[start:] if e.device_id == dev.id]
    out.sessions_after_fault = sum(1 for e in mine if isinstance(e, SessionStarted))
    out.alerts = [e for e in mine if isinstance(e, AlertRaised)]
    out.fired = fault.fired
    again = await send_package0(lab.state, dev.id, to, case.protocol)
    if again.status != 202:
        out.next_outcome = f"not started: HTTP {again.status} {again.detail}"
        return out
    session_end = (await lab.wait_ended(dev.id, ended + 1))[ended]
    out.next_outcome = session_end.outcome + ("" if session_end.outcome == "completed" else f": {session_end.detail}")
    await lab.settle(dev.id)
    return out


async def run_all(tmp_path) -> dict[str, Outcome]:
    state = ServerState(show_hold_s=5, push_wait_s=1)
    runner, base = await _serve(state)
    ws = Workspace.open(tmp_path / "ws")
    fleet = Fleet(server=base, transport=HttpTransport(timeout=CLIENT_TIMEOUT_S), workspace=ws)
    lab = Lab(state, fleet, ws)
    try:
        jobs = [run_session_case(lab, c) for c in SESSION_CASES] + [run_notify_case(lab, c) for c in NOTIFY_CASES]
        outcomes = await asyncio.gather(*jobs)
    finally:
        await fleet.aclose()
        await runner.cleanup()
        ws.close()
    return {o.case.id: o for o in outcomes}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, Outcome]:
    return asyncio.run(run_all(tmp_path_factory.mktemp("faults")))


# ------------------------------------------------------------------------------------------ sessions


@pytest.mark.parametrize("case", SESSION_CASES, ids=lambda c: c.id)
def test_session_fault_fails_cleanly_and_the_next_session_works(outcomes, case):
    out = outcomes[case.id]
    assert out.fired == 1, f"the fault never hit: {out.done}"
    done = out.done
    assert done is not None and done.outcome == "failed", done
    assert re.search(WORDS[case.kind], done.detail), done.detail
    assert out.state == "error" and out.detail == done.detail
    assert out.stored is not None and out.stored.detail == done.detail
    assert out.next_outcome == "completed"


@pytest.mark.parametrize("case", SESSION_CASES, ids=lambda c: c.id)
def test_traffic_log_holds_the_messages_up_to_the_fault(outcomes, case):
    out = outcomes[case.id]
    sent = [m for m in out.traffic if m.direction == "out"]
    answers = [m for m in out.traffic if m.direction == "in"]
    assert [m.direction for m in out.traffic[:2]] == ["out", "in"] or case.message == 1
    assert len(sent) >= case.message, [m.summary for m in out.traffic]
    if case.kind in ("drop", "slow", "oversize"):  # no answer was taken (oversize: refused before reading)
        assert len(answers) == case.message - 1 and out.traffic[-1].direction == "out"
        return
    assert out.traffic[-1].direction == "in"
    faulty = out.traffic[-1]
    if case.kind == "challenge_forever" and case.protocol == "dm12":  # the device tried again, in vain
        assert len(answers) == len(sent) > case.message
        assert all(b"<Data>401</Data>" in m.body for m in answers[case.message - 1 :])
        return
    assert len(answers) == case.message
    if case.kind.startswith("http_"):
        assert faulty.summary == f"HTTP {case.kind[-3:]}" and b"injected fault" in faulty.body


@pytest.mark.parametrize("case", SESSION_CASES, ids=lambda c: c.id)
def test_tree_keeps_only_what_was_applied_and_acknowledged(outcomes, case):
    out = outcomes[case.id]
    changed = {p for p in out.before.keys() | out.after.keys()
               if out.before.get(p) != out.after.get(p) and p not in out.nonce_paths}
    last_sent = max(i for i, e in enumerate(out.timeline) if isinstance(e, MessageLogged) and e.direction == "out")
    acked = {e.change.path for e in out.timeline[:last_sent] if isinstance(e, TreeChanged)}
    unreported = [e.change for e in out.timeline[last_sent:] if isinstance(e, TreeChanged)]
    assert unreported == [], "tree changed by commands whose status never went out"
    unexplained = [p for p in changed if not any(p == a or p.startswith(a + "/") or a.startswith(p + "/") for a in acked)]
    assert unexplained == [], f"tree changed outside acknowledged commands: {unexplained}"
    before_any_command = case.protocol == "dm12" and case.message <= 2 or case.message == 1
    if before_any_command:  # DM 1.2: answer 1 is the first-contact challenge, answer 2 only Gets
        assert changed == set() and acked == set()
    else:
        assert acked, "this case should have applied commands before the fault"


# ------------------------------------------------------------------------------------------ notifications


@pytest.mark.parametrize("case", NOTIFY_CASES, ids=lambda c: c.id)
def test_spoilt_notification_starts_no_session(outcomes, case):
    out = outcomes[case.id]
    assert out.fired == 1
    assert out.listener_status == 403, out.listener_detail
    assert out.sessions_after_fault == 0
    (alert,) = out.alerts
    assert alert.alert_type == "notification rejected"
    assert re.search(WORDS[case.kind], alert.detail, re.I), alert.detail
    assert alert.detail in out.listener_detail
    assert out.next_outcome == "completed"


# ------------------------------------------------------------------------------------------ the table


def test_fault_table(outcomes):
    """Faults tried and outcomes (shown with -s); every case is in it."""
    rows = []
    for case in SESSION_CASES + NOTIFY_CASES:
        out = outcomes[case.id]
        if case in NOTIFY_CASES:
            outcome = f"ignored (HTTP {out.listener_status})" if out.sessions_after_fault == 0 else "SESSION STARTED"
            detail = out.alerts[0].detail if out.alerts else out.listener_detail
        else:
            outcome = out.done.outcome if out.done else "?"
            detail = out.done.detail if out.done else ""
        name = case.kind + ("" if case.message in (0, 2) else f" @{case.message}")
        rows.append((name, case.protocol, outcome, detail[:60], out.next_outcome[:40]))
    head = ("fault", "protocol", "outcome", "detail (first 60 chars)", "next session")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    print()
    for row in [head, None, *rows]:
        print("-+-".join("-" * w for w in widths) if row is None
              else " | ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
    assert len(rows) == len(outcomes)
    assert all(f.kind in KINDS for f in (Fault(c.kind) for c in SESSION_CASES))


# ------------------------------------------------------------------------------------------ the ways in


def test_fault_specs_from_the_command_line_and_json():
    assert Fault.parse("drop") == Fault("drop")
    slow = Fault.parse("slow=1.5:IMEI:354679100000002")  # the DevID keeps its ':'
    assert (slow.kind, slow.seconds, slow.device) == ("slow", 1.5, "IMEI:354679100000002")
    assert Fault.parse("oversize=70000").size == 70000
    assert Fault.from_json({"kind": "http_503", "protocol": "dm2", "message": 3}).message == 3
    for bad in ("nap", "drop=3", "slow=soon"):
        with pytest.raises(EmulatorError):
            Fault.parse(bad)
    for bad in ({"kind": "repeat_msgid", "protocol": "dm2"}, {"kind": "repeat_msgid", "message": 1},
                {"kind": "drop", "sessions": 0}, {"kind": "drop", "when": "now"}, {"device": "x"}, ["drop"]):
        with pytest.raises(EmulatorError):
            Fault.from_json(bad)


def test_admin_api_installs_lists_and_clears_faults():
    async def main():
        state = ServerState()
        runner, base = await _serve(state)
        try:
            async with aiohttp.ClientSession(headers=admin_headers(state.admin_token)) as client:
                async with client.post(f"{base}/admin/faults", json=[
                        {"kind": "http_500", "device": "dev-a", "protocol": "dm2", "message": 1},
                        {"kind": "bad_digest_notification", "device": "dev-b"}]) as r:
                    added = r.status, await r.json()
                async with client.post(f"{base}/admin/faults", json=[{"kind": "nap"}]) as r:
                    refused = r.status, await r.text()
                async with client.post(f"{base}/dm2", data=b"{}", headers={
                        "OMADM-DevID": "dev-a", "Content-Type": "application/vnd.oma.dm.initiation+json"}) as r:
                    faulty = r.status, await r.text()
                async with client.get(f"{base}/admin/faults") as r:
                    listed = await r.json()
                async with client.delete(f"{base}/admin/faults") as r:
                    cleared = await r.json()
        finally:
            await runner.cleanup()
        return added, refused, faulty, listed, cleared, len(state.faults)

    added, refused, faulty, listed, cleared, left = asyncio.run(main())
    assert added[0] == 200 and [f["kind"] for f in added[1]["faults"]] == ["http_500", "bad_digest_notification"]
    assert refused[0] == 400 and "unknown fault 'nap'" in refused[1]
    assert faulty == (500, "injected fault: the reference server answers HTTP 500")
    assert listed["faults"][0]["fired"] == 1 and listed["hits"][0]["device"] == "dev-a"
    assert cleared == {"removed": 2} and left == 0


def test_server_command_refuses_an_unknown_fault(capsys):
    from emulator.cli import main

    assert main(["server", "--port", "0", "--fault", "nap:dev-1"]) == 1
    assert "unknown fault 'nap'" in capsys.readouterr().err
