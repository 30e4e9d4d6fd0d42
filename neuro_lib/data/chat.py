"""Synthetic chat data for RNK (seeds/rnk.md): seven intents, answerable and unanswerable
questions, strict `User:` / `Model:` roles, byte sequences padded to chunk boundaries.

    examples = generate_chat(2000, seed=0, split="train")      # list[ChatExample]
    held = generate_chat(500, seed=1, split="heldout")          # unseen phrasings only
    batch = collate_chat(examples[:16], chunk_len=32)           # tensors for RNK.compute_loss
    records = read_chat_jsonl(path)                             # rejects malformed records by number
    build_model("rnk", **model_sizes(), ...)                    # the sizes an RNK needs from this data

Intents: greeting, question, fact, refusal, opinion, identity, math. Facts come from a
fixed knowledge table (KNOWLEDGE: country -> capital, continent); arithmetic answers are
computed; questions about entities not in the table are unanswerable and get a refusal.
Each intent has training templates and held-out templates; the held-out split uses only
the latter, so it measures generalisation to unseen phrasing.

Byte layout of one example (P = chunk_len, PAD = 0):

    "User: <prompt>\n" + PAD to a multiple of P  |  "Model: <reply>\n" + PAD to a multiple of P

The loss covers the reply and its closing newline only (not the prompt, not "Model: ").
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from neuro_lib.errors import NeuroError

INTENTS = ("greeting", "question", "fact", "refusal", "opinion", "identity", "math")
PAD = 0
USER, MODEL = b"User: ", b"Model: "

# The fixed knowledge table: the only facts a reply may state.
KNOWLEDGE = {
    "France": ("Paris", "Europe"), "Spain": ("Madrid", "Europe"), "Italy": ("Rome", "Europe"),
    "Germany": ("Berlin", "Europe"), "Portugal": ("Lisbon", "Europe"), "Greece": ("Athens", "Europe"),
    "Norway": ("Oslo", "Europe"), "Poland": ("Warsaw", "Europe"), "Egypt": ("Cairo", "Africa"),
    "Kenya": ("Nairobi", "Africa"), "Ghana": ("Accra", "Africa"), "Peru": ("Lima", "South America"),
    "Chile": ("Santiago", "South America"), "Brazil": ("Brasilia", "South America"),
    "Canada": ("Ottawa", "North America"), "Mexico": ("Mexico City", "North America"),
    "Cuba": ("Havana", "North America"), "Japan": ("Tokyo", "Asia"), "India": ("New Delhi", "Asia"),
    "China": ("Beijing", "Asia"), "Nepal": ("Kathmandu", "Asia"), "Iran": ("Tehran", "Asia"),
    "Australia": ("Canberra", "Oceania"), "Fiji": ("Suva", "Oceania"),
}
TOPICS = ("music", "rain", "chess", "coffee", "the sea", "books", "winter", "robots", "cats", "poetry")
# Arithmetic operators the data uses and the refiner's calculator understands.
OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}

# intent -> (training templates, held-out templates). {c} country, {t} topic, {a} {op} {b} arithmetic.
TEMPLATES = {
    "greeting": (["Hello!", "Hi there.", "Good morning!", "Hey, how are you?"], ["Greetings, friend!", "Hiya!"]),
    "identity": (["Who are you?", "What is your name?", "What are you?"],
                 ["Tell me who you are.", "Introduce yourself."]),
    "opinion": (["What do you think about {t}?", "Do you like {t}?", "How do you feel about {t}?"],
                ["Your opinion on {t}, please?"]),
    "question": (["What is the capital of {c}?", "Which city is the capital of {c}?", "Name the capital of {c}."],
                 ["Capital of {c}?", "Do you know the capital of {c}?"]),
    "fact": (["Tell me about {c}.", "Give me a fact about {c}.", "What do you know about {c}?"],
             ["Share a fact on {c}."]),
    "math": (["What is {a} {op} {b}?", "Compute {a} {op} {b}.", "Calculate {a} {op} {b}."],
             ["How much is {a} {op} {b}?", "{a} {op} {b} = ?"]),
}
REPLIES = {
    "greeting": "Hello! How can I help you?",
    "identity": "I am RNK, a small byte-level model.",
    "opinion": "I think {t} is interesting.",
    "question": "The capital of {c} is {cap}.",
    "fact": "{c} is a country in {cont}.",
    "math": "{a} {op} {b} = {r}.",
    "refusal": "I do not know about {c}.",
}
_SYLLABLES = ("zor", "bli", "qua", "ven", "tor", "mik", "lax", "dru", "pel", "osh", "wyn", "kra")


@dataclass
class ChatExample:
    user: str
    reply: str
    intent: str
    answerable: bool

    def to_record(self) -> dict:
        return {"user": self.user, "model": self.reply, "intent": self.intent, "answerable": self.answerable}


def model_sizes() -> dict:
    """What a model trained on this data must know of it: the number of intents and which is the refusal
    (RNKConfig.n_intent, RNKConfig.refusal_intent). The model takes sizes; the data describes itself."""
    return {"n_intent": len(INTENTS), "refusal_intent": INTENTS.index("refusal")}


def unknown_entity(rng: random.Random) -> str:
    """A made-up country name that is not in KNOWLEDGE."""
    while True:
        name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
        if name not in KNOWLEDGE:
            return name


def make_example(intent: str, rng: random.Random, split: str) -> ChatExample:
    """One example of `intent` with a template from `split` ("train" or "heldout")."""
    which = {"train": 0, "heldout": 1}[split]
    if intent == "refusal":  # a question or fact request about an entity outside the table
        template = rng.choice(TEMPLATES[rng.choice(["question", "fact"])][which])
        c = unknown_entity(rng)
        return ChatExample(template.format(c=c), REPLIES["refusal"].format(c=c), "refusal", False)
    template = rng.choice(TEMPLATES[intent][which])
    c = rng.choice(sorted(KNOWLEDGE))
    cap, cont = KNOWLEDGE[c]
    op = rng.choice(sorted(OPS))
    a, b = (rng.randint(2, 12), rng.randint(2, 12)) if op == "*" else (rng.randint(0, 99), rng.randint(0, 99))
    fields = dict(c=c, cap=cap, cont=cont, t=rng.choice(TOPICS), a=a, b=b, op=op, r=OPS[op](a, b))
    return ChatExample(template.format(**fields), REPLIES[intent].format(**fields), intent, True)


def generate_chat(n: int, seed: int = 0, split: str = "train") -> list[ChatExample]:
    """`n` examples, intents in equal shares, deterministic in (seed, split)."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    rng = random.Random(f"{seed}-{split}")
    return [make_example(INTENTS[i % len(INTENTS)], rng, split) for i in range(n)]


