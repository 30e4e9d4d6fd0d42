import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP (see neuro_lib/__init__.py)

import pytest  # noqa: E402
import torch  # noqa: E402

from neuro_lib.profiles import RagSizes  # noqa: E402

os.environ.setdefault("NEURO_PROGRESS", "off")
torch.set_num_threads(1)

ENGLISH = (b"The quick brown fox jumps over the lazy dog. " * 40 +
           b"Return the value of the named attribute of object. " * 40 +
           b"A module is a file containing Python definitions and statements. " * 40)


def snapshot(root) -> dict:
    """Every path under root with a hash of its bytes (dotfiles included): "nothing on disk changed"."""
    import hashlib
    from pathlib import Path

    root = Path(root)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def run_cli(capsys, argv) -> tuple:
    """`neuro ARGV` in this process -> (exit status, stdout, stderr); argparse's SystemExit is a status too."""
    from neuro_lib.cli import main

    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def text_corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(ENGLISH)
    return f"text:{path}"


@pytest.fixture
def tiny_gpt_cfg():
    return dict(vocab_size=256, d_model=32, n_layer=2, n_head=4, d_ff=64, block_size=32, dropout=0.0)


# -- a tiny documentation corpus and its RAG index (test_rag, test_runtime_experts, test_runtime_judge) ------
TOPICS = ["path", "socket", "queue", "codec", "timer", "parser", "archive", "cipher", "buffer", "shell",
          "mailbox", "locale"]


def _doc_text() -> bytes:
    parts = []
    for i, t in enumerate(TOPICS):
        parts.append(f"{t}lib\n\n"
                     f"Tools for working with {t} objects in programs.\n\n"
                     f"Return True if the {t} object is ready for reading. "
                     f"Raises ValueError if the {t} handle was closed before the call. "
                     f"The {t} timeout defaults to {i + 1}.\n\n"
                     f"Create a new {t} from the given arguments. The {t} keeps an internal buffer of "
                     f"{t} records; it raises KeyError when the {t} record is missing from the table. "
                     f"Return None if the {t} has no name attached to it.\n")
    return "\n".join(parts).encode()


SIZES = RagSizes(chunk_bytes=200, test_fraction=0.3, encoder=dict(buckets=1 << 12, dim=16), question_repeat=2,
                 encoder_batch=8, encoder_lr=1e-2, encoder_steps=30, reader_arch="gpt",
                 reader_model={"gpt": dict(d_model=32, n_layer=1, n_head=2, d_ff=64, block_size=192)},
                 reader_block=192, ctx_bytes=96, answer_bytes=16, reader_batch=4, reader_lr=3e-3, pretrain_steps=3,
                 finetune_steps=3, reader_retriever="bm25", n_eval=6)


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory):
    """A RAG index of _doc_text() at SIZES (built once per test module)."""
    from neuro_lib.data.corpus import load_corpus
    from neuro_lib.rag.index import build_index

    path = tmp_path_factory.mktemp("rag") / "docs.txt"
    path.write_bytes(_doc_text())
    return build_index(load_corpus(f"text:{path}"), SIZES, seed=0)


def grounded_values(doc, fields, key=None):
    """(field, value) for every value of a grounded field in a document (array items too)."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from grounded_values(v, fields, k)
    elif isinstance(doc, list):
        for v in doc:
            yield from grounded_values(v, fields, key)
    elif key in fields:
        yield key, doc
