"""The workspace: one SQLite file holding the devices, their trees, their sessions and their traffic.

Durability. Every write is one SQLite transaction, in WAL mode: a process killed at any instant
leaves the file at its last COMMIT, never half a tree. ``synchronous=NORMAL`` is the right level for
that promise: in WAL mode a COMMIT has written its frames to the WAL with ``write()`` before it
returns, so a killed *process* loses nothing committed (the kernel still holds the pages); only a
power cut or an OS crash may lose the last few commits, and even then the file rolls back to an
earlier consistent state, never to a torn one. ``FULL`` would add an fsync per commit, a few ms on a
laptop disk, paid on every traffic batch of a fleet of thousands of devices, to protect the last
second of an emulation against a power cut, which is not worth it for a test tool's workspace.

One owner. The file is opened in SQLite's EXCLUSIVE locking mode: a second process (or a second
:meth:`Workspace.open` in this one) is refused with a clear message instead of sharing the file.
That is what makes :meth:`Workspace.mark_cut_off_sessions` at open correct (a session still
"running" in the file cannot belong to a live process) and keeps two windows from overwriting each
other's trees.

Threads and asyncio. The store is called from the asyncio loop; each call is short (a 10,000-node
tree saves in tens of milliseconds). A caller with a long write (many trees, a big traffic batch)
should run it through ``asyncio.to_thread``: the connection may be used from any thread, and a lock
serialises the calls (a read from the loop waits for a write running in a worker thread). The
store itself never imports asyncio.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emulator.errors import StoreError
from emulator.protocol.values import DIRECTIONS, Direction, DmProtocol
from emulator.store.records import (
    END_OUTCOMES,
    DeviceRecord,
    EndOutcome,
    SessionRecord,
    StoredOutcome,
    TrafficRecord,
)
from emulator.store.schema import APP, MIGRATIONS, SCHEMA_VERSION
from emulator.store.tree_rows import COLUMNS, NodeRow, build_tree, tree_rows
from emulator.tree import Tree

FILE_NAME = "workspace.sqlite"
_FILE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
_BUSY_TIMEOUT = 1.0  # seconds; the owner holds an exclusive lock, so waiting longer gains nothing
_FIX = "choose another --workspace directory, or move that file away"


def workspace_file(location: str | os.PathLike[str]) -> Path:
    """``--workspace DIR`` -> ``DIR/workspace.sqlite``; an existing file or a ``*.sqlite`` path as is."""
    path = Path(location).expanduser()
    if path.is_dir():
        return path / FILE_NAME
    if path.exists() or path.suffix.lower() in _FILE_SUFFIXES:
        return path
    return path / FILE_NAME


class Workspace:
    """An open workspace. Use :meth:`open`; close it (or use ``with``) to release the file."""

    def __init__(self, conn: sqlite3.Connection, path: Path, clock: Callable[[], float]) -> None:
        self._conn: sqlite3.Connection | None = conn
        self.path = path
        self.clock = clock
        self._lock = threading.RLock()
        self._depth = 0
        #: the schema version the file had if this open migrated it, else None
        self.migrated_from: int | None = None
        #: how many sessions :meth:`mark_cut_off_sessions` found still running at open
        self.cut_off_at_open = 0

    # ------------------------------------------------------------------ opening and closing

    @classmethod
    def open(cls, location: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> Workspace:
        """Open (creating if missing) the workspace in directory ``location`` or the file it names.

        Migrates an older file (after copying it to ``<file>.v<N>.bak``); refuses with
        :class:`StoreError` a file that is not SQLite, not a dm-emulator workspace, from a newer
        dm-emulator, or in use by another process.
        """
        path = workspace_file(location)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open workspace {path}: {e}") from e
        try:
            migrated_from = _prepare(conn, path)
        except BaseException:
            conn.close()
            raise
        ws = cls(conn, path, clock)
        ws.migrated_from = migrated_from
        try:
            ws.cut_off_at_open = ws.mark_cut_off_sessions()
        except BaseException:
            ws.close()
            raise
        return ws

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._guard() as conn:
            version: int = conn.execute("PRAGMA user_version").fetchone()[0]
            return version

    def integrity_check(self) -> str:
        """SQLite's own check of the file: ``"ok"``, or what is wrong, one problem a line."""
        with self._guard() as conn:
            return "\n".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything in the block commits together or not at all; blocks nest (savepoints).

        Every method below runs in its own transaction, or joins the caller's, so
        ``with ws.transaction(): ws.save_tree(...); ws.append_traffic_many(...)`` is one commit.
        Never ``await`` inside the block: another coroutine on the loop's thread would join it.
        """
        with self._guard() as conn:
            depth = self._depth
            conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT s{depth}")
            self._depth += 1
            try:
                yield
                conn.execute("COMMIT" if depth == 0 else f"RELEASE s{depth}")
            except BaseException:
                _undo(conn, depth)
                raise
            finally:
                self._depth = depth

    @contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, with SQLite's errors turned into StoreError."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError(f"workspace {self.path} is closed")
            try:
                yield conn
            except sqlite3.Error as e:
                raise StoreError(f"workspace {self.path}: {_explain(e)}") from e

    # ------------------------------------------------------------------ devices

    def save_device(self, record: DeviceRecord) -> None:
        """Insert or update; an update keeps the device's tree, sessions and traffic."""
        now = self.clock()
        data = json.dumps(record.data, ensure_ascii=False, sort_keys=True)
        with self.transaction(), self._guard() as conn:
            conn.execute(
                "INSERT INTO devices (id, profile, identity_index, protocol, state, data, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET profile = excluded.profile,"
                " identity_index = excluded.identity_index, protocol = excluded.protocol,"
                " state = excluded.state, data = excluded.data, updated = excluded.updated",
                (
                    record.id,
                    record.profile,
                    record.identity_index,
                    record.protocol,
                    record.state,
                    data,
                    now,
                    now,
                ),
            )

    def device(self, device_id: str) -> DeviceRecord | None:
        with self._guard() as conn:
            row = conn.execute(f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE id = ?", (device_id,)).fetchone()
        return self._device(row) if row else None

    def list_devices(self) -> list[DeviceRecord]:
        """In the order they were first saved."""
        with self._guard() as conn:
            rows = conn.execute(f"SELECT {_DEVICE_COLUMNS} FROM devices ORDER BY created, id").fetchall()
        return [self._device(row) for row in rows]

    def delete_device(self, device_id: str) -> bool:
        """Remove a device with its tree, sessions and traffic; False if there was no such device."""
        with self.transaction(), self._guard() as conn:
            return conn.execute("DELETE FROM devices WHERE id = ?", (device_id,)).rowcount > 0

    def _device(self, row: tuple[Any, ...]) -> DeviceRecord:
        device_id, profile, identity_index, protocol, state, data = row
        try:
            parsed = json.loads(data)
        except ValueError as e:
            raise StoreError(f"workspace {self.path}: device {device_id!r} has damaged data: {e}") from e
        if not isinstance(parsed, dict):
            raise StoreError(f"workspace {self.path}: device {device_id!r} data is not a JSON object")
        return DeviceRecord(device_id, profile, int(identity_index), protocol, state, parsed)

    # ------------------------------------------------------------------ trees

    def save_tree(self, device_id: str, tree: Tree) -> int:
        """Replace the device's stored tree with ``tree``, whole, in one transaction; returns the node count.

        The device must have been saved first. A tree inside its own transaction (an Atomic being
        run) is refused: what it holds may still roll back.
        """
        if tree.in_transaction:
            raise ValueError(
                f"tree of {device_id!r} is inside a transaction: save it after commit or rollback"
            )
        rows = [(device_id, *row) for row in tree_rows(tree)]
        marks = ", ".join("?" * (len(NodeRow._fields) + 1))
        with self.transaction(), self._guard() as conn:
            if conn.execute("SELECT 1 FROM devices WHERE id = ?", (device_id,)).fetchone() is None:
                raise StoreError(
                    f"workspace {self.path}: no device {device_id!r}: save_device() before save_tree()"
                )
            conn.execute("DELETE FROM nodes WHERE device_id = ?", (device_id,))
            conn.executemany(f"INSERT INTO nodes (device_id, {COLUMNS}) VALUES ({marks})", rows)
        return len(rows)

    def has_tree(self, device_id: str) -> bool:
        with self._guard() as conn:
            return (
                conn.execute("SELECT 1 FROM nodes WHERE device_id = ? LIMIT 1", (device_id,)).fetchone()
                is not None
            )

    def load_tree(self, device_id: str, *, template: Tree | None = None) -> Tree:
        """The device's tree as last saved, with every property (ACL, Title, TStamp, VerNo, scope, access).

        With ``template`` (the profile's tree) the result is a fork of it sharing every unchanged node
        and carrying its exec handlers; without, a plain :class:`Tree`. No stored tree: StoreError.
        """
        with self._guard() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM nodes WHERE device_id = ? ORDER BY seq", (device_id,)
            ).fetchall()
        if not rows:
            raise StoreError(f"workspace {self.path}: no tree stored for device {device_id!r}")
        where = f"workspace {self.path}, device {device_id!r}"
        return build_tree((NodeRow(*row) for row in rows), template=template, where=where)

    # ------------------------------------------------------------------ sessions

    def begin_session(
        self, device_id: str, protocol: DmProtocol, server: str, *, started: float | None = None
    ) -> int:
        """Record a session as running; returns its id for :meth:`end_session` and the traffic."""
        with self.transaction(), self._guard() as conn:
            cur = conn.execute(
                "INSERT INTO sessions (device_id, protocol, server, started) VALUES (?, ?, ?, ?)",
                (device_id, protocol, server, self.clock() if started is None else started),
            )
            return _row_id(cur)

    def end_session(
        self, session_id: int, outcome: EndOutcome, detail: str = "", *, ended: float | None = None
    ) -> None:
        if outcome not in END_OUTCOMES:
            raise ValueError(f"a session ends as one of {END_OUTCOMES}, not {outcome!r}")
        with self.transaction(), self._guard() as conn:
            cur = conn.execute(
                "UPDATE sessions SET outcome = ?, detail = ?, ended = ? WHERE id = ?",
                (outcome, detail, self.clock() if ended is None else ended, session_id),
            )
            if cur.rowcount == 0:
                raise StoreError(f"workspace {self.path}: no session {session_id}")

    def sessions(self, device_id: str | None = None, *,
                 outcome: StoredOutcome | None = None) -> list[SessionRecord]:
        """Oldest first."""
        where, args = _filters(device_id=device_id, outcome=outcome)
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT id, device_id, protocol, server, started, ended, outcome, detail FROM sessions"
                f"{where} ORDER BY id",
                args,
            ).fetchall()
        return [SessionRecord(*row) for row in rows]

    def mark_cut_off_sessions(self) -> int:
        """Sessions still 'running' become 'cut off' (the process died in them); returns how many.

        Run at open, when no live process can own them. Their end is the last message logged, or
        their start when none was.
        """
        with self.transaction(), self._guard() as conn:
            return conn.execute(
                "UPDATE sessions SET outcome = 'cut off',"
                " ended = coalesce(ended, (SELECT max(ts) FROM traffic WHERE session_id = sessions.id), started),"
                " detail = CASE WHEN detail = '' THEN 'the emulator stopped during the session' ELSE detail END"
                " WHERE outcome = 'running'"
            ).rowcount

    # ------------------------------------------------------------------ traffic

    def add_traffic(
        self,
        session_id: int | None,
        device_id: str,
        direction: Direction,
        ts: float,
        content_type: str,
        body: bytes,
        summary: str = "",
    ) -> int:
        """Log one message; returns its id. Many at once: :meth:`append_traffic_many`."""
        _check_direction(direction)
        with self.transaction(), self._guard() as conn:
            cur = conn.execute(
                f"INSERT INTO traffic ({_TRAFFIC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, device_id, direction, ts, content_type, bytes(body), summary),
            )
            return _row_id(cur)

    def append_traffic_many(self, entries: Iterable[TrafficRecord]) -> int:
        """Log a batch in one transaction (the ``id`` of each entry is ignored); returns how many."""
        rows = []
        for e in entries:
            _check_direction(e.direction)
            rows.append(
                (e.session_id, e.device_id, e.direction, e.ts, e.content_type, bytes(e.body), e.summary)
            )
        with self.transaction(), self._guard() as conn:
            conn.executemany(f"INSERT INTO traffic ({_TRAFFIC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def traffic(
        self, device_id: str | None = None, session_id: int | None = None, *, limit: int | None = 1000
    ) -> list[TrafficRecord]:
        """The latest ``limit`` messages (all if None) matching the filters, oldest first."""
        where, args = _filters(device_id=device_id, session_id=session_id)
        sql = f"SELECT {_TRAFFIC_COLUMNS}, id FROM traffic{where} ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._guard() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [TrafficRecord(*row) for row in reversed(rows)]