# -- records on disk -----------------------------------------------------------------------

def validate_record(rec, number: int) -> ChatExample:
    """A JSON record {"user", "model", "intent", "answerable"} -> ChatExample; NeuroError names the record."""
    if not isinstance(rec, dict):
        raise NeuroError(f"chat record {number} is not a JSON object")
    missing = [k for k in ("user", "model", "intent", "answerable") if k not in rec]
    if missing:
        raise NeuroError(f"chat record {number} lacks field(s) {missing}")
    if not isinstance(rec["user"], str) or not rec["user"].strip():
        raise NeuroError(f"chat record {number} has an empty or non-text 'user' turn")
    if not isinstance(rec["model"], str) or not rec["model"].strip():
        raise NeuroError(f"chat record {number} has an empty or non-text 'model' turn")
    for k in ("user", "model"):
        if "\n" in rec[k] or "User:" in rec[k] or "Model:" in rec[k]:
            raise NeuroError(f"chat record {number} has a newline or role marker inside its {k!r} turn")
    if rec["intent"] not in INTENTS:
        raise NeuroError(f"chat record {number} has unknown intent {rec['intent']!r}; choose one of {list(INTENTS)}")
    if not isinstance(rec["answerable"], bool):
        raise NeuroError(f"chat record {number} has a non-boolean 'answerable'")
    return ChatExample(rec["user"], rec["model"], rec["intent"], rec["answerable"])


