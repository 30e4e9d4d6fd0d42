"""Tokenizers behind one interface (see base.py). Register new kinds here."""
from neuro_lib.tokenizers.base import (TOKENIZER_KINDS, Tokenizer, load_tokenizer, parse_spec,
                                       train_tokenizer)
from neuro_lib.tokenizers.byte import ByteTokenizer

TOKENIZER_KINDS["byte"] = ByteTokenizer

__all__ = ["Tokenizer", "ByteTokenizer", "TOKENIZER_KINDS", "load_tokenizer", "train_tokenizer", "parse_spec"]
