"""Memory for the runtime (TinyLLM's STM/LTM, seeds/tinyllm.md): a short-term conversation window and a
long-term store in SQLite that survives the process and takes several writers at once.

    mem = Memory("data/cache/runtime/memory.sqlite", window=8)
    mem.short.add("user", "what is 2 + 3?")        # the last `window` turns, in order
    mem.long.add_fact("the sandbox has no network")
    mem.long.add_result("what is 2 + 3?", {"text": "5", "value": 5}, ok=True)
    mem.long.search("sandbox network", k=3)         # BM25 over every memory (SQLite FTS5), best first
    mem.long.lookup_result("What is 2+3 ?")         # a past verified result for the same query, or None

Long-term memory is one SQLite file: a `memories` table (facts and past results) with an FTS5 index
kept in step by a trigger, ranked with FTS5's built-in bm25() (Robertson & Zaragoza 2009). The file
is opened in WAL mode with a busy timeout, and every write is one `BEGIN IMMEDIATE` transaction, so
several processes can write at once without "database is locked" errors and readers never block.
A restart reopens the same file and sees everything committed before.

Tests: tests/test_runtime_memory.py (restart in a subprocess, concurrent writer processes).
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections import deque
from pathlib import Path

from neuro_lib.errors import NeuroError
from neuro_lib.paths import check_output
from neuro_lib.runtime.types import ExpertAnswer, Query

_WORD = re.compile(r"\w+", re.UNICODE)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('fact', 'result')),
    text TEXT NOT NULL,              -- what the search sees: the fact, or "question => answer"
    key TEXT,                        -- results: the normalised question, for exact look-ups
    value TEXT,                      -- results: the answer as JSON ({"text", "value", "citations"})
    ok INTEGER NOT NULL DEFAULT 1,   -- results: whether the answer passed its check
    created REAL NOT NULL,
    pid INTEGER NOT NULL             -- the writing process (concurrency tests read it)
);
CREATE INDEX IF NOT EXISTS memories_key ON memories (key);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5 (
    text, content='memories', content_rowid='id', tokenize='porter unicode61');
CREATE TRIGGER IF NOT EXISTS memories_ai AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, text) VALUES (new.id, new.text);
END;
"""


MEMORY_COLUMNS = {"id", "kind", "text", "key", "value", "ok", "created", "pid"}


def normalise(text: str) -> str:
    """The exact-look-up key of a question: lower-case words, punctuation and spacing dropped."""
    return " ".join(_WORD.findall(text.lower()))


class ShortTermMemory:
    """The conversation window: the last `window` turns ({"role", "text"}), oldest first."""

    def __init__(self, window: int = 8):
        if window < 1:
            raise NeuroError(f"the memory window must hold at least one turn, got {window}")
        self.window = window
        self._turns: deque[dict] = deque(maxlen=window)

    def add(self, role: str, text: str) -> None:
        self._turns.append({"role": role, "text": text})

    def turns(self) -> list[dict]:
        return list(self._turns)

    def clear(self) -> None:
        self._turns.clear()


