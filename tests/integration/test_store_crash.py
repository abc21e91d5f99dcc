"""A workspace survives SIGKILL at any moment: reopened, it holds exactly the last committed round.

A child process rewrites every data leaf of several 2,000-node trees each round (round number in
every changed leaf, in the device row and in the traffic), one transaction per round, and prints
the round after each commit. The parent kills it at a random moment, reopens the file and checks
that nothing is half-written: all devices from one round, that round committed no earlier than the
child last said, no sessions left "running".
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from emulator.store import DeviceRecord, Workspace
from emulator.tree import Tree

REPO = Path(__file__).resolve().parents[2]
DEVICES = ("dev-0", "dev-1", "dev-2")
GROUPS, LEAVES = 20, 95  # ./Data holds 20 x 95 = 1,900 leaves
STATIC = 60
KILLS = 5
TRAFFIC_PER_ROUND = 4


def leaf_value(round_no: int, g: int, i: int) -> str | bytes:
    text = f"{round_no}:{g}:{i}"
    return text.encode() if i % 10 == 0 else text  # some binary leaves too


def initial_tree() -> Tree:
    t = Tree()
    t.set_node("./Static", format="node", permanent=True, acl="Get=*")
    for k in range(STATIC):
        t.set_node(f"./Static/S{k}", f"static {k}", permanent=True, access={"Get"})
    t.set_node("./Data", format="node", acl="Get=*&Replace=srv")
    for g in range(GROUPS):
        t.set_node(f"./Data/G{g}", format="node")
        for i in range(LEAVES):
            value = leaf_value(0, g, i)
            t.set_node(f"./Data/G{g}/L{i}", value, format="bin" if isinstance(value, bytes) else "chr")
    t.set_node("./Log", format="node")
    return t


# The child: continues from the round the workspace holds, forever, until killed.
CHILD = f"""
import sys
from dataclasses import replace
from emulator.store import TrafficRecord, Workspace

GROUPS, LEAVES, PER_ROUND = {GROUPS}, {LEAVES}, {TRAFFIC_PER_ROUND}
ws = Workspace.open(sys.argv[1])
devices = ws.list_devices()
trees = {{d.id: ws.load_tree(d.id) for d in devices}}
sessions = {{d.id: ws.begin_session(d.id, "dm2", "https://dm.example/") for d in devices}}
n = devices[0].data["round"]
print("start", n, flush=True)
while True:
    n += 1
    with ws.transaction():
        for d in devices:
            t = trees[d.id]
            for g in range(GROUPS):
                for i in range(LEAVES):
                    text = f"{{n}}:{{g}}:{{i}}"
                    t.replace(f"./Data/G{{g}}/L{{i}}", text.encode() if i % 10 == 0 else text)
            t.add(f"./Log/r{{n}}", str(n))
            if n > 3:
                t.delete(f"./Log/r{{n - 3}}")
            ws.save_tree(d.id, t)
            ws.save_device(replace(d, state="running", data={{"round": n}}))
            ws.append_traffic_many(
                TrafficRecord(sessions[d.id], d.id, "out", float(n), "application/json",
                              b"x" * 200, f"round {{n}}")
                for _ in range(PER_ROUND)
            )
    print(n, flush=True)
"""


def check_workspace(ws: Workspace, last_printed: int, runs: int) -> int:
    """Everything consistent and from one round; returns that round."""
    assert ws.integrity_check() == "ok"
    rounds = {d.data["round"] for d in ws.list_devices()}
    assert len(rounds) == 1, f"devices from different rounds: {rounds}"
    (r,) = rounds
    assert last_printed <= r <= last_printed + 1, f"holds round {r}, child last committed {last_printed}"
    expected_log = [f"r{k}" for k in range(max(1, r - 2), r + 1)]
    expected_size = 1 + (1 + STATIC) + (1 + GROUPS * (1 + LEAVES)) + (1 + len(expected_log))
    for device_id in DEVICES:
        tree = ws.load_tree(device_id)
        assert len(tree) == expected_size
        for g in range(GROUPS):
            for i in range(LEAVES):
                assert tree.value(f"./Data/G{g}/L{i}") == leaf_value(r, g, i), (device_id, g, i)
        assert tree.children("./Log") == expected_log
        assert all(tree.value(f"./Static/S{k}") == f"static {k}" for k in range(STATIC))
        summaries = [m.summary for m in ws.traffic(device_id, limit=None)]
        assert len(summaries) == TRAFFIC_PER_ROUND * r
        assert set(summaries) == {f"round {k}" for k in range(1, r + 1)}
    assert ws.sessions(outcome="running") == []
    assert len(ws.sessions(outcome="cut off")) == len(DEVICES) * runs
    return r


def test_killed_writer_leaves_the_last_committed_round(tmp_path: Path):
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    print(f"kill timing seed {seed}")
    with Workspace.open(tmp_path) as ws:
        base = initial_tree()
        for index, device_id in enumerate(DEVICES):
            ws.save_device(DeviceRecord(device_id, "crash-test", index, "dm2", "stopped", {"round": 0}))
            ws.save_tree(device_id, base)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    survived, last_round = 0, 0
    for run in range(1, KILLS + 1):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = child.stdout.readline()  # type: ignore[union-attr]
        if not first.startswith("start"):
            child.kill()
            raise AssertionError(f"child did not start: {first!r} {child.communicate()[1]}")
        assert int(first.split()[1]) == last_round
        delay = rng.uniform(0.05, 0.5)
        try:
            child.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
        out, err = child.communicate()
        assert child.returncode == -signal.SIGKILL, f"child ended by itself: {err}"
        printed = [int(line) for line in out.split()]
        last_printed = printed[-1] if printed else last_round
        with Workspace.open(tmp_path) as ws:
            assert ws.cut_off_at_open == len(DEVICES)
            last_round = check_workspace(ws, last_printed, run)
        survived += 1
        print(f"run {run}: killed after {delay:.3f} s, child printed {printed}, workspace holds {last_round}")
    print(f"survived {survived} kills")
    assert survived == KILLS
