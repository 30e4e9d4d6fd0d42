"""Runtime memory (neuro_lib/runtime/memory.py): the conversation window, BM25 recall from SQLite FTS5
(cross-checked against bm25s's ranking), results kept across a process restart, and several processes
writing at once."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from neuro_lib.errors import NeuroError
from neuro_lib.runtime.memory import LongTermMemory, Memory, ShortTermMemory, normalise
from neuro_lib.runtime.types import ExpertAnswer, Query

FACTS = ["the sandbox runs python code with no network access",
         "the calculator evaluates arithmetic expressions safely",
         "gzip raises an exception when the file object has no fileno",
         "the router sends compound queries to several experts",
         "struct mini writes json documents under a schema",
         "retrieval answers cite passages with byte spans"]


def _py(code: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_short_term_window_keeps_the_last_turns_in_order():
    st = ShortTermMemory(window=3)
    for i in range(5):
        st.add("user" if i % 2 == 0 else "assistant", f"turn {i}")
    assert [t["text"] for t in st.turns()] == ["turn 2", "turn 3", "turn 4"]
    st.clear()
    assert st.turns() == []
    with pytest.raises(NeuroError, match="at least one turn"):
        ShortTermMemory(window=0)


def test_search_ranks_by_relevance_like_bm25s():
    """FTS5's bm25() and bm25s (Lucene variant) agree on the best match for each query."""
    import bm25s

    lt = LongTermMemory()
    for f in FACTS:
        lt.add_fact(f)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(FACTS, stopwords=None, show_progress=False), show_progress=False)
    for q in ["which exception does gzip raise", "network in the sandbox", "json schema", "byte spans of passages",
              "compound queries"]:
        ours = lt.search(q, k=3)
        docs, _ = retriever.retrieve(bm25s.tokenize([q], stopwords=None, show_progress=False), k=1,
                                     show_progress=False)
        assert ours[0]["text"] == FACTS[int(docs[0, 0])], q
        assert [m["score"] for m in ours] == sorted((m["score"] for m in ours), reverse=True)
    assert lt.search("", k=3) == [] and lt.search("zebra quantum", k=3) == []
    assert lt.search('"; DROP TABLE memories; --', k=3) == [] and lt.count() == len(FACTS)  # quoted, not SQL
    assert {m["kind"] for m in lt.search("the", k=10, kind="fact")} == {"fact"}


def test_results_and_exact_lookup():
    mem = Memory()
    mem.write(Query("What is 2 + 3?"), ExpertAnswer("5", value=5), passed=True)
    mem.write(Query("what is 7 * 6"), ExpertAnswer("41", value=41), passed=False)
    items, hit = mem.recall(Query("what is 2+3"))
    assert hit == {"id": 1, "text": "5", "value": 5, "citations": []}
    assert items[0]["role"] == "memory" and "5" in items[0]["text"]
    assert mem.recall(Query("what is 7 * 6"))[1] is None  # a failed answer is recalled as context, never reused
    assert mem.recall(Query("what is 2 + 3", wants_json=True, schema_id="x"))[1] is None
    assert normalise("  What IS 2+3 ?! ") == "what is 2 3"
    with pytest.raises(NeuroError, match="must not be empty"):
        mem.long.add_fact("   ")


def test_memory_survives_a_process_restart(tmp_path):
    db = tmp_path / "mem" / "memory.sqlite"
    write = _py("""
        import sys
        from neuro_lib.runtime.memory import Memory
        from neuro_lib.runtime.types import ExpertAnswer, Query
        m = Memory(sys.argv[1])
        m.long.add_fact("the kettle in the kitchen is blue")
        m.write(Query("what is 17 * 23 + 4?"), ExpertAnswer("395", value=395), passed=True)
        print(m.long.count())
    """, db)
    assert write.returncode == 0, write.stderr
    assert write.stdout.strip() == "2"
    read = _py("""
        import json, sys
        from neuro_lib.runtime.memory import Memory
        from neuro_lib.runtime.types import Query
        m = Memory(sys.argv[1])
        items, hit = m.recall(Query("What is 17*23+4"))
        print(json.dumps({"fact": m.long.search("blue kettle", k=1)[0]["text"], "hit": hit}))
    """, db)
    assert read.returncode == 0, read.stderr
    out = json.loads(read.stdout)
    assert out == {"fact": "the kettle in the kitchen is blue", "hit": {"id": 2, "text": "395", "value": 395,
                                                                          "citations": []}}
    assert LongTermMemory(db).count() == 2  # and this process sees it too


def test_concurrent_writers_lose_nothing(tmp_path):
    db = tmp_path / "shared.sqlite"
    writer = textwrap.dedent("""
        import sys
        from neuro_lib.runtime.memory import LongTermMemory
        lt = LongTermMemory(sys.argv[1])
        for i in range(int(sys.argv[3])):
            lt.add_fact(f"writer {sys.argv[2]} fact {i} about turtles")
    """)
    n_proc, n_rows = 4, 40
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(db), str(w), str(n_rows)], stderr=subprocess.PIPE,
                              text=True) for w in range(n_proc)]
    errors = [p.communicate(timeout=180)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    lt = LongTermMemory(db)
    assert lt.count() == n_proc * n_rows
    pids = {r[0] for r in lt.conn.execute("SELECT DISTINCT pid FROM memories")}
    assert len(pids) == n_proc
    # the full-text index saw every row too
    assert lt.conn.execute("SELECT COUNT(*) FROM memories_fts WHERE memories_fts MATCH 'turtles'").fetchone()[0] \
        == n_proc * n_rows
    assert lt.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert lt.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_bad_memory_paths(tmp_path):
    with pytest.raises(NeuroError, match="is a directory"):
        LongTermMemory(tmp_path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database, just bytes " * 200)
    with pytest.raises(NeuroError, match="cannot be used"):
        LongTermMemory(junk)
    assert junk.read_bytes().startswith(b"this is not a database")  # a failed open changes nothing on disk
