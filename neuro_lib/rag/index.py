"""A RAG index on disk: passages, generated questions, BM25, the dense encoder and its vectors.

    idx = build_index(load_corpus("stdlib-docs"), get_profile("smoke").tasks.rag)
    idx.save("runs/idx"); idx = load_index("runs/idx")
    ids, scores = idx.retriever("hybrid").search(["which exception is raised if ..."], k=5)

Directory layout:

    index.json        format, corpus spec + sha256, sizes, build seconds per stage
    passages.jsonl    id, section, start, end (byte offsets into the corpus)
    questions.jsonl   the generated questions (train/test split by section)
    bm25/             bm25s's own files
    dense/            encoder.safetensors + encoder.json, vectors.npy, hnsw.faiss

The corpus text itself is not copied: loading re-reads the corpus named in index.json
and refuses one whose bytes changed (sha256), and `load_index(path, corpus=SPEC)` refuses
an index built on another corpus, each with one sentence (NeuroError). Saving writes a
temporary directory and renames it, so a failed build leaves nothing behind.

Tests: tests/test_rag.py (save/load round-trip gives the same rankings; the refusals).
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from neuro_lib.data.corpus import Corpus, load_corpus
from neuro_lib.errors import NeuroError
from neuro_lib.memlimit import check_fits
from neuro_lib.profiles import RagSizes
from neuro_lib.progress import Progress
from neuro_lib.rag.bm25 import BM25Retriever
from neuro_lib.rag.dense import DenseRetriever, EncoderConfig, HashEncoder, contrastive_batches
from neuro_lib.rag.fusion import HybridRetriever
from neuro_lib.rag.names import NamedRetriever, NameTable
from neuro_lib.rag.passages import Passage, chunk_corpus, sentences
from neuro_lib.rag.questions import Question, generate_questions, section_split
from neuro_lib.tokenizers import ByteTokenizer
from neuro_lib.train.trainer import TrainConfig, Trainer

FORMAT = 1
RETRIEVERS = ("bm25", "names", "dense", "dense-faiss", "hybrid")


@dataclass
class RagIndex:
    corpus: Corpus
    passages: list[Passage]
    questions: list[Question]
    bm25: BM25Retriever
    dense: DenseRetriever
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.by_id = {p.id: i for i, p in enumerate(self.passages)}
        self.names = NameTable(self.passages)

    def doc(self, i: int) -> str:
        """What the retrievers index: section name, the title where there is one, the passage text."""
        return indexed_text(self.corpus.data, self.passages[i])

    def retriever(self, name: str):
        if name == "bm25":
            return self.bm25
        if name == "names":
            return NamedRetriever(self.bm25, self.names)
        if name == "dense":
            return self.dense
        if name == "dense-faiss":
            return self.dense.with_backend("faiss")
        if name == "hybrid":
            return HybridRetriever([self.bm25, self.dense])
        raise NeuroError(f"unknown retriever {name!r}; choose one of {', '.join(RETRIEVERS)}")

    def save(self, path) -> Path:
        path = Path(path)
        if path.exists():
            raise NeuroError(f"{path} already exists; choose a new directory for the index")
        tmp = path.with_name(path.name + ".building")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            (tmp / "passages.jsonl").write_text("".join(json.dumps(p.to_dict()) + "\n" for p in self.passages))
            (tmp / "questions.jsonl").write_text("".join(json.dumps(q.to_dict()) + "\n" for q in self.questions))
            self.bm25.save(tmp / "bm25")
            self.dense.save(tmp / "dense")
            (tmp / "index.json").write_text(json.dumps(self.meta, indent=2))
            tmp.rename(path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path


def indexed_text(data: bytes, p: Passage) -> str:
    """Section name, the title where there is one (the object documented), newline, the passage text."""
    head = f"{p.section}\n{p.title}" if p.title else p.section
    return f"{head}\n{p.text(data)}"


def ict_pairs(corpus: Corpus, passages: list[Passage], train_sections: set[str]) -> list[tuple[str, int]]:
    """Inverse-cloze pairs: (section name + one sentence of a passage, that passage's index)."""
    out = []
    for i, p in enumerate(passages):
        if p.section not in train_sections:
            continue
        for s, e in sentences(corpus.data, p.start, p.end):
            if e - s >= 30:  # a fragment like "Example:" identifies nothing
                out.append((f"{p.section} " + corpus.data[s:e].decode("utf-8", errors="replace"), i))
    return out


def train_encoder(corpus: Corpus, passages: list[Passage], questions: list[Question], sizes: RagSizes,
                  seed: int = 0, callback=None) -> tuple[HashEncoder, list[dict]]:
    """The dense encoder trained on training-split questions + inverse-cloze pairs of training sections."""
    torch.manual_seed(seed)
    encoder = HashEncoder(EncoderConfig(**sizes.encoder))
    by_id = {p.id: i for i, p in enumerate(passages)}
    train_sections = {p.section for p in passages if section_split(p.section, sizes.test_fraction) == "train"}
    q_pairs = [(q.text, by_id[q.passage_id]) for q in questions if q.split == "train"]
    pairs = q_pairs * sizes.question_repeat + ict_pairs(corpus, passages, train_sections)
    docs = [indexed_text(corpus.data, p) for p in passages]
    config = TrainConfig(batch_size=sizes.encoder_batch, block_size=1, lr=sizes.encoder_lr, warmup_steps=10,
                         weight_decay=0.0, max_steps=sizes.encoder_steps, eval_every=0, log_every=10, seed=seed)
    trainer = Trainer(encoder, ByteTokenizer(), config, contrastive_batches(encoder, docs, pairs, config.batch_size,
                                                                             seed))
    history = trainer.fit(callback=callback)
    return encoder.eval(), history


def build_index(corpus: Corpus, sizes: RagSizes, seed: int = 0, callback=None, tokenizer: str | None = None) -> RagIndex:
    """Chunk, generate questions, index BM25, train and apply the encoder, build the HNSW graph. BM25's tokenizer
    (bm25.TOKENIZERS) defaults to "names" on a corpus whose passages carry titles (stdlib-api), else "words"."""
    seconds = {}
    t0 = time.perf_counter()
    passages = chunk_corpus(corpus, sizes.chunk_bytes)
    if not passages:
        raise NeuroError(f"corpus {corpus.spec!r} has no text to index")
    questions = generate_questions(corpus, passages, sizes.test_fraction)
    seconds["chunk_and_questions"] = time.perf_counter() - t0
    docs = [indexed_text(corpus.data, p) for p in passages]
    tokenizer = tokenizer or ("names" if any(p.title for p in passages) else "words")
    with Progress(4, desc="rag index", unit="stage", every_s=0) as bar:
        t0 = time.perf_counter()
        bm25 = BM25Retriever.build(docs, tokenizer=tokenizer)
        seconds["bm25"] = time.perf_counter() - t0
        bar.update(1, stage="bm25")
        t0 = time.perf_counter()
        encoder, history = train_encoder(corpus, passages, questions, sizes, seed, callback)
        seconds["encoder_training"] = time.perf_counter() - t0
        bar.update(1, stage="encoder")
        t0 = time.perf_counter()
        vectors = encoder.encode(docs, desc="encode passages")
        seconds["encode"] = time.perf_counter() - t0
        bar.update(1, stage="encode")
        t0 = time.perf_counter()
        dense = DenseRetriever(encoder, vectors, "faiss")
        seconds["hnsw"] = time.perf_counter() - t0
        bar.update(1, stage="hnsw")
    meta = {"format": FORMAT, "kind": "neuro-rag-index", "corpus": corpus.spec, "corpus_sha256": corpus.sha256,
            "n_passages": len(passages), "n_questions": len(questions), "sizes": asdict(sizes), "seed": seed,
            "bm25_tokenizer": tokenizer,
            "build_seconds": {k: round(v, 3) for k, v in seconds.items()},
            "encoder_final": next((r for r in reversed(history) if r.get("kind") == "train"), {})}
    return RagIndex(corpus, passages, questions, bm25, dense.with_backend("exact"), meta)


def load_index(path, corpus: str | None = None) -> RagIndex:
    """Reload an index; refuses a missing index, another corpus, or a corpus whose bytes changed, and any
    missing, corrupt or inconsistent part (passages, questions, BM25, encoder, vectors, HNSW) in one sentence."""
    path = Path(path)
    meta_path = path / "index.json"
    if not meta_path.is_file():
        raise NeuroError(f"{path} is not a RAG index (no index.json); build one with neuro rag index")
    meta = _part(path, "index.json", lambda: json.loads(meta_path.read_text()))
    if not isinstance(meta, dict) or meta.get("kind") != "neuro-rag-index" or meta.get("format") != FORMAT:
        raise NeuroError(f"{path} is not a neuro_lib RAG index of format {FORMAT}")
    if not isinstance(meta.get("corpus"), str) or not isinstance(meta.get("corpus_sha256"), str):
        raise NeuroError(f"{meta_path} is corrupt (needs 'corpus' and 'corpus_sha256')")
    if corpus is not None and corpus != meta["corpus"]:
        raise NeuroError(f"index {path} was built on corpus {meta['corpus']!r}, not {corpus!r}; "
                         f"build another index with --corpus {corpus}")
    text = load_corpus(meta["corpus"])
    if text.sha256 != meta["corpus_sha256"]:
        raise NeuroError(f"corpus {meta['corpus']!r} has changed since index {path} was built; rebuild the index")
    check_fits(index_size_bytes(path)["total"], f"index {path}")  # what is read below, before reading it
    passages = _part(path, "passages.jsonl", lambda: _records(path / "passages.jsonl", Passage))
    questions = _part(path, "questions.jsonl", lambda: _records(path / "questions.jsonl", Question))
    bm25 = _part(path, "bm25/", lambda: BM25Retriever.load(path / "bm25", len(passages)))
    dense = _part(path, "dense/", lambda: DenseRetriever.load(path / "dense"))
    ids = {p.id for p in passages}
    problems = [
        (not passages, "passages.jsonl holds no passage"),
        (any(not 0 <= p.start <= p.end <= len(text.data) for p in passages), "a passage lies outside the corpus"),
        (any(q.passage_id not in ids for q in questions), "a question names a passage the index lacks"),
        (_bm25_docs(bm25) != len(passages), "bm25/ indexes another number of passages"),
        (dense.vectors.ndim != 2 or len(dense.vectors) != len(passages), "dense/vectors.npy has another shape"),
        (dense.vectors.ndim == 2 and dense.vectors.shape[1] != dense.encoder.config.dim,
         "dense/vectors.npy does not match the encoder's width"),
        (dense.faiss_index is not None and dense.faiss_index.ntotal != len(passages),
         "dense/hnsw.faiss holds another number of vectors"),
    ]
    bad = next((why for broken, why in problems if broken), None)
    if bad:
        raise NeuroError(f"index {path} is inconsistent ({bad}); rebuild it with neuro rag index")
    return RagIndex(text, passages, questions, bm25, dense, meta)


def _records(file: Path, cls) -> list:
    """One dataclass per JSON line; a field of the wrong type is an error, not a later crash."""
    out = []
    for line in file.read_text().splitlines():
        rec = cls(**json.loads(line))
        for f in fields(cls):
            if not isinstance(getattr(rec, f.name), f.type if isinstance(f.type, type) else _TYPES[f.type]):
                raise TypeError(f"{f.name} is not {f.type}")
        out.append(rec)
    return out


_TYPES = {"str": str, "int": int}  # dataclass field annotations as strings (from __future__ import annotations)


def _bm25_docs(bm25: BM25Retriever) -> int:
    """The number of documents bm25s indexed (recorded in its params.index.json, loaded into scores)."""
    return bm25.model.scores.get("num_docs", -1)


def _part(path: Path, what: str, load):
    """Load one part of the index at `path`; whatever goes wrong inside is one sentence naming the part."""
    try:
        return load()
    except NeuroError:
        raise
    except Exception as e:  # json, numpy, safetensors, bm25s and faiss raise many types on a bad file
        raise NeuroError(f"index {path} is corrupt or incomplete: {what} is missing or unreadable "
                         f"({type(e).__name__}); rebuild it with neuro rag index") from None


def index_size_bytes(path) -> dict:
    """Bytes on disk per part of a saved index (and the total)."""
    path = Path(path)
    parts = {p.name: sum(f.stat().st_size for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
             for p in path.iterdir()}
    return {**parts, "total": sum(parts.values())}