def read_chat_jsonl(path) -> list[ChatExample]:
    """Read a JSONL file of chat records (1-based record numbers in errors)."""
    out = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise NeuroError(f"chat record {number} is not valid JSON") from None
        out.append(validate_record(rec, number))
    return out


def write_chat_jsonl(path, examples) -> None:
    Path(path).write_text("".join(json.dumps(e.to_record()) + "\n" for e in examples))


# -- bytes and batches ---------------------------------------------------------------------

def pad_to_chunks(data: bytes, chunk_len: int) -> bytes:
    """Right-pad with PAD to a multiple of chunk_len (at least one chunk)."""
    n = max(1, -(-len(data) // chunk_len)) * chunk_len
    return data + bytes([PAD]) * (n - len(data))


def prompt_bytes(user: str, chunk_len: int) -> bytes:
    """The chunk-padded prompt turn, then "Model: " (what chat decoding starts from)."""
    return pad_to_chunks(USER + user.encode() + b"\n", chunk_len) + MODEL


def encode_example(ex: ChatExample, chunk_len: int) -> dict:
    """Bytes of one example and where its parts are: {"seq", "prompt_chunks", "reply_start", "reply_end"}."""
    prompt = pad_to_chunks(USER + ex.user.encode() + b"\n", chunk_len)
    response = MODEL + ex.reply.encode() + b"\n"
    seq = prompt + pad_to_chunks(response, chunk_len)
    start = len(prompt) + len(MODEL)
    return {"seq": seq, "prompt_chunks": len(prompt) // chunk_len, "reply_start": start,
            "reply_end": len(prompt) + len(response)}


def collate_chat(examples, chunk_len: int) -> dict:
    """Examples -> batch for RNK.compute_loss. With T = the longest sequence (a multiple of P), C = T / P:

    tokens, targets, loss_mask (B, T): targets[t] = seq[t+1]; mask 1 on reply bytes (and its newline)
    intent, answerable (B,): labels, predicted from the last prompt chunk's plan, prompt_chunk (B,) its index
    response_chunk (B,): index of the chunk holding the reply's last byte
    stop_target, stop_mask (B, C): for chunks prompt_chunk..response_chunk, 1 if the next chunk ends the reply
    """
    enc = [encode_example(e, chunk_len) for e in examples]
    T = max(len(e["seq"]) for e in enc)
    C = T // chunk_len
    B = len(enc)
    seq = torch.full((B, T + 1), PAD, dtype=torch.long)
    loss_mask = torch.zeros(B, T)
    stop_target, stop_mask = torch.zeros(B, C), torch.zeros(B, C)
    prompt_chunk, response_chunk = torch.zeros(B, dtype=torch.long), torch.zeros(B, dtype=torch.long)
    for i, e in enumerate(enc):
        seq[i, : len(e["seq"])] = torch.tensor(list(e["seq"]))
        loss_mask[i, e["reply_start"] - 1: e["reply_end"] - 1] = 1.0  # targets[t] = seq[t+1]
        pc, rc = e["prompt_chunks"] - 1, (e["reply_end"] - 1) // chunk_len
        prompt_chunk[i], response_chunk[i] = pc, rc
        stop_mask[i, pc: rc + 1] = 1.0
        stop_target[i, pc: rc + 1] = (torch.arange(pc, rc + 1) + 1 >= rc).float()
    return {"tokens": seq[:, :-1], "targets": seq[:, 1:], "loss_mask": loss_mask,
            "intent": torch.tensor([INTENTS.index(e.intent) for e in examples]),
            "answerable": torch.tensor([float(e.answerable) for e in examples]),
            "prompt_chunk": prompt_chunk, "response_chunk": response_chunk,
            "stop_target": stop_target, "stop_mask": stop_mask}


def chat_batches(examples, batch_size: int, chunk_len: int, seed: int = 0):
    """`batches(step)` for the Trainer: random examples, deterministic in (seed, step)."""
    if not examples:
        raise NeuroError("chat_batches needs at least one example")

    def batches(step: int) -> dict:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        idx = torch.randint(0, len(examples), (batch_size,), generator=g).tolist()
        return collate_chat([examples[i] for i in idx], chunk_len)

    return batches
