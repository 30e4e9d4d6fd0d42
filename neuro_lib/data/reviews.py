"""Short restaurant reviews with a computable true reward: the alignment task of rlhf/ (notebook 10).

A miniature of the DPO paper's controlled sentiment generation (Rafailov et al. 2023, IMDb prefixes
and a sentiment classifier as the true reward): the prompt is the opening of a review ("the soup
was"), the completion the rest up to the end of line, and the true reward is a sentiment lexicon
score of the completion: +1 per positive word, -1 per negative word (neutral words 0). The
fine-tuning corpus draws its adjectives uniformly from the three lists, so the fine-tuned policy
writes reviews of every mood (mean true reward about 0) and alignment has room to move it.

    lines = review_lines(1000, seed=0)            # b"the soup was cold but the staff were friendly.\\n", ...
    prompts = review_prompts(16, seed=1)          # b"the soup was", ...
    true_reward(b" great and the view was lovely.")    # 2.0

Tests: tests/test_rlhf.py.
"""
from __future__ import annotations

import random
import re

NOUNS = ["food", "soup", "pasta", "bread", "coffee", "service", "room", "view", "music", "wine", "pizza", "salad"]
PEOPLE = ["staff", "waiters", "owners", "cooks"]
POSITIVE = ["great", "good", "lovely", "friendly", "excellent", "fresh", "tasty", "superb", "warm", "perfect"]
NEGATIVE = ["bad", "awful", "cold", "rude", "dirty", "bland", "slow", "terrible", "stale", "noisy"]
NEUTRAL = ["plain", "average", "usual", "small", "simple", "normal", "quiet", "brief"]
ADJECTIVES = POSITIVE + NEGATIVE + NEUTRAL
END = b"\n"  # a review ends at the end of its line: the end token
TEMPLATES = ["the {n} was {a}.", "the {n} was {a} and the {m} was {b}.", "the {n} was {a} but the {p} were {b}.",
             "the {n} was {a}, {b} and {c}.", "the {n} was {a} and {b}.", "the {n} was very {a}, the {p} were {b}."]
WORD = re.compile(rb"[a-z]+")
_LEX = {w.encode(): 1.0 for w in POSITIVE} | {w.encode(): -1.0 for w in NEGATIVE}


def review_line(rng: random.Random) -> bytes:
    t = rng.choice(TEMPLATES)
    a, b, c = (rng.choice(ADJECTIVES) for _ in range(3))
    return (t.format(n=rng.choice(NOUNS), m=rng.choice(NOUNS), p=rng.choice(PEOPLE), a=a, b=b, c=c) + "\n").encode()


def review_lines(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [review_line(rng) for _ in range(n)]


def split_review(line: bytes) -> tuple[bytes, bytes]:
    """A review line -> (prompt "the N was", completion " ... .\\n")."""
    head, _, rest = line.partition(b" was")
    return head + b" was", rest


def review_prompts(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [f"the {rng.choice(NOUNS)} was".encode() for _ in range(n)]


def true_reward(completion: bytes) -> float:
    """Lexicon sentiment of a completion: +1 per positive word, -1 per negative word."""
    return float(sum(_LEX.get(w, 0.0) for w in WORD.findall(completion.lower())))
