"""Synthetic tasks for Aeron's learning modules (bench/aeron_modules/{ewc,uncertainty,badge,vision}.py).

- `majority_task(task, n, seed)`: token sequences (n, length) and a class in 0..3: the group that occurs most
  often. Task "A" draws ids from the lower half of `vocab` grouped by `id % 4`; task "B" from the upper half,
  grouped in four contiguous blocks. One network can hold both (the inputs tell them apart), but training on B
  alone moves the shared weights A relies on (the continual-learning test). Sequences whose top count is tied
  are redrawn: every label is unique.
- `digits()`: scikit-learn's bundled 8x8 handwritten digits (1,797 images, UCI) as (N, 1, 8, 8) floats in
  [0, 1] and labels; `digits_split()` a fixed stratified train/test split of them.
- `shifted(images, noise, seed)`: the distribution-shifted test inputs: Gaussian pixel noise, clipped to [0, 1].
- `digit_qa(images, labels, n, seed)`: multi-digit pictures (n_digits digits side by side, (n, 1, 8, 8*n_digits))
  with a question about them and its answer, as byte ids: "which number is shown?" -> "37",
  "which digit is on the left?" -> "3", "what is the sum of the digits?" -> "10". Answers end in "\\n".

    x, y = majority_task("A", 512, seed=0)
    images, labels = digits(); tr, te = digits_split()
    qa = digit_qa(images[te], labels[te], 256, seed=1)   # dict of tensors, see the function
Tests: tests/test_aeron_learn.py.
"""
from __future__ import annotations

import random
from functools import lru_cache

import numpy as np
import torch

N_GROUPS = 4
QUESTIONS = {"number": "which number is shown?", "left": "which digit is on the left?",
             "sum": "what is the sum of the digits?"}
BOS, EOS, PAD = 2, ord("\n"), 0  # decoder start (STX), answer end, source padding


def majority_task(task: str, n: int, seed: int = 0, vocab: int = 32, length: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """(x (n, length) int64 ids in [0, vocab), y (n,) int64 in [0, 4))."""
    if task not in ("A", "B"):
        raise ValueError(f"task must be 'A' or 'B', got {task!r}")
    if vocab % (2 * N_GROUPS):
        raise ValueError(f"vocab must be a multiple of {2 * N_GROUPS}, got {vocab}")
    rng = np.random.default_rng([seed, ord(task)])
    half = vocab // 2
    xs, ys = [], []
    while len(xs) < n:
        if task == "A":  # ids in the lower half, grouped by id % 4
            x = rng.integers(0, half, size=(2 * n, length))
            g = x % N_GROUPS
        else:            # ids in the upper half, grouped in contiguous blocks
            x = rng.integers(half, vocab, size=(2 * n, length))
            g = (x - half) // (half // N_GROUPS)
        counts = np.stack([(g == k).sum(1) for k in range(N_GROUPS)], 1)  # (2n, 4)
        top = counts.max(1, keepdims=True)
        unique = (counts == top).sum(1) == 1
        xs.extend(x[unique])
        ys.extend(counts[unique].argmax(1))
    return torch.tensor(np.array(xs[:n])), torch.tensor(np.array(ys[:n]))


@lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return (torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0,  # (N, 1, 8, 8), pixels 0..16 -> [0, 1]
            torch.tensor(d.target, dtype=torch.int64))


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits: images (1797, 1, 8, 8) in [0, 1], labels (1797,)."""
    images, labels = _digits()
    return images.clone(), labels.clone()


def digits_split(test_fraction: float = 0.33, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed stratified split of the digits -> (train indices, test indices)."""
    from sklearn.model_selection import train_test_split

    labels = _digits()[1].numpy()
    tr, te = train_test_split(np.arange(len(labels)), test_size=test_fraction, random_state=seed, stratify=labels)
    return torch.tensor(np.sort(tr)), torch.tensor(np.sort(te))


def shifted(images: torch.Tensor, noise: float, seed: int = 0) -> torch.Tensor:
    """images + N(0, noise^2) per pixel, clipped to [0, 1]: inputs the model never saw in training."""
    g = torch.Generator().manual_seed(seed)
    return (images + noise * torch.randn(images.shape, generator=g)).clamp(0.0, 1.0)


def _bytes(texts: list[str], length: int, pad: int) -> torch.Tensor:
    out = torch.full((len(texts), length), pad, dtype=torch.int64)
    for i, t in enumerate(texts):
        b = list(t.encode())
        out[i, :len(b)] = torch.tensor(b)
    return out


def answer(kind: str, digits_shown: list[int]) -> str:
    """The answer text (without the end byte) to question `kind` about digits read left to right."""
    if kind == "number":
        return "".join(str(d) for d in digits_shown)
    if kind == "left":
        return str(digits_shown[0])
    if kind == "sum":
        return str(sum(digits_shown))
    raise ValueError(f"unknown question kind {kind!r}; choose one of {sorted(QUESTIONS)}")


def digit_qa(images: torch.Tensor, labels: torch.Tensor, n: int, seed: int = 0, n_digits: int = 2,
             kinds: tuple = tuple(QUESTIONS)) -> dict:
    """n questions about pictures composed of n_digits random digits drawn from (images, labels) ->
    {"images" (n, 1, 8, 8*n_digits), "src" (n, S) question bytes padded with 0, "src_mask" (n, S) bool,
     "tokens" (n, T) BOS + answer bytes, "targets" (n, T) answer bytes + EOS, "loss_mask" (n, T),
     "kind" [n] question kinds, "answer" [n] answer texts}."""
    g = torch.Generator().manual_seed(seed)
    pick = torch.randint(0, len(labels), (n, n_digits), generator=g)            # (n, d)
    kind_ids = torch.randint(0, len(kinds), (n,), generator=g)
    pics = torch.cat([images[pick[:, j]] for j in range(n_digits)], dim=-1)     # (n, 1, 8, 8*d)
    kind = [kinds[k] for k in kind_ids.tolist()]
    ans = [answer(k, labels[p].tolist()) for k, p in zip(kind, pick)]
    q = [QUESTIONS[k] for k in kind]
    S = max(len(t) for t in QUESTIONS.values())
    T = max(len(a) for a in ans) + 1
    src = _bytes(q, S, PAD)
    targets = _bytes([a + "\n" for a in ans], T, PAD)
    tokens = torch.cat([torch.full((n, 1), BOS), targets[:, :-1]], 1)  # teacher forcing: shifted right
    loss_mask = torch.zeros(n, T)
    for i, a in enumerate(ans):
        loss_mask[i, : len(a) + 1] = 1.0
    return {"images": pics, "src": src, "src_mask": src != PAD, "tokens": tokens, "targets": targets,
            "loss_mask": loss_mask, "kind": kind, "answer": ans}


def batch_indices(rng: random.Random, n: int, batch_size: int) -> torch.Tensor:
    """min(batch_size, n) indices into n examples drawn with replacement from `rng` (the training loop's data
    rng, seeded per run, so both arms of an experiment see the same batches)."""
    return torch.tensor([rng.randrange(n) for _ in range(min(batch_size, n))])
