"""The workspace file: tree round trips, isolation between devices, sessions, traffic, migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from emulator.errors import StoreError
from emulator.store import FILE_NAME, SCHEMA_VERSION, DeviceRecord, TrafficRecord, Workspace
from emulator.store.schema import MIGRATIONS
from emulator.tree import Tree, TreeError


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        self.now += 1.5
        return self.now


def rich_tree() -> Tree:
    """Every property the store must keep, in a sibling order that is not alphabetical."""
    t = Tree(clock=Clock())
    t.replace_prop(".", "ACL", "Add=*&Get=*&Replace=srv1")
    t.set_node("./DevInfo", format="node", type="urn:oma:mo:oma-dm-devinfo:1.0", permanent=True, acl="Get=*")
    t.set_node("./DevInfo/DevId", "IMEI:490154203237518", permanent=True, access={"Get"})
    t.set_node("./DevInfo/Man", "Acme", permanent=True, access={"Get", "Copy"}, title="Manufacturer")
    t.set_node("./Zeta", format="node", title="Zeta comes first")
    t.set_node("./Zeta/Blob", b"\x00\xffbinary\x80", format="bin", type="application/octet-stream")
    t.set_node("./Zeta/Empty", "", format="chr")
    t.set_node("./Zeta/Nothing", None, format="null", type="")
    t.set_node("./Zeta/EmptyDir", format="node", type="")
    t.set_node(("Ünïcødé", "名前"), "値", format="chr", type="text/plain; charset=utf-8")
    t.set_node(("Ünïcødé", "a/b%c"), "slash and percent in a name", acl="Get=srv1+srv2&Delete=srv1")
    t.set_node("./Alpha", format="node", acl="Add=srv1&Get=srv1&Replace=srv1&Delete=srv1&Exec=srv1")
    t.set_node("./Alpha/Run", "", access={"Exec", "Get"})
    t.add("./Alpha/Counter", "1", format="int")
    t.replace("./Alpha/Counter", "2")  # VerNo 2 and a TStamp, from the tree's own clock
    t.replace_prop("./Alpha/Counter", "Title", "How many")
    t.add("./Alpha/Gone", "x")
    t.delete("./Alpha/Gone")  # touches Alpha's TStamp/VerNo
    return t


def snapshot(tree: Tree) -> list:
    return list(tree.walk())


def device(device_id: str, **kw: object) -> DeviceRecord:
    fields: dict = {"profile": "generic-phone", "identity_index": 0, "protocol": "dm2"} | kw
    return DeviceRecord(device_id, **fields)


@pytest.fixture
def ws(tmp_path: Path):
    with Workspace.open(tmp_path / "ws", clock=Clock()) as w:
        yield w


def test_open_creates_directory_and_file(tmp_path: Path):
    with Workspace.open(tmp_path / "new" / "dir") as w:
        assert w.path == tmp_path / "new" / "dir" / FILE_NAME
        assert w.schema_version == SCHEMA_VERSION
        assert w.migrated_from is None
        assert w.integrity_check() == "ok"
    assert (tmp_path / "new" / "dir" / FILE_NAME).is_file()
    with Workspace.open(tmp_path / "new" / "dir" / FILE_NAME) as again:  # the file itself works too
        assert again.list_devices() == []


def test_tree_round_trip_keeps_every_property(ws: Workspace):
    tree = rich_tree()
    info = tree.info("./Alpha/Counter")
    assert (info.verno, info.title) == (3, "How many") and info.tstamp is not None
    ws.save_device(device("d1"))
    assert ws.save_tree("d1", tree) == len(tree)
    loaded = ws.load_tree("d1")
    assert snapshot(loaded) == snapshot(tree)
    assert loaded.children(".") == ["DevInfo", "Zeta", "Ünïcødé", "Alpha"]  # sibling order, not sorted
    assert loaded.value("./Zeta/Blob") == b"\x00\xffbinary\x80"
    assert isinstance(loaded.value("./Zeta/Empty"), str) and loaded.value("./Zeta/Nothing") is None
    assert loaded.get_prop(".", "ACL") == "Add=*&Get=*&Replace=srv1"
    # the loaded tree behaves as the saved one: permanence, access types and ACLs are enforced
    assert loaded.info("./DevInfo/DevId").permanent and loaded.info("./DevInfo/DevId").access == {"Get"}
    with pytest.raises(TreeError) as e:
        loaded.replace("./DevInfo/DevId", "other", by="srv1")  # access type Get only
    assert e.value.status == 405
    with pytest.raises(TreeError) as e:
        loaded.get("./Alpha/Counter", by="srv2")
    assert e.value.status == 425


def test_load_over_template_shares_unchanged_nodes(ws: Workspace):
    template = rich_tree()
    before = snapshot(template)
    tree = template.fork()
    tree.replace("./Alpha/Counter", "3")
    tree.delete("./Zeta/Empty")
    tree.add("./Zeta/New", "n")
    tree.delete("./DevInfo")  # removed then added again: now after Alpha, unlike the template
    tree.set_node("./DevInfo", format="node", acl="Get=*")
    tree.set_node("./DevInfo/DevId", "other")
    tree.replace_prop(".", "ACL", "Add=*&Get=*")
    ws.save_device(device("d1"))
    ws.save_tree("d1", tree)
    calls = []
    template.on_exec("./Alpha/Run", lambda t, req: calls.append(req.path) or 200)
    loaded = ws.load_tree("d1", template=template)
    assert snapshot(loaded) == snapshot(tree)
    assert snapshot(template) == before  # loading never changes the template
    assert loaded.root.children["Ünïcødé"] is template.root.children["Ünïcødé"]  # untouched: shared
    assert loaded.exec("./Alpha/Run") == 200 and calls == ["./Alpha/Run"]  # handlers come along
    loaded.replace("./Ünïcødé/名前", "changed")
    assert template.value("./Ünïcødé/名前") == "値"


def test_devices_are_isolated(ws: Workspace):
    ws.save_device(device("a", data={"imei": "1", "名": ["x", 2]}))
    ws.save_device(device("b", identity_index=1, protocol="dm12", state="running"))
    ta, tb = Tree(), Tree()
    ta.set_node("./Only/InA", "a")
    tb.set_node("./Only/InB", b"b", format="bin")
    ws.save_tree("a", ta)
    ws.save_tree("b", tb)
    assert snapshot(ws.load_tree("a")) == snapshot(ta)
    assert snapshot(ws.load_tree("b")) == snapshot(tb)
    assert [d.id for d in ws.list_devices()] == ["a", "b"]
    assert ws.device("a").data == {"imei": "1", "名": ["x", 2]}
    assert ws.device("b") == DeviceRecord("b", "generic-phone", 1, "dm12", "running", {})
    assert ws.device("c") is None


def test_save_device_again_updates_and_keeps_the_tree(ws: Workspace):
    ws.save_device(device("a"))
    t = Tree()
    t.set_node("./X", "1")
    ws.save_tree("a", t)
    ws.save_device(device("a", state="running", data={"round": 2}))
    assert ws.device("a").state == "running" and ws.device("a").data == {"round": 2}
    assert ws.load_tree("a").value("./X") == "1"  # an upsert, not delete + insert (which would cascade)


def test_tree_errors(ws: Workspace, tmp_path: Path):
    t = Tree()
    t.set_node("./A/B", "1")
    with pytest.raises(StoreError, match="save_device"):
        ws.save_tree("nobody", t)
    ws.save_device(device("a"))
    assert not ws.has_tree("a")
    with pytest.raises(StoreError, match="no tree stored"):
        ws.load_tree("a")
    t.begin()
    with pytest.raises(ValueError, match="transaction"):
        ws.save_tree("a", t)
    t.rollback()
    ws.save_tree("a", t)
    assert ws.has_tree("a")
    ws.close()
    with pytest.raises(StoreError, match="closed"):
        ws.list_devices()
    raw = sqlite3.connect(tmp_path / "ws" / FILE_NAME)
    raw.execute("DELETE FROM nodes WHERE path = './A'")
    raw.commit()
    raw.close()
    with Workspace.open(tmp_path / "ws") as again, pytest.raises(StoreError, match="no parent node"):
        again.load_tree("a")


def test_transactions_commit_together_and_nest(ws: Workspace):
    with pytest.raises(RuntimeError), ws.transaction():
        ws.save_device(device("a"))
        raise RuntimeError("boom")
    assert ws.list_devices() == []
    with ws.transaction():
        ws.save_device(device("a"))
        try:
            with ws.transaction():
                ws.save_device(device("b"))
                raise RuntimeError("inner")
        except RuntimeError:
            pass
        ws.save_device(device("c"))
    assert [d.id for d in ws.list_devices()] == ["a", "c"]


def test_delete_device_removes_its_tree_sessions_and_traffic(ws: Workspace):
    for name in ("a", "b"):
        ws.save_device(device(name))
        t = Tree()
        t.set_node(f"./{name}", name)
        ws.save_tree(name, t)
        sid = ws.begin_session(name, "dm2", "https://dm.example/")
        ws.add_traffic(sid, name, "out", 1.0, "application/json", b"{}", "hello")
    assert ws.delete_device("a") is True
    assert ws.delete_device("a") is False
    assert not ws.has_tree("a") and ws.has_tree("b")
    assert [s.device_id for s in ws.sessions()] == ["b"]
    assert [m.device_id for m in ws.traffic()] == ["b"]


def test_traffic_filters_and_limit(ws: Workspace):
    ws.save_device(device("a"))
    ws.save_device(device("b"))
    sa1 = ws.begin_session("a", "dm2", "s")
    sa2 = ws.begin_session("a", "dm12", "s")
    sb = ws.begin_session("b", "dm2", "s")
    first = ws.add_traffic(sa1, "a", "out", 10.0, "application/json", b'{"x": 1}', "pkg 1")
    entries = [
        TrafficRecord(sa1, "a", "in", 11.0, "application/json", b"\x00\x01", "pkg 2"),
        TrafficRecord(sa2, "a", "out", 12.0, "application/vnd.syncml.dm+xml", b"<SyncML/>"),
        TrafficRecord(sb, "b", "out", 13.0, "application/json", b"{}", "b1"),
        TrafficRecord(None, "b", "in", 14.0, "application/vnd.syncml.notification", b"\xc0", "pkg 0"),
    ]
    assert ws.append_traffic_many(entries) == 4
    everything = ws.traffic()
    assert [m.ts for m in everything] == [10.0, 11.0, 12.0, 13.0, 14.0]
    assert everything[0].id == first and everything[0].body == b'{"x": 1}'
    assert everything[1] == TrafficRecord(
        sa1, "a", "in", 11.0, "application/json", b"\x00\x01", "pkg 2", first + 1
    )
    assert [m.ts for m in ws.traffic("a")] == [10.0, 11.0, 12.0]
    assert [m.ts for m in ws.traffic(session_id=sa1)] == [10.0, 11.0]
    assert [m.ts for m in ws.traffic("b", sb)] == [13.0]
    assert ws.traffic("a", sb) == []
    assert [m.ts for m in ws.traffic(limit=2)] == [13.0, 14.0]  # the latest two, oldest first
    with pytest.raises(ValueError):
        ws.add_traffic(sa1, "a", "sideways", 1.0, "x", b"")
    with pytest.raises(StoreError):  # a message for a device the workspace does not know
        ws.add_traffic(None, "nobody", "in", 1.0, "x", b"")


def test_sessions_end_and_cut_off_at_reopen(tmp_path: Path):
    with Workspace.open(tmp_path, clock=Clock(100.0)) as w:
        w.save_device(device("a"))
        done = w.begin_session("a", "dm2", "https://dm.example/")
        w.end_session(done, "completed", "5 commands")
        quiet = w.begin_session("a", "dm2", "https://dm.example/", started=200.0)
        talking = w.begin_session("a", "dm12", "https://dm.example/", started=300.0)
        w.add_traffic(talking, "a", "out", 301.0, "application/vnd.syncml.dm+xml", b"<a/>")
        w.add_traffic(talking, "a", "in", 302.5, "application/vnd.syncml.dm+xml", b"<b/>")
        with pytest.raises(ValueError):
            w.end_session(done, "running")
        with pytest.raises(StoreError):
            w.end_session(9999, "failed")
        assert {s.outcome for s in w.sessions("a")} == {"completed", "running"}
    with Workspace.open(tmp_path) as w:
        assert w.cut_off_at_open == 2
        by_id = {s.id: s for s in w.sessions()}
        assert by_id[done].outcome == "completed" and by_id[done].detail == "5 commands"
        assert by_id[quiet].outcome == "cut off" and by_id[quiet].ended == 200.0
        assert by_id[talking].outcome == "cut off" and by_id[talking].ended == 302.5
        assert w.sessions(outcome="running") == []
        assert [s.id for s in w.sessions("a", outcome="cut off")] == [quiet, talking]


def test_second_open_is_refused_while_in_use(tmp_path: Path):
    with Workspace.open(tmp_path) as first:
        first.save_device(device("a"))
        with pytest.raises(StoreError, match="in use"):
            Workspace.open(tmp_path)
        assert [d.id for d in first.list_devices()] == ["a"]
    with Workspace.open(tmp_path) as again:
        assert [d.id for d in again.list_devices()] == ["a"]


# ---------------------------------------------------------------------- files from elsewhere

# The version 1 layout, written out here as it was, independent of the code's migrations.
V1_DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE devices (id TEXT PRIMARY KEY, profile TEXT NOT NULL, identity_index INTEGER NOT NULL,
    protocol TEXT NOT NULL, state TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE nodes (device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    path TEXT NOT NULL, value, value_is_bytes INTEGER NOT NULL DEFAULT 0, format TEXT NOT NULL,
    type TEXT NOT NULL, acl TEXT NOT NULL, flags INTEGER NOT NULL, title TEXT NOT NULL DEFAULT '',
    tstamp REAL, verno INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (device_id, path)) WITHOUT ROWID;
CREATE TABLE sessions (id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE, protocol TEXT NOT NULL,
    server TEXT NOT NULL, started REAL NOT NULL, ended REAL,
    outcome TEXT NOT NULL DEFAULT 'running'
        CHECK (outcome IN ('running', 'completed', 'failed', 'cut off')),
    detail TEXT NOT NULL DEFAULT '');
CREATE INDEX sessions_by_device ON sessions (device_id, id);
CREATE TABLE traffic (id INTEGER PRIMARY KEY,
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    direction TEXT NOT NULL CHECK (direction IN ('out', 'in')), ts REAL NOT NULL,
    content_type TEXT NOT NULL, body BLOB NOT NULL);
INSERT INTO meta VALUES ('app', 'dm-emulator');
INSERT INTO devices VALUES ('old', 'generic-phone', 3, 'dm12', 'stopped', '{"note": "v1"}', 1.0, 2.0);
-- flags: 127 = permanent + every access type; 96 = Get + Replace; 33 = permanent + Get
INSERT INTO nodes VALUES ('old', '.', NULL, 0, 'node', '', 'Add=*&Get=*', 127, '', NULL, 0);
INSERT INTO nodes VALUES ('old', './DevInfo/Man', 'Acme', 0, 'chr', 'text/plain', '', 33, '', NULL, 0);
INSERT INTO nodes VALUES ('old', './DevInfo', NULL, 0, 'node', 'urn:oma:mo:oma-dm-devinfo:1.0',
    'Get=*', 127, 'Device info', 1000.0, 4);
INSERT INTO nodes VALUES ('old', './Cert', X'3082', 1, 'bin', 'application/pkix-cert', '', 96, '',
    NULL, 0);
INSERT INTO sessions VALUES (1, 'old', 'dm12', 'https://dm.example/', 5.0, NULL, 'running', '');
INSERT INTO traffic VALUES (1, 1, 'old', 'out', 6.0, 'application/vnd.syncml.dm+xml', X'3C2F3E');
PRAGMA user_version = 1;
"""


