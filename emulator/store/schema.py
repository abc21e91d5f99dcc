"""The workspace's tables and the migrations that build them, one schema version per step.

A new file and an old file take the same road: ``MIGRATIONS[i]`` turns version ``i`` into ``i + 1``,
and a new file starts at version 0. So a migrated workspace and a fresh one can never drift apart,
and every step is exercised by every test that opens a workspace.

The version lives in ``PRAGMA user_version`` (in the file header, so it is read without knowing any
table); the ``meta`` table's ``app`` row says the file is ours, so a stranger's SQLite file is never
touched.

Rules for a new step: append, never edit a released step; use only statements that run inside a
transaction (no ``executescript``, no ``VACUUM``, no ``PRAGMA foreign_keys``), because the opener
applies all pending steps in ONE transaction and a failed step leaves the file as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

APP = "dm-emulator"

Migration = Callable[[sqlite3.Connection], None]

# Version 1: the first layout. Children were reloaded in path order, traffic had no summary and no
# index (listing one device's traffic scanned the whole table).
_V1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    """CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        profile TEXT NOT NULL,
        identity_index INTEGER NOT NULL,
        protocol TEXT NOT NULL,
        state TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}',  -- JSON object
        created REAL NOT NULL,
        updated REAL NOT NULL)""",
    """CREATE TABLE nodes (
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        value,  -- no affinity: TEXT stays text, BLOB stays bytes
        value_is_bytes INTEGER NOT NULL DEFAULT 0,
        format TEXT NOT NULL,
        type TEXT NOT NULL,
        acl TEXT NOT NULL,
        flags INTEGER NOT NULL,  -- emulator.tree.node: PERMANENT | ACCESS_BITS
        title TEXT NOT NULL DEFAULT '',
        tstamp REAL,
        verno INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (device_id, path)) WITHOUT ROWID""",
    """CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        protocol TEXT NOT NULL,
        server TEXT NOT NULL,
        started REAL NOT NULL,
        ended REAL,
        outcome TEXT NOT NULL DEFAULT 'running'
            CHECK (outcome IN ('running', 'completed', 'failed', 'cut off')),
        detail TEXT NOT NULL DEFAULT '')""",
    "CREATE INDEX sessions_by_device ON sessions (device_id, id)",
    """CREATE TABLE traffic (
        id INTEGER PRIMARY KEY,
        session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
        ts REAL NOT NULL,
        content_type TEXT NOT NULL,
        body BLOB NOT NULL)""",
)


def _to_v1(conn: sqlite3.Connection) -> None:
    for statement in _V1:
        conn.execute(statement)
    conn.execute("INSERT INTO meta (key, value) VALUES ('app', ?)", (APP,))


def _to_v2(conn: sqlite3.Connection) -> None:
    """Keep sibling order (``nodes.seq``), give traffic a one-line summary and indices.

    Old rows get ``seq`` in path order, which is the order version 1 reloaded them in, so an old tree
    looks the same after the upgrade; a parent's path is a prefix of its children's, so it sorts first.
    """
    conn.execute("ALTER TABLE nodes ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")
    rows = conn.execute("SELECT device_id, path FROM nodes ORDER BY device_id, path").fetchall()
    seq: dict[str, int] = {}
    numbered = []
    for device_id, path in rows:
        n = seq[device_id] = seq.get(device_id, -1) + 1
        numbered.append((n, device_id, path))
    conn.executemany("UPDATE nodes SET seq = ? WHERE device_id = ? AND path = ?", numbered)
    conn.execute("ALTER TABLE traffic ADD COLUMN summary TEXT NOT NULL DEFAULT ''")
    conn.execute("CREATE INDEX traffic_by_device ON traffic (device_id, id)")
    conn.execute("CREATE INDEX traffic_by_session ON traffic (session_id, id)")


def _to_v3(conn: sqlite3.Connection) -> None:
    """Let a session end 'aborted' (stopped by the user or a scenario, or by the server's Alert 1223).

    Version 2's CHECK refused it, so such a session stayed 'running' until the next open called it
    'cut off'. SQLite cannot change a CHECK in place: the table is copied under the same name. Foreign
    keys are off while migrations run (the opener turns them on after), so dropping the old table
    takes no traffic with it, and the traffic rows' REFERENCES sessions(id) name the new table.
    """
    conn.execute(
        """CREATE TABLE sessions_v3 (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        protocol TEXT NOT NULL,
        server TEXT NOT NULL,
        started REAL NOT NULL,
        ended REAL,
        outcome TEXT NOT NULL DEFAULT 'running'
            CHECK (outcome IN ('running', 'completed', 'failed', 'aborted', 'cut off')),
        detail TEXT NOT NULL DEFAULT '')"""
    )
    conn.execute(
        "INSERT INTO sessions_v3 (id, device_id, protocol, server, started, ended, outcome, detail)"
        " SELECT id, device_id, protocol, server, started, ended, outcome, detail FROM sessions"
    )
    conn.execute("DROP TABLE sessions")
    conn.execute("ALTER TABLE sessions_v3 RENAME TO sessions")
    conn.execute("CREATE INDEX sessions_by_device ON sessions (device_id, id)")


MIGRATIONS: list[Migration] = [_to_v1, _to_v2, _to_v3]
SCHEMA_VERSION = len(MIGRATIONS)
