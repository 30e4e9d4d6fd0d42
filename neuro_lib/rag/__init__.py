"""Retrieval-augmented generation (issue 14; NanoRAG's retrieval half, seeds/nanorag.md).

passages.py (chunks with ids and byte offsets) -> questions.py (generated from the docs,
held out by section) -> bm25.py / dense.py / fusion.py (retrievers, one `search` interface)
-> index.py (build, save, reload) -> lite.py / reader.py (extractive rules, LM reader) ->
metrics.py -> experiment.py (what `neuro bench rag` and notebook 09 run).

    neuro rag index --corpus stdlib-docs --out runs/idx && neuro rag ask runs/idx "question"
    pytest tests/test_rag.py
"""
