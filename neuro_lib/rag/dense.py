"""Dense retrieval: a small bi-encoder trained here, searched exactly or through faiss.

No pretrained encoder can be downloaded, so the encoder is trained on the corpus: a
hashed bag of features (lower-cased words, word bigrams, character trigrams, stop words
dropped; DSSM, Huang et al. 2013; fastText's hashing trick) mean-pooled by an
EmbeddingBag, then a linear map that starts as the identity, and L2 normalisation. One
tower encodes questions and passages (siamese).
Training pairs are the generated training-split questions with their gold passage, plus
inverse-cloze pairs (Lee et al. 2019: a passage's section name + one of its sentences
as the query) for every passage of a training section; the loss is symmetric InfoNCE
with in-batch negatives (each batch holds distinct passages). The shared Trainer runs
the loop, so budgets are in optimiser steps.

Search backends behind one interface, `search(queries, k) -> (indices, scores)`:
"exact" (a matrix product over all passage vectors) and "faiss" (an HNSW graph,
faiss.IndexHNSWFlat with inner product; approximate, recall against exact is measured by
`neuro bench rag`).

Tests: tests/test_rag.py (exact top-k equals a brute-force sort; faiss agrees with exact
on a small set; training lowers the contrastive loss).
"""
from __future__ import annotations

import json
import re
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bm25s.stopwords import STOPWORDS_EN

from neuro_lib.progress import Progress

_WORD = re.compile(r"\w+")
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 64


@dataclass
class EncoderConfig:
    buckets: int = 1 << 16     # hashed feature vocabulary
    dim: int = 64              # embedding width
    temperature: float = 0.05  # InfoNCE softmax temperature


def features(text: str, buckets: int) -> np.ndarray:
    """Hashed ids of the words, word bigrams and character trigrams of text, English stop words left out
    (crc32: stable across runs)."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS_EN]  # "the" would dominate the mean
    feats = [f"w:{w}" for w in words]
    feats += [f"b:{a}_{b}" for a, b in zip(words, words[1:])]
    feats += [f"c:{w[i:i + 3]}" for w in (f"#{w}#" for w in words) for i in range(len(w) - 2)]
    ids = [zlib.crc32(f.encode()) % buckets for f in feats] or [0]  # an empty text still gets a vector
    return np.asarray(ids, dtype=np.int64)


def pack(feats: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature arrays -> (flat ids, offsets) for nn.EmbeddingBag."""
    offsets = np.cumsum([0] + [len(f) for f in feats[:-1]])
    return torch.from_numpy(np.concatenate(feats)), torch.from_numpy(offsets.astype(np.int64))


class HashEncoder(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.emb = nn.EmbeddingBag(config.buckets, config.dim, mode="mean")
        self.proj = nn.Linear(config.dim, config.dim)
        nn.init.normal_(self.emb.weight, std=0.1)
        # start as the identity: untrained, the encoder is a random projection of the feature counts, which
        # already ranks by shared features; training refines that metric instead of replacing it
        nn.init.eye_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        # ids (N,) flat feature ids, offsets (B,) -> unit vectors (B, D)
        pooled = self.emb(ids, offsets)  # (B, D)
        return F.normalize(self.proj(pooled), dim=-1)  # (B, D)

    def compute_loss(self, batch: dict):
        q = self(batch["q_ids"], batch["q_off"])  # (B, D)
        p = self(batch["p_ids"], batch["p_off"])  # (B, D)
        logits = q @ p.T / self.config.temperature  # (B, B): the diagonal holds the positives
        labels = torch.arange(q.size(0), device=q.device)
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        acc = (logits.argmax(-1) == labels).float().mean().item()
        return loss, {"nce": loss.item(), "in_batch_acc": acc}

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 256, desc: str | None = None) -> np.ndarray:
        """texts -> float32 unit vectors (N, D)."""
        self.eval()
        device = next(self.parameters()).device
        out = []
        with Progress(len(texts) if desc else None, desc=desc or "", unit="text") as bar:
            for i in range(0, len(texts), batch_size):
                ids, off = pack([features(t, self.config.buckets) for t in texts[i:i + batch_size]])
                out.append(self(ids.to(device), off.to(device)).float().cpu().numpy())
                if desc:
                    bar.update(len(texts[i:i + batch_size]))
        return np.concatenate(out) if out else np.zeros((0, self.config.dim), np.float32)


