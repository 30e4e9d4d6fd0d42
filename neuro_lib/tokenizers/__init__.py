"""Tokenizers behind one interface (see base.py). Register new kinds here."""
from neuro_lib.tokenizers.base import (TOKENIZER_KINDS, Tokenizer, load_tokenizer, parse_spec,
                                       train_tokenizer)
from neuro_lib.tokenizers.bpe import BPETokenizer
from neuro_lib.tokenizers.byte import ByteTokenizer
from neuro_lib.tokenizers.vq import VQTokenizer
from neuro_lib.tokenizers.word import WordTokenizer

TOKENIZER_KINDS["byte"] = ByteTokenizer
TOKENIZER_KINDS["word"] = WordTokenizer
TOKENIZER_KINDS["bpe"] = BPETokenizer
TOKENIZER_KINDS["vq"] = VQTokenizer

__all__ = ["Tokenizer", "ByteTokenizer", "WordTokenizer", "BPETokenizer", "VQTokenizer", "TOKENIZER_KINDS", "load_tokenizer",
           "train_tokenizer", "parse_spec"]