_DEVICE_COLUMNS = "id, profile, identity_index, protocol, state, data"
_TRAFFIC_COLUMNS = "session_id, device_id, direction, ts, content_type, body, summary"


def _filters(**columns: object) -> tuple[str, list[object]]:
    """`` WHERE a = ? AND b = ?`` for the filters given (column names come from the code, never input)."""
    used = [(name, value) for name, value in columns.items() if value is not None]
    if not used:
        return "", []
    return " WHERE " + " AND ".join(f"{name} = ?" for name, _ in used), [value for _, value in used]


def _row_id(cur: sqlite3.Cursor) -> int:
    """The id SQLite gave the row an INSERT just added (never None after a one-row INSERT)."""
    row_id = cur.lastrowid
    if row_id is None:
        raise StoreError("SQLite reported no id for the row just inserted")
    return row_id


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"traffic direction is 'out' or 'in', not {direction!r}")


def _prepare(conn: sqlite3.Connection, path: Path) -> int | None:
    """Check the file is ours and current, migrating it if older; returns the old version if migrated.

    Nothing is written before the file is known to be ours (or new): a stranger's database keeps
    even its journal mode.
    """
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        app = (
            conn.execute("SELECT value FROM meta WHERE key = 'app'").fetchone() if "meta" in tables else None
        )
    except sqlite3.Error as e:
        if _busy(e):
            raise StoreError(
                f"workspace {path} is in use by another dm-emulator (or another program): {_FIX}"
            ) from e
        raise StoreError(
            f"{path} is not a dm-emulator workspace (not an SQLite database: {e}): {_FIX}"
        ) from e
    new = version == 0 and not tables
    if not new and (app is None or app[0] != APP):
        raise StoreError(
            f"{path} is an SQLite database but not a dm-emulator workspace (no 'app' entry): {_FIX}"
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"workspace {path} has schema version {version}, newer than version {SCHEMA_VERSION} that this"
            f" dm-emulator knows: open it with a newer dm-emulator, or {_FIX}"
        )
    try:
        # a filesystem without shared memory may refuse WAL: the rollback journal is atomic too
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.Error as e:
        raise StoreError(f"cannot open workspace {path}: {_explain(e)}") from e
    migrated_from = None
    if version < SCHEMA_VERSION:
        _migrate(conn, path, version)
        migrated_from = None if new else version
    try:
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as e:
        raise StoreError(f"cannot open workspace {path}: {_explain(e)}") from e
    return migrated_from