def contrastive_batches(encoder: HashEncoder, docs: list[str], pairs: list[tuple[str, int]],
                        batch_size: int, seed: int):
    """batches(step) for the Trainer: `batch_size` (query, passage) pairs with distinct passages.
    `pairs` are (query text, passage index); deterministic in (seed, step)."""
    doc_feats: dict[int, np.ndarray] = {}

    def doc(i):
        if i not in doc_feats:
            doc_feats[i] = features(docs[i], encoder.config.buckets)
        return doc_feats[i]

    def batches(step: int) -> dict:
        rng = np.random.default_rng([seed, step])
        chosen, used = [], set()
        for j in rng.permutation(len(pairs)):
            if pairs[j][1] not in used:
                used.add(pairs[j][1])
                chosen.append(pairs[j])
                if len(chosen) == batch_size:
                    break
        q_ids, q_off = pack([features(q, encoder.config.buckets) for q, _ in chosen])
        p_ids, p_off = pack([doc(i) for _, i in chosen])
        return {"tokens": q_ids, "q_ids": q_ids, "q_off": q_off, "p_ids": p_ids, "p_off": p_off}

    return batches


class DenseRetriever:
    """Passage vectors + the encoder; backend "exact" or "faiss" (HNSW)."""

    def __init__(self, encoder: HashEncoder, vectors: np.ndarray, backend: str = "exact", faiss_index=None):
        if backend not in ("exact", "faiss"):
            raise ValueError(f"backend must be exact or faiss, got {backend!r}")
        self.encoder, self.vectors, self.backend = encoder, vectors, backend
        self.faiss_index = faiss_index
        if backend == "faiss" and faiss_index is None:
            self.faiss_index = build_hnsw(vectors)
        self.name = "dense" if backend == "exact" else "dense-faiss"

    def with_backend(self, backend: str) -> "DenseRetriever":
        return DenseRetriever(self.encoder, self.vectors, backend, self.faiss_index)

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """-> (doc indices (Q, k), cosine scores (Q, k)), best first."""
        q = self.encoder.encode(queries)
        k = min(k, len(self.vectors))
        if self.backend == "faiss":
            scores, idx = self.faiss_index.search(np.ascontiguousarray(q, dtype=np.float32), k)
            return idx.astype(np.int64), scores.astype(np.float32)
        return exact_topk(q, self.vectors, k)

    def save(self, path) -> None:
        import faiss
        from safetensors.torch import save_model

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_model(self.encoder, str(path / "encoder.safetensors"))
        (path / "encoder.json").write_text(json.dumps(asdict(self.encoder.config)))
        np.save(path / "vectors.npy", self.vectors)
        if self.faiss_index is None:
            self.faiss_index = build_hnsw(self.vectors)
        faiss.write_index(self.faiss_index, str(path / "hnsw.faiss"))

    @classmethod
    def load(cls, path, backend: str = "exact") -> "DenseRetriever":
        import faiss
        from safetensors.torch import load_model

        path = Path(path)
        encoder = HashEncoder(EncoderConfig(**json.loads((path / "encoder.json").read_text())))
        load_model(encoder, str(path / "encoder.safetensors"))
        index = faiss.read_index(str(path / "hnsw.faiss"))
        index.hnsw.efSearch = HNSW_EF_SEARCH
        return cls(encoder.eval(), np.load(path / "vectors.npy"), backend, index)



def exact_topk(q: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force inner-product top-k: (Q, D) x (N, D) -> (indices, scores) (Q, k), best first.
    torch rather than numpy: it keeps to torch's thread count (numpy's BLAS may spin up its own threads)."""
    scores = torch.from_numpy(np.ascontiguousarray(q)) @ torch.from_numpy(vectors).T  # (Q, N)
    top = torch.topk(scores, k, dim=1)  # sorted, best first
    return top.indices.numpy().astype(np.int64), top.values.numpy().astype(np.float32)


def build_hnsw(vectors: np.ndarray):
    """An HNSW graph over unit vectors with inner-product (= cosine) scoring."""
    import faiss

    index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.efSearch = HNSW_EF_SEARCH
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index
