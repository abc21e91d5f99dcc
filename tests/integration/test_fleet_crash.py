"""A fleet killed with SIGKILL in the middle of its sessions leaves a workspace that reopens whole.

A child process runs the reference server and a fleet of smartphones with a workspace, every device
running sessions in a loop (DM 1.2 and DM 2.0 in turn; the demo scripts change the trees), writing
sessions, traffic and trees as they happen. It prints ``saving <dev> <fingerprint>`` before each tree
save and ``saved <dev>`` after its commit, and a ``session`` line after each session. The parent
kills it at a random moment, then reopens the workspace and checks:

- the file passes SQLite's integrity check;
- every device is there and its stored tree is its last committed one: the fingerprint of the
  last save the child announced, or of the one before when the kill landed inside that save;
  the tree loads, walks, holds its own DevId, and its node rows are whole (seq 0..n-1, no orphan);
- every session that was running at the kill is now 'cut off', none is left running;
- every completed session has its traffic (both directions), and no session the child reported
  completed is missing.

Between two sessions each device changes a node locally (as an app or the user would) and stays
idle a moment: the fleet writes that change at the end of the loop turn (announced the same way),
so a kill between sessions must find it stored.

Then the child is started again on the same workspace (``Fleet.restore``), so the later kills hit
a reopened workspace. ``-s`` shows ``survived N kills``.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

from emulator.store import Workspace, workspace_file
from emulator.tree import Tree

REPO = Path(__file__).resolve().parents[2]
DEVICES = 20
KILLS = 6


def fingerprint(tree: Tree) -> str:
    """What a session can change in a tree, hashed (the child computes the same)."""
    h = hashlib.sha256()
    for n in tree.walk():
        h.update(repr((n.path, n.value, n.format, n.type, n.acl, n.title)).encode())
    return h.hexdigest()[:16]


CHILD = f"""
import asyncio, hashlib, sys
from aiohttp import web
from emulator.fleet.fleet import Fleet
from emulator.server.app import create_app
from emulator.server.state import ServerState
from emulator.store import Workspace
from emulator.transport.http import HttpTransport

def fingerprint(tree):
    h = hashlib.sha256()
    for n in tree.walk():
        h.update(repr((n.path, n.value, n.format, n.type, n.acl, n.title)).encode())
    return h.hexdigest()[:16]

class AnnouncingFleet(Fleet):
    def save(self, dev):
        print("saving", dev.id, fingerprint(dev.tree), flush=True)
        super().save(dev)
        print("saved", dev.id, flush=True)

    def flush_changes(self):  # local changes between sessions, written at the end of the loop turn
        ids = [d for d in sorted(self._dirty) if d in self.devices and not self._in_session[d]]
        for d in ids:
            print("saving", d, fingerprint(self.devices[d].tree), flush=True)
        written = super().flush_changes()
        for d in ids:
            print("saved", d, flush=True)
        return written

async def device_loop(fleet, dev, turn):
    while True:
        protocol = ("dm12", "dm2")[turn % 2]
        turn += 1
        done = await fleet.run_session(dev.id, protocol)
        print("session", dev.id, protocol, done.outcome, flush=True)
        dev.tree.replace("./DevDetail/FwV", f"local-{{turn}}")  # a change on the device, between sessions
        await asyncio.sleep(0.02)  # idle: a kill here must keep the change

