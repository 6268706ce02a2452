"""The local KMS's state in SQLite: keys (with their material and policy) and aliases.

One connection, shared by the server's threads under a lock: SQLite
serialises writers anyway, and every statement here takes microseconds. A
file database is created with mode 0600 (it holds key material in the clear)
and runs in WAL mode, so that a crash loses nothing committed and a restart
on the same file finds every key.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass

from ..errors import ConfigurationError

_SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    material BLOB NOT NULL,
    created REAL NOT NULL,
    description TEXT NOT NULL,
    state TEXT NOT NULL,
    deletion_date REAL,
    policy TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS aliases (
    name TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES keys(id),
    created REAL NOT NULL
);
"""
_KEY_COLUMNS = "id, material, created, description, state, deletion_date, policy"


@dataclass(frozen=True)
class StoredKey:
    """A key as the store holds it. ``material`` never leaves the server."""

    id: str
    material: bytes
    created: float
    description: str
    state: str  # Enabled, Disabled or PendingDeletion
    deletion_date: float | None
    policy: str


@dataclass(frozen=True)
class StoredAlias:
    name: str
    key_id: str
    created: float


class Store:
    """Keys and aliases in SQLite (``path``, or in memory when None), safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str] | None, *, account: str, region: str) -> None:
        if path is None:
            target = ":memory:"
        else:
            target = os.fspath(path)
            try:
                # Created 0600 before SQLite opens it: the file holds key material in the clear.
                os.close(os.open(target, os.O_RDWR | os.O_CREAT, 0o600))
            except OSError as error:
                raise ConfigurationError(f"cannot open the database {target}: {error.strerror or error}") from None
        self._lock = threading.Lock()
        try:
            self._connection = sqlite3.connect(target, check_same_thread=False, isolation_level=None, timeout=10)
            if path is not None:
                self._connection.execute("PRAGMA journal_mode=WAL")
                self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            raise ConfigurationError(f"{target} is not a usable SQLite database: {error}") from None
        self._check_meta(target, {"schema": _SCHEMA_VERSION, "account": account, "region": region})

    def _check_meta(self, target: str, expected: dict[str, str]) -> None:
        with self._lock:
            rows = dict(self._connection.execute("SELECT name, value FROM meta").fetchall())
            for name, value in expected.items():
                if name not in rows:
                    self._connection.execute("INSERT INTO meta VALUES (?, ?)", (name, value))
                elif rows[name] != value:
                    # Key ARNs name the account and region: the same keys under other ones would be other keys.
                    raise ConfigurationError(f"{target} holds the keys of {name} {rows[name]!r}, not {value!r}")

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def add_key(self, key: StoredKey) -> None:
        with self._lock:
            self._connection.execute(
                f"INSERT INTO keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 -- constant columns
                (key.id, key.material, key.created, key.description, key.state, key.deletion_date, key.policy),
            )

    def key(self, key_id: str, now: float) -> StoredKey | None:
        """The key ``key_id``, or None; a key whose deletion date has passed is deleted now, as KMS deletes it."""
        with self._lock:
            row = self._connection.execute(
                f"SELECT {_KEY_COLUMNS} FROM keys WHERE id = ?",  # noqa: S608 -- constant columns
                (key_id,),
            ).fetchone()
            if row is None:
                return None
            key = StoredKey(*row)
            if key.deletion_date is not None and key.deletion_date <= now:
                self._connection.execute("BEGIN IMMEDIATE")
                self._connection.execute("DELETE FROM aliases WHERE key_id = ?", (key_id,))
                self._connection.execute("DELETE FROM keys WHERE id = ?", (key_id,))
                self._connection.execute("COMMIT")
                return None
            return key

    def update_key(self, key_id: str, *, state: str, deletion_date: float | None) -> None:
        with self._lock:
            self._connection.execute(
                "UPDATE keys SET state = ?, deletion_date = ? WHERE id = ?", (state, deletion_date, key_id)
            )

    def set_policy(self, key_id: str, policy: str) -> None:
        with self._lock:
            self._connection.execute("UPDATE keys SET policy = ? WHERE id = ?", (policy, key_id))

    def key_ids(self, after: str, limit: int) -> list[str]:
        """Up to ``limit`` key ids after ``after`` in id order (pagination by the last id seen)."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT id FROM keys WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            ).fetchall()
        return [row[0] for row in rows]

    def add_alias(self, alias: StoredAlias) -> bool:
        """Adds ``alias``; False when the name is taken."""
        with self._lock:
            try:
                self._connection.execute(
                    "INSERT INTO aliases VALUES (?, ?, ?)", (alias.name, alias.key_id, alias.created)
                )
            except sqlite3.IntegrityError:
                return False
        return True

    def alias(self, name: str) -> StoredAlias | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT name, key_id, created FROM aliases WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else StoredAlias(*row)

    def aliases(self, after: str, limit: int, key_id: str | None) -> list[StoredAlias]:
        """Up to ``limit`` aliases after ``after`` in name order, of ``key_id`` only when given."""
        with self._lock:
            if key_id is None:
                rows = self._connection.execute(
                    "SELECT name, key_id, created FROM aliases WHERE name > ? ORDER BY name LIMIT ?", (after, limit)
                ).fetchall()
            else:
                rows = self._connection.execute(
                    "SELECT name, key_id, created FROM aliases WHERE name > ? AND key_id = ? ORDER BY name LIMIT ?",
                    (after, key_id, limit),
                ).fetchall()
        return [StoredAlias(*row) for row in rows]
