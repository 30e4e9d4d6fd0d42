import os

import pytest
import torch

os.environ.setdefault("NEURO_PROGRESS", "off")
torch.set_num_threads(1)

ENGLISH = (b"The quick brown fox jumps over the lazy dog. " * 40 +
           b"Return the value of the named attribute of object. " * 40 +
           b"A module is a file containing Python definitions and statements. " * 40)


@pytest.fixture
def text_corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(ENGLISH)
    return f"text:{path}"


@pytest.fixture
def tiny_gpt_cfg():
    return dict(vocab_size=256, d_model=32, n_layer=2, n_head=4, d_ff=64, block_size=32, dropout=0.0)
