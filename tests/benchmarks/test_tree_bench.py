"""Tree figures: build, TNDS export/import, Get/Replace with ACL checks, memory per node and per fork.

Run for real with ``pytest tests/benchmarks --benchmark-enable`` (100,000 nodes; figures printed).
Under the default ``--benchmark-disable`` each benchmark runs once on a small tree, as a smoke test.
Targets (from the issue; printed next to the figures, never asserted): export and import < 1 s,
Get or Replace < 5 us, < 300 bytes per node, 1,000 forked devices < 20 MB beyond the first.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable

import pytest

from emulator.tree import Tree
from emulator.tree.tnds import export_tnds, import_tnds

SERVER = "dm.example.com"
# 99 leaf names shared by every instance, as in a real MO (the same DDF names under each <X>)
LEAF_NAMES = [
    *("AppID", "ServerID", "Name", "PrefConRef", "Addr", "AddrType", "PortNbr", "AAuthPref", "AAuthLevel"),
    *("AAuthType", "AAuthName", "AAuthSecret", "AAuthData"),
    *(f"Param{j:02d}" for j in range(99 - 13)),
]


def enabled(request: pytest.FixtureRequest) -> bool:
    cfg = request.config
    return not (cfg.getoption("benchmark_disable") and not cfg.getoption("benchmark_enable"))


def report(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str], text: str) -> None:
    """Figures go to the terminal when benchmarking; in a smoke run they stay in the captured output."""
    if enabled(request):
        with capsys.disabled():
            print(f"\n    {text}")
    else:
        print(text)


def sizes(request: pytest.FixtureRequest) -> tuple[int, int]:
    """(interior nodes, leaves each): 1,000 x 99 when benchmarking, tiny otherwise."""
    return (1000, 99) if enabled(request) else (20, 9)


def build_tree(interior: int, leaves: int) -> Tree:
    """``./Vendor/Acc<i>/<leaf>``; ``./Vendor`` grants the server everything, every tenth account
    has its own ACL, so half the lookups inherit from two levels up and the rest from one."""
    t = Tree(clock=lambda: 1_700_000_000.0)
    t.set_node(("Vendor",), format="node", type="org.example/1.0/Vendor",
               acl=f"Add={SERVER}&Delete={SERVER}&Get={SERVER}&Replace={SERVER}")
    names = LEAF_NAMES[:leaves]
    for i in range(interior):
        acc = f"Acc{i:04d}"
        acl = f"Get={SERVER}+ops.example.net&Replace={SERVER}" if i % 10 == 0 else None
        t.set_node(("Vendor", acc), format="node", type="urn:oma:mo:oma-dm-dmacc:1.0", acl=acl)
        for j, name in enumerate(names):
            t.set_node(("Vendor", acc, name), f"https://dm{i}.example.com:443/v{j}")
    return t


def leaf_uris(interior: int, leaves: int) -> list[str]:
    return [f"./Vendor/Acc{i:04d}/{name}" for i in range(interior) for name in LEAF_NAMES[:leaves]]


def timed(fn: Callable[[], object], laps: list[float]) -> Callable[[], object]:
    def run() -> object:
        start = time.perf_counter()
        out = fn()
        laps.append(time.perf_counter() - start)
        return out

    return run


@pytest.fixture(scope="module")
def big(request: pytest.FixtureRequest) -> Tree:
    return build_tree(*sizes(request))


def test_build(benchmark, request, capsys):
    laps: list[float] = []
    t = benchmark.pedantic(timed(lambda: build_tree(*sizes(request)), laps), rounds=3 if enabled(request) else 1)
    n = len(t)
    report(request, capsys, f"build: {n:,} nodes in {min(laps):.3f} s ({min(laps) / n * 1e6:.2f} us/node)")
    assert n == 1 + 1 + sizes(request)[0] * (1 + sizes(request)[1])


def test_tnds_export(benchmark, request, capsys, big):
    laps: list[float] = []
    doc = benchmark.pedantic(timed(lambda: export_tnds(big), laps), rounds=3 if enabled(request) else 1)
    report(request, capsys, f"TNDS export: {len(big):,} nodes, {len(doc) / 1e6:.1f} MB in {min(laps):.3f} s "
                            "(target < 1 s)")
    assert doc.count(b"<Node>") == len(big) - 1


def test_tnds_import(benchmark, request, capsys, big):
    doc = export_tnds(big)
    laps: list[float] = []
    fresh = benchmark.pedantic(timed(lambda: _import_fresh(doc), laps), rounds=3 if enabled(request) else 1)
    report(request, capsys, f"TNDS import: {len(fresh):,} nodes in {min(laps):.3f} s (target < 1 s)")
    assert len(fresh) == len(big)


def _import_fresh(doc: bytes) -> Tree:
    t = Tree()
    import_tnds(t, doc)
    return t


def test_get_with_acl(benchmark, request, capsys, big):
    uris = leaf_uris(*sizes(request))
    ops = 100_000 if enabled(request) else 1_000
    work = (uris * (ops // len(uris) + 1))[:ops]

    def run() -> None:
        get = big.get
        for u in work:
            get(u, by=SERVER)

    laps: list[float] = []
    benchmark.pedantic(timed(run, laps), rounds=3 if enabled(request) else 1)
    report(request, capsys, f"Get: {ops:,} ops, {min(laps) / ops * 1e6:.2f} us/op (target < 5 us)")


def test_replace_with_acl(benchmark, request, capsys, big):
    uris = leaf_uris(*sizes(request))
    ops = 100_000 if enabled(request) else 1_000
    work = (uris * (ops // len(uris) + 1))[:ops]

    def run() -> None:
        replace = big.replace
        for u in work:
            replace(u, "changed", by=SERVER)

    laps: list[float] = []
    benchmark.pedantic(timed(run, laps), rounds=3 if enabled(request) else 1)
    report(request, capsys, f"Replace: {ops:,} ops, {min(laps) / ops * 1e6:.2f} us/op (target < 5 us)")
    assert big.value(work[-1]) == "changed"


def test_memory_per_node(request, capsys):
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        t = build_tree(*sizes(request))
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    n = len(t)
    report(request, capsys, f"memory: {used / 1e6:.1f} MB for {n:,} nodes = {used / n:.0f} bytes/node "
                            "(target < 300), names and values included")
    assert used > 0


def profile_tree() -> Tree:
    """About 200 nodes shaped like a phone profile: DevInfo, DevDetail, two DMAcc, Wi-Fi and apps."""
    t = Tree(clock=lambda: 1_700_000_000.0)
    for name, value in [("DevId", "IMEI:000000000000000"), ("Man", "Acme"), ("Mod", "Phone X"),
                        ("DmV", "1.2"), ("Lang", "en-US")]:
        t.set_node(("DevInfo", name), value)
    for name in ("DevTyp", "OEM", "FwV", "SwV", "HwV", "LrgObj"):
        t.set_node(("DevDetail", name), "1.0")
    for name in ("MaxDepth", "MaxTotLen", "MaxSegLen"):
        t.set_node(("DevDetail", "URI", name), "0")
    for acc in ("srv1", "srv2"):
        base = ("DMAcc", acc)
        for name in ("AppID", "ServerID", "Name", "PrefConRef", "AAuthPref"):
            t.set_node(base + (name,), f"{acc}-{name}")
        t.set_node(base + ("AppAddr", "1", "Addr"), f"https://{acc}.example.com/dm")
        t.set_node(base + ("AppAddr", "1", "AddrType"), "URI")
        t.set_node(base + ("AppAddr", "1", "Port", "1", "PortNbr"), "443")
        for auth in ("1", "2"):
            for name in ("AAuthLevel", "AAuthType", "AAuthName", "AAuthSecret", "AAuthData"):
                t.set_node(base + ("AppAuth", auth, name), f"{acc}-{auth}-{name}")
    for ssid in range(8):
        for name in ("SSID", "Security", "Password", "Hidden", "Priority", "Proxy"):
            t.set_node(("Ext", "WiFi", f"Net{ssid}", name), f"wifi{ssid}-{name}")
    for app in range(12):
        for name in ("Name", "Version", "Enabled", "Server", "Interval", "Token"):
            t.set_node(("Ext", "Apps", f"App{app}", name), f"app{app}-{name}")
    return t


CHANGED = [
    ("DevInfo", "DevId"), ("DMAcc", "srv1", "AppAuth", "1", "AAuthName"),
    ("DMAcc", "srv1", "AppAuth", "1", "AAuthSecret"), ("DMAcc", "srv1", "AppAuth", "2", "AAuthData"),
    ("DMAcc", "srv2", "AppAuth", "1", "AAuthName"), ("DMAcc", "srv2", "AppAuth", "1", "AAuthSecret"),
    ("Ext", "WiFi", "Net0", "Password"), ("Ext", "WiFi", "Net3", "Priority"),
    ("Ext", "Apps", "App1", "Token"), ("Ext", "Apps", "App7", "Enabled"),
]


def test_fork_memory(request, capsys):
    devices = 1000 if enabled(request) else 50
    template = profile_tree()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        first = profile_tree()
        one = tracemalloc.get_traced_memory()[0] - base
        forks = []
        for i in range(devices):
            twin = template.fork()
            for k, segs in enumerate(CHANGED):
                twin.replace(segs, f"device-{i:05d}-{k}")
            forks.append(twin)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base - one
    finally:
        tracemalloc.stop()
    report(request, capsys, f"forks: one full {len(first)}-node device {one / 1e3:.0f} kB; {devices:,} forked "
                            f"devices with {len(CHANGED)} changed leaves each {used / 1e6:.2f} MB "
                            f"({used / devices / 1e3:.1f} kB each; target < 20 MB for 1,000)")
    assert forks[-1].value(CHANGED[0]) == f"device-{devices - 1:05d}-0"
    assert template.value(CHANGED[0]) == "IMEI:000000000000000"
