"""Corpora, splits and batching."""
from neuro_lib.data.corpus import Corpus, load_corpus, corpus_stats
from neuro_lib.data.batching import TokenArray, encode_to_array

__all__ = ["Corpus", "load_corpus", "corpus_stats", "TokenArray", "encode_to_array"]