async def main(path, port):
    runner = web.AppRunner(create_app(ServerState(show_hold_s=5, push_wait_s=1)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    ws = Workspace.open(path)
    fleet = AnnouncingFleet(server=f"http://127.0.0.1:{{port}}", workspace=ws, transport=HttpTransport(timeout=10))
    devices = fleet.restore()
    print("start", len(devices), ws.cut_off_at_open, flush=True)
    if not devices:
        devices = fleet.add("smartphone", {DEVICES})
    for dev in devices:
        dev.set_bearer("wlan0", up=True)
        fleet.save(dev)
    tasks = [asyncio.ensure_future(device_loop(fleet, dev, i)) for i, dev in enumerate(devices)]
    await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.gather(*tasks)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_facts(path: Path) -> tuple[set[int], dict[str, tuple[int, int, int]]]:
    """Read before the workspace opens (and marks) the file: the sessions still 'running', and per
    device its node rows (count, first seq, last seq) as written."""
    conn = sqlite3.connect(workspace_file(path))
    try:
        running = {row[0] for row in conn.execute("SELECT id FROM sessions WHERE outcome = 'running'")}
        rows = {dev: (count, first, last) for dev, count, first, last in conn.execute(
            "SELECT device_id, count(*), min(seq), max(seq) FROM nodes GROUP BY device_id")}
    finally:
        conn.close()
    return running, rows


def expected_trees(lines: list[str], known: dict[str, str]) -> dict[str, set[str]]:
    """Per device, the fingerprints its stored tree may have: the last save announced, and when that
    save did not say 'saved', also the one committed before it."""
    committed = dict(known)
    pending: dict[str, str] = {}
    for line in lines:
        parts = line.split()
        if parts[:1] == ["saving"]:
            pending[parts[1]] = parts[2]
        elif parts[:1] == ["saved"]:
            committed[parts[1]] = pending.pop(parts[1])
    allowed = {dev: {fp} for dev, fp in committed.items()}
    for dev, fp in pending.items():
        allowed.setdefault(dev, set()).add(fp)
    return allowed


def check_workspace(ws: Workspace, cut: set[int], node_rows: dict[str, tuple[int, int, int]],
                    allowed: dict[str, set[str]], reported_completed: Counter) -> dict[str, str]:
    """Everything consistent; returns each device's stored tree fingerprint."""
    assert ws.integrity_check() == "ok"
    assert ws.cut_off_at_open == len(cut)
    assert ws.sessions(outcome="running") == []
    assert {s.id for s in ws.sessions(outcome="cut off")} >= cut
    devices = ws.list_devices()
    assert len(devices) == DEVICES and set(allowed) == {d.id for d in devices}
    stored: dict[str, str] = {}
    for dev in devices:
        tree = ws.load_tree(dev.id)  # refuses a row without its parent
        assert tree.value("./DevInfo/DevId") == dev.id
        count, first, last = node_rows[dev.id]  # a half-written tree would leave a gap or a tail
        assert (first, last + 1) == (0, count) == (0, sum(1 for _ in tree.walk())), dev.id
        stored[dev.id] = fingerprint(tree)
        assert stored[dev.id] in allowed[dev.id], f"{dev.id}: not its last committed tree"
        completed = ws.sessions(dev.id, outcome="completed")
        assert len(completed) >= reported_completed[dev.id], f"{dev.id}: completed sessions lost"
        for session in completed:
            directions = {m.direction for m in ws.traffic(dev.id, session.id, limit=None)}
            assert directions == {"out", "in"}, f"{dev.id}: completed session {session.id} without its traffic"
    return stored


def test_fleet_killed_at_random_reopens_with_every_device_whole(tmp_path: Path):
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    print(f"kill timing seed {seed}")
    port = free_port()  # the same for every run: the stored accounts point at it
    env = dict(os.environ, PYTHONPATH=str(REPO))
    known: dict[str, str] = {}
    reported_completed: Counter = Counter()
    survived = 0
    for run in range(1, KILLS + 1):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(port)], cwd=REPO, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        while True:
            line = child.stdout.readline()  # type: ignore[union-attr]
            if not line:
                child.kill()
                raise AssertionError(f"child did not get ready: {lines} {child.communicate()[1]}")
            lines.append(line.strip())
            if line.startswith("start"):
                assert int(line.split()[1]) == (0 if run == 1 else DEVICES)
            if line.startswith("ready"):
                break
        delay = rng.uniform(0.3, 1.5)
        try:
            child.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
        out, err = child.communicate()
        assert child.returncode == -signal.SIGKILL, f"child ended by itself: {err}"
        lines += out.splitlines()
        sessions = [line.split() for line in lines if line.startswith("session")]
        reported_completed.update(parts[1] for parts in sessions if parts[3] == "completed")
        cut, node_rows = raw_facts(tmp_path)
        assert cut, "the kill came while every device was in a session: some were running"
        with Workspace.open(tmp_path) as ws:
            known = check_workspace(ws, cut, node_rows, expected_trees(lines, known), reported_completed)
            total = len(ws.sessions())
        survived += 1
        print(f"run {run}: killed after {delay:.2f} s, {len(sessions)} sessions ended in this run "
              f"({sum(1 for s in sessions if s[3] == 'completed')} completed), {len(cut)} cut off, "
              f"{total} sessions in the workspace")
    print(f"survived {survived} kills")
    assert survived == KILLS