class LongTermMemory:
    """Facts and past results in SQLite, retrieved by BM25 relevance (FTS5)."""

    def __init__(self, path: str | Path = ":memory:", timeout_s: float = 30.0):
        self.path = str(path)
        if self.path != ":memory:":
            p = Path(self.path)
            if p.is_dir():
                raise NeuroError(f"memory path {p} is a directory; give a file name such as {p / 'memory.sqlite'}")
            for f in (p, *(Path(self.path + s) for s in ("-wal", "-shm", "-journal"))):  # SQLite writes these too
                check_output(f, "memory file", exist_ok=True)
            p.parent.mkdir(parents=True, exist_ok=True)
        try:
            # autocommit mode: transactions are the explicit BEGIN IMMEDIATE ... COMMIT below
            self.conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            self._check_foreign()  # read only: a file that is not ours is refused before anything is written
            self.conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")  # one writer creates the tables
            if self.path != ":memory:":  # only once the file is known to be ours: WAL rewrites its header
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable at checkpoints, fast
        except NeuroError:
            self.conn.close()
            raise
        except sqlite3.DatabaseError as e:
            if getattr(self, "conn", None) is not None:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                self.conn.close()
            if "fts5" in str(e).lower():
                raise NeuroError("this Python's sqlite3 has no FTS5, which long-term memory needs") from None
            raise NeuroError(f"memory file {self.path} cannot be used: {e}") from None

    def _check_foreign(self) -> None:
        """Refuse a SQLite file that holds other tables and not ours, or a `memories` table of another shape."""
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "memories" not in tables:
            raise NeuroError(f"memory file {self.path} is a SQLite database of something else (tables "
                             f"{', '.join(sorted(tables)[:3])}); give another file")
        if "memories" in tables:
            columns = {r[1] for r in self.conn.execute("PRAGMA table_info(memories)")}
            if columns != MEMORY_COLUMNS:
                raise NeuroError(f"memory file {self.path} has a memories table of another shape; give another file")

    def _write(self):
        """One write transaction that waits (busy timeout) for other writers instead of failing."""
        conn = self.conn

        class _Tx:
            def __enter__(self):
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type, exc, tb):
                conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
                return False

        return _Tx()

    def _insert(self, kind: str, text: str, key: str | None = None, value=None, ok: bool = True) -> int:
        with self._write():
            cur = self.conn.execute(
                "INSERT INTO memories (kind, text, key, value, ok, created, pid) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kind, text, key, None if value is None else json.dumps(value, ensure_ascii=False, default=str),
                 int(ok), time.time(), os.getpid()))
        return cur.lastrowid

    def add_fact(self, text: str) -> int:
        text = " ".join(text.split())
        if not text:
            raise NeuroError("a fact to remember must not be empty")
        return self._insert("fact", text)

    def add_result(self, question: str, answer: dict, ok: bool) -> int:
        """A past result: the question, the answer ({"text", "value", "citations"}) and whether it passed."""
        return self._insert("result", f"{question} => {answer.get('text', '')}", normalise(question), answer, ok)

    def search(self, text: str, k: int = 3, kind: str | None = None) -> list[dict]:
        """The k memories most relevant to `text` (BM25; any shared word counts), best first."""
        words = list(dict.fromkeys(_WORD.findall(text.lower())))
        if not words or k < 1:
            return []
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        sql = ("SELECT m.id, m.kind, m.text, m.value, m.ok, m.created, -bm25(memories_fts) AS score "
               "FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid WHERE memories_fts MATCH ?"
               + (" AND m.kind = ?" if kind else "") + " ORDER BY bm25(memories_fts) LIMIT ?")
        rows = self.conn.execute(sql, (match, kind, k) if kind else (match, k)).fetchall()
        return [{"id": r[0], "kind": r[1], "text": r[2], "value": json.loads(r[3]) if r[3] else None,
                 "ok": bool(r[4]), "created": r[5], "score": r[6]} for r in rows]

    def lookup_result(self, question: str) -> dict | None:
        """The newest passing result stored for the same (normalised) question."""
        row = self.conn.execute("SELECT id, value FROM memories WHERE kind = 'result' AND ok = 1 AND key = ? "
                                "ORDER BY id DESC LIMIT 1", (normalise(question),)).fetchone()
        return None if row is None else {"id": row[0], **json.loads(row[1])}

    def count(self, kind: str | None = None) -> int:
        sql = "SELECT COUNT(*) FROM memories" + (" WHERE kind = ?" if kind else "")
        return self.conn.execute(sql, (kind,) if kind else ()).fetchone()[0]

    def close(self) -> None:
        self.conn.close()


class Memory:
    """Both memories, as the engine's memory nodes use them."""

    def __init__(self, path: str | Path | None = None, window: int = 8):
        self.short = ShortTermMemory(window)
        self.long = LongTermMemory(path or ":memory:")

    def recall(self, query: Query, k: int = 3) -> tuple[list[dict], dict | None]:
        """(context items {"role": "memory", "text", "id", "score"} for the k most relevant memories,
        a stored passing result for this very question or None)."""
        items = [{"role": "memory", "text": m["text"], "id": m["id"], "score": m["score"]}
                 for m in self.long.search(query.text, k)]
        hit = None if query.wants_json else self.long.lookup_result(query.text)  # JSON answers depend on the schema
        return items, hit

    def write(self, query: Query, answer: ExpertAnswer, passed: bool) -> int:
        return self.long.add_result(query.text, {"text": answer.text, "value": answer.value,
                                                 "citations": answer.citations}, ok=passed and answer.ok)

    def close(self) -> None:
        self.long.close()
