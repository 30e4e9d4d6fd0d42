"""`neuro data stats` and `neuro doctor`: what a corpus holds; versions, threads, device, caches."""
from __future__ import annotations


def cmd_data(a):
    from neuro_lib.data.corpus import corpus_stats, load_corpus

    stats = corpus_stats(load_corpus(a.corpus))
    width = max(map(len, stats))
    for k, v in stats.items():
        print(f"{k.ljust(width)}  {v}")


def cmd_doctor(a):
    import torch

    from neuro_lib.bench import SUITES
    from neuro_lib.data.corpus import CACHE_DIR
    from neuro_lib.envinfo import environment_record
    from neuro_lib.models import ARCHS
    from neuro_lib.tokenizers import TOKENIZER_KINDS

    rec = environment_record()
    rec["cuda_available"] = torch.cuda.is_available()
    rec["archs"] = sorted(ARCHS)
    rec["tokenizers"] = sorted(TOKENIZER_KINDS)
    rec["bench_suites"] = sorted(SUITES)
    cached = sorted(p.name for p in CACHE_DIR.iterdir()) if CACHE_DIR.is_dir() else []
    rec["cache_dir"] = str(CACHE_DIR)
    rec["cached"] = cached
    width = max(map(len, rec))
    for k, v in rec.items():
        print(f"{k.ljust(width)}  {v}")


def register(sub) -> None:
    d = sub.add_parser("data", help="corpus tools")
    dsub = d.add_subparsers(dest="data_command", required=True)
    ds = dsub.add_parser("stats", help="size, byte histogram summary and the split")
    ds.add_argument("corpus")
    ds.set_defaults(func=cmd_data)
    sub.add_parser("doctor", help="versions, threads, device, what is cached").set_defaults(func=cmd_doctor)
