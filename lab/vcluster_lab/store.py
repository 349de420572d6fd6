"""The lab's one persistent store: SQLite in WAL mode under ``$VCLUSTER_LAB_HOME/lab.db``.

Every service of both faces reads and writes here, so the CSM and OpenCHAMI views of a
node are the same rows. Durability: a write is committed (WAL, ``synchronous=NORMAL``)
before the HTTP reply leaves, so it survives ``kill -9`` of the server; it does not
promise survival of a host power cut (that would need ``synchronous=FULL`` and an fsync
per request).

Concurrency: a small pool of connections serves readers in parallel; writers are
serialised by one process-wide lock and ``BEGIN IMMEDIATE``, so in-process writers never
see ``SQLITE_BUSY``. Relational tables hold what is filtered or joined at scale (SMD
components, interfaces, groups, partitions, BSS keys, PCS tasks); everything else is a
JSON document in ``docs`` keyed by (kind, id).
"""
from __future__ import annotations

import contextlib
import json
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS components (
  id TEXT PRIMARY KEY, type TEXT NOT NULL, state TEXT NOT NULL DEFAULT '',
  flag TEXT NOT NULL DEFAULT '', enabled INTEGER, software_status TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL DEFAULT '', subrole TEXT NOT NULL DEFAULT '', nid INTEGER,
  subtype TEXT NOT NULL DEFAULT '', net_type TEXT NOT NULL DEFAULT '',
  arch TEXT NOT NULL DEFAULT '', class TEXT NOT NULL DEFAULT '',
  reservation_disabled INTEGER NOT NULL DEFAULT 0, locked INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS components_nid ON components(nid);
CREATE TABLE IF NOT EXISTS eth_interfaces (
  id TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', mac TEXT NOT NULL,
  component_id TEXT NOT NULL DEFAULT '', type TEXT NOT NULL DEFAULT '',
  last_update TEXT NOT NULL, ip_addresses TEXT NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS eth_component ON eth_interfaces(component_id);
CREATE TABLE IF NOT EXISTS groups_ (
  label TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '',
  tags TEXT NOT NULL DEFAULT '[]', exclusive_group TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS group_members (
  label TEXT NOT NULL REFERENCES groups_(label) ON DELETE CASCADE,
  xname TEXT NOT NULL REFERENCES components(id) ON DELETE CASCADE,
  exclusive_group TEXT NOT NULL DEFAULT '', PRIMARY KEY (label, xname));
CREATE UNIQUE INDEX IF NOT EXISTS group_members_exclusive
  ON group_members(xname, exclusive_group) WHERE exclusive_group != '';
CREATE INDEX IF NOT EXISTS group_members_xname ON group_members(xname);
CREATE TABLE IF NOT EXISTS partitions (
  name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '[]');
CREATE TABLE IF NOT EXISTS partition_members (
  name TEXT NOT NULL REFERENCES partitions(name) ON DELETE CASCADE,
  xname TEXT NOT NULL PRIMARY KEY REFERENCES components(id) ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS boot_configs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, kernel TEXT NOT NULL DEFAULT '',
  initrd TEXT NOT NULL DEFAULT '', params TEXT NOT NULL DEFAULT '', cloud_init TEXT,
  referral TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS boot_keys (
  kind TEXT NOT NULL, value TEXT NOT NULL,
  config_id INTEGER NOT NULL REFERENCES boot_configs(id), PRIMARY KEY (kind, value));
CREATE INDEX IF NOT EXISTS boot_keys_config ON boot_keys(config_id);
CREATE TABLE IF NOT EXISTS transitions (
  id TEXT PRIMARY KEY, operation TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL,
  status TEXT NOT NULL, deadline INTEGER NOT NULL, abort INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS transition_tasks (
  transition_id TEXT NOT NULL REFERENCES transitions(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL, xname TEXT NOT NULL, status TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (transition_id, seq));
CREATE TABLE IF NOT EXISTS docs (
  kind TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, created REAL NOT NULL,
  PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS lab_nodes (
  xname TEXT PRIMARY KEY, origin TEXT NOT NULL, kind TEXT NOT NULL DEFAULT '',
  image TEXT NOT NULL DEFAULT '', created REAL NOT NULL);
"""


class Store:
    """SQLite behind a connection pool; ``read()`` and ``write()`` hand out a connection."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pool: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._wlock = threading.RLock()
        self._local = threading.local()
        conn = self._connect()
        conn.executescript(SCHEMA)
        self._pool.put(conn)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _get(self) -> sqlite3.Connection:
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            return self._connect()

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one read transaction (a consistent snapshot)."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        conn = self._get()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")
            self._pool.put(conn)

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one write transaction, committed on exit, rolled back on error."""
        held = getattr(self._local, "conn", None)
        if held is not None:  # nested: join the outer transaction
            yield held
            return
        with self._wlock:
            conn = self._get()
            conn.execute("BEGIN IMMEDIATE")
            self._local.conn = conn
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                self._local.conn = None
                self._pool.put(conn)

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return

    # ------------------------------------------------------------ key/value
    def kv_get(self, key: str, default: Any = None) -> Any:
        with self.read() as c:
            row = c.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def kv_set(self, key: str, value: Any) -> None:
        with self.write() as c:
            c.execute("INSERT INTO kv(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                      (key, json.dumps(value)))

    # ------------------------------------------------------------ documents
    def doc_get(self, kind: str, doc_id: str) -> Any:
        with self.read() as c:
            row = c.execute("SELECT data FROM docs WHERE kind=? AND id=?", (kind, doc_id)).fetchone()
        return json.loads(row[0]) if row else None

    def doc_get_many(self, kind: str, doc_ids: list[str]) -> dict[str, Any]:
        """``{id: document}`` of the ids that exist, in one read (chunked below SQLite's variable limit)."""
        out: dict[str, Any] = {}
        ids = list(dict.fromkeys(doc_ids))
        with self.read() as c:
            for start in range(0, len(ids), 900):
                chunk = ids[start:start + 900]
                rows = c.execute(f"SELECT id, data FROM docs WHERE kind=? AND id IN ({','.join('?' * len(chunk))})",
                                 (kind, *chunk)).fetchall()
                out.update((i, json.loads(d)) for i, d in rows)
        return out

    def doc_list(self, kind: str) -> list[Any]:
        with self.read() as c:
            rows = c.execute("SELECT data FROM docs WHERE kind=? ORDER BY created, id", (kind,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def doc_ids(self, kind: str) -> list[str]:
        with self.read() as c:
            return [r[0] for r in c.execute("SELECT id FROM docs WHERE kind=? ORDER BY created, id", (kind,))]

    def doc_put(self, kind: str, doc_id: str, data: Any) -> None:
        with self.write() as c:
            c.execute("INSERT INTO docs(kind, id, data, created) VALUES(?, ?, ?, ?) "
                      "ON CONFLICT(kind, id) DO UPDATE SET data=excluded.data",
                      (kind, doc_id, json.dumps(data), time.time()))

    def doc_insert(self, kind: str, doc_id: str, data: Any) -> bool:
        """Insert unless present; False when the id already exists."""
        with self.write() as c:
            cur = c.execute("INSERT OR IGNORE INTO docs(kind, id, data, created) VALUES(?, ?, ?, ?)",
                            (kind, doc_id, json.dumps(data), time.time()))
            return cur.rowcount == 1

    def doc_delete(self, kind: str, doc_id: str) -> bool:
        with self.write() as c:
            return c.execute("DELETE FROM docs WHERE kind=? AND id=?", (kind, doc_id)).rowcount > 0

    def doc_move(self, kind: str, doc_id: str, new_kind: str, data: Any = None) -> bool:
        """Re-file a document under another kind (IMS soft delete), optionally replacing it."""
        with self.write() as c:
            row = c.execute("SELECT data, created FROM docs WHERE kind=? AND id=?", (kind, doc_id)).fetchone()
            if not row:
                return False
            c.execute("DELETE FROM docs WHERE kind=? AND id=?", (kind, doc_id))
            body = row[0] if data is None else json.dumps(data)
            c.execute("INSERT OR REPLACE INTO docs(kind, id, data, created) VALUES(?, ?, ?, ?)",
                      (new_kind, doc_id, body, row[1]))
            return True