def write_v1(path: Path) -> None:
    raw = sqlite3.connect(path)
    raw.executescript(V1_DDL)
    raw.close()


def columns(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    indices = [
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    ]
    shape = {t: conn.execute(f"PRAGMA table_info({t})").fetchall() for t in tables}
    shape["indices"] = sorted(indices)
    return shape


def test_version_1_file_is_migrated_and_keeps_its_data(tmp_path: Path):
    old = tmp_path / "old" / FILE_NAME
    old.parent.mkdir()
    write_v1(old)
    with Workspace.open(old.parent) as w:
        assert w.migrated_from == 1 and w.schema_version == SCHEMA_VERSION == 3
        assert w.list_devices() == [
            DeviceRecord("old", "generic-phone", 3, "dm12", "stopped", {"note": "v1"})
        ]
        tree = w.load_tree("old")
        assert tree.children(".") == ["Cert", "DevInfo"]  # version 1 had no order but the paths'
        assert tree.value("./Cert") == b"\x30\x82"
        devinfo = tree.info("./DevInfo")
        assert (devinfo.title, devinfo.tstamp, devinfo.verno, devinfo.acl) == (
            "Device info",
            1000.0,
            4,
            "Get=*",
        )
        man = tree.info("./DevInfo/Man")
        assert man.permanent and man.access == {"Get"} and man.value == "Acme"
        assert tree.info("./Cert").access == {"Get", "Replace"} and not tree.info("./Cert").permanent
        assert [(m.body, m.summary) for m in w.traffic("old")] == [(b"</>", "")]
        assert w.cut_off_at_open == 1 and w.sessions()[0].ended == 6.0
        w.save_tree("old", tree)  # and the migrated file takes new writes
    Workspace.open(tmp_path / "fresh.sqlite").close()
    migrated, fresh = sqlite3.connect(old), sqlite3.connect(tmp_path / "fresh.sqlite")
    assert columns(migrated) == columns(fresh)  # migrated and new files have the same shape
    migrated.close()
    fresh.close()
    backup = sqlite3.connect(old.parent / f"{FILE_NAME}.v1.bak")
    assert backup.execute("PRAGMA user_version").fetchone()[0] == 1  # the way back for an older dm-emulator
    assert backup.execute("SELECT count(*) FROM nodes").fetchone()[0] == 4
    backup.close()


def test_version_2_file_learns_aborted_sessions_and_keeps_its_traffic(tmp_path: Path):
    """Version 2 refused 'aborted': a stopped session stayed 'running' and was later called cut off."""
    path = tmp_path / FILE_NAME
    raw = sqlite3.connect(path, isolation_level=None)
    for step in MIGRATIONS[:2]:
        step(raw)
    raw.execute("PRAGMA user_version = 2")
    raw.execute("INSERT INTO devices VALUES ('d', 'generic-phone', 0, 'dm2', 'stopped', '{}', 1.0, 1.0)")
    raw.execute("INSERT INTO sessions VALUES (7, 'd', 'dm2', 'https://dm.example/', 5.0, 6.0, 'completed', 'ok')")
    raw.execute("INSERT INTO traffic VALUES (1, 7, 'd', 'out', 5.5, 'application/json', X'7B7D', 'Package#1')")
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute("UPDATE sessions SET outcome = 'aborted' WHERE id = 7")
    raw.close()
    with Workspace.open(tmp_path, clock=Clock(10.0)) as w:
        assert w.migrated_from == 2
        assert [(s.id, s.outcome, s.detail) for s in w.sessions()] == [(7, "completed", "ok")]
        assert [(m.session_id, m.summary) for m in w.traffic("d")] == [(7, "Package#1")]
        stopped = w.begin_session("d", "dm12", "https://dm.example/")
        w.end_session(stopped, "aborted", "stopped by the user")
    with Workspace.open(tmp_path) as w:
        assert w.cut_off_at_open == 0
        assert [(s.id, s.outcome) for s in w.sessions()] == [(7, "completed"), (stopped, "aborted")]
        assert w.delete_device("d")  # the new sessions table still cascades to the traffic
        assert w.sessions() == [] and w.traffic() == []


def test_failed_migration_leaves_the_file_unchanged(tmp_path: Path):
    path = tmp_path / FILE_NAME
    write_v1(path)
    raw = sqlite3.connect(path)
    raw.execute("CREATE INDEX traffic_by_device ON traffic (device_id)")  # in the way of step 2
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match=r"cannot migrate .* from schema version 1 to 3.*unchanged"):
        Workspace.open(tmp_path)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "seq" not in [c[1] for c in raw.execute("PRAGMA table_info(nodes)")]
    assert raw.execute("SELECT outcome FROM sessions").fetchone()[0] == "running"
    raw.close()


def test_newer_version_is_refused_with_a_clear_message(tmp_path: Path):
    Workspace.open(tmp_path).close()
    raw = sqlite3.connect(tmp_path / FILE_NAME)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(StoreError) as e:
        Workspace.open(tmp_path)
    message = str(e.value)
    assert str(tmp_path / FILE_NAME) in message and "99" in message and f"version {SCHEMA_VERSION}" in message
    assert "newer dm-emulator" in message


def test_garbage_file_is_refused_and_left_alone(tmp_path: Path):
    path = tmp_path / FILE_NAME
    garbage = b"this is not a database\n" * 300
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match="not an SQLite database") as e:
        Workspace.open(tmp_path)
    assert str(path) in str(e.value) and "--workspace" in str(e.value)
    assert path.read_bytes() == garbage


def test_someone_elses_database_is_refused_and_left_alone(tmp_path: Path):
    path = tmp_path / "photos.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()
    content = path.read_bytes()
    with pytest.raises(StoreError, match="not a dm-emulator workspace"):
        Workspace.open(path)
    assert path.read_bytes() == content  # not even switched to WAL
    assert not (tmp_path / "photos.db-wal").exists()