def _migrate(conn: sqlite3.Connection, path: Path, version: int) -> None:
    """All pending steps in ONE transaction: a failure leaves the file exactly as it was."""
    backup = path.with_name(f"{path.name}.v{version}.bak") if version else None
    try:
        if backup is not None:
            # an older dm-emulator cannot open the migrated file: keep the user a way back
            copy = sqlite3.connect(backup)
            try:
                conn.backup(copy)
            finally:
                copy.close()
        conn.execute("BEGIN IMMEDIATE")
        for step in MIGRATIONS[version:]:
            step(conn)
        problems = conn.execute("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise StoreError(f"{len(problems)} rows point at missing rows, first: {problems[0]}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except (sqlite3.Error, StoreError, OSError) as e:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if version == 0:
            raise StoreError(f"cannot create workspace {path}: {_explain(e)}") from e
        raise StoreError(
            f"cannot migrate workspace {path} from schema version {version} to {SCHEMA_VERSION}: {_explain(e)};"
            " the file is unchanged"
        ) from e


def _undo(conn: sqlite3.Connection, depth: int) -> None:
    """Roll back to where the transaction (or savepoint) ``depth`` began, keeping the first error."""
    try:
        if depth == 0:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        else:
            conn.execute(f"ROLLBACK TO s{depth}")
            conn.execute(f"RELEASE s{depth}")
    except sqlite3.Error:
        pass  # the error being raised says more; SQLite rolls back on close anyway


def _busy(e: BaseException) -> bool:
    return getattr(e, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED")


def _explain(e: BaseException) -> str:
    if _busy(e):
        return "the file is in use by another dm-emulator (or another program)"
    if getattr(e, "sqlite_errorname", "") == "SQLITE_FULL":
        return "the disk is full"
    return str(e)
