"""The library reads as one family: the layering rules of DESIGN.md hold for every module (checked by
parsing imports), every model has the same full pass, and the helpers the models and tokenizers share
do what they say."""
from __future__ import annotations

import ast
import math

import pytest
import torch
import torch.nn as nn

from neuro_lib.data.chat import INTENTS, collate_chat, generate_chat, model_sizes
from neuro_lib.models import ARCHS, build_model
from neuro_lib.models.base import check_positive, gpt2_init
from neuro_lib.paths import REPO_ROOT
from neuro_lib.profiles import PROFILES
from neuro_lib.tokenizers.base import PieceCache

PACKAGE = REPO_ROOT / "neuro_lib"

# layer -> the neuro_lib packages and modules it must not import (DESIGN.md, "Layering")
FORBIDDEN = {
    "models": {"infer", "train", "data", "tools", "rag", "structured", "runtime"},
    "tokenizers": {"models", "train"},
    "data": {"models"},
    # only the doors (cli, workbook) and the measuring layers (bench, viz) sit above the runtime
    "infer": {"runtime", "rag", "structured"},
    "train": {"runtime", "rag", "structured", "infer"},
    "rag": {"runtime"},
    "structured": {"runtime"},
    "merging": {"runtime", "rag", "structured", "train"},  # a merge reads checkpoints, it needs no trainer
}
TOOLS_MAY_IMPORT = {"errors", "profiles", "tools"}


def neuro_imports(path, source: str | None = None) -> set[str]:
    """The first component after `neuro_lib.` of every neuro_lib import in a module (relative ones resolved),
    including imports inside functions."""
    module = path.relative_to(REPO_ROOT).with_suffix("").parts  # ("neuro_lib", "models", "gpt")
    found = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from .x import y / from .. import y
                base = list(module[:len(module) - node.level])
                names = [".".join(base + ([node.module] if node.module else []))]
                if not node.module:
                    names = [f"{names[0]}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "neuro_lib" and len(parts) > 1:
                found.add(parts[1])
    return found


def layer_modules(layer: str):
    folder = PACKAGE / layer
    return sorted(folder.rglob("*.py")) if folder.is_dir() else []


def test_the_import_parser_sees_every_form():
    """The checker itself: absolute, from-, relative and function-level imports are all found."""
    src = ("import neuro_lib.train.trainer\nfrom neuro_lib.data import chat\nfrom ..infer import sampling\n"
           "from . import layers\nimport torch\ndef f():\n    from neuro_lib.tools.x import y\n")
    probe = PACKAGE / "models" / "probe.py"  # never written: the source is passed in
    assert neuro_imports(probe, src) == {"train", "data", "infer", "models", "tools"}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layering(layer):
    modules = layer_modules(layer)
    assert modules, f"no modules under neuro_lib/{layer}"
    bad = {str(p.relative_to(REPO_ROOT)): sorted(neuro_imports(p) & FORBIDDEN[layer]) for p in modules}
    assert not {k: v for k, v in bad.items() if v}, f"{layer} must not import {sorted(FORBIDDEN[layer])}"


def test_tools_stand_alone():
    bad = {str(p.relative_to(REPO_ROOT)): sorted(neuro_imports(p) - TOOLS_MAY_IMPORT) for p in layer_modules("tools")}
    assert not {k: v for k, v in bad.items() if v}


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_model_has_the_same_full_pass(arch):
    """forward(tokens) -> logits in every model, and forward_aux gives the same logits plus its extras."""
    torch.manual_seed(0)
    model = build_model(arch, **PROFILES["smoke"].model(arch)).eval()
    x = torch.randint(0, 256, (2, 40))
    with torch.no_grad():
        logits = model(x)
        again, aux = model.forward_aux(x)
    assert logits.shape == (2, 40, model.config.vocab_size)
    torch.testing.assert_close(again, logits)
    assert isinstance(aux, dict) and (set(aux) >= {"intent", "answerable", "stop"} if arch == "rnk" else aux == {})


def test_rnk_takes_its_sizes_from_the_data():
    """RNK knows no dataset: the intent head has as many classes as it is told, rule R1 forces the intent
    it is told is the refusal, and an index outside the classes is refused."""
    small = dict(PROFILES["smoke"].model("rnk"), d_model=16, d_plan=8, d_dec=8, n_layer=1)
    model = build_model("rnk", **small, n_intent=4, refusal_intent=2)
    assert model.intent_head.out_features == 4
    _, pi = model.refiner(torch.randn(1, 8), torch.randn(1, 4), torch.tensor([-40.0]))
    assert pi.argmax(-1).item() == 2
    with pytest.raises(Exception, match="refusal_intent"):
        build_model("rnk", **small, n_intent=4, refusal_intent=4)
    chat = build_model("rnk", **small, **model_sizes())
    assert chat.intent_head.out_features == len(INTENTS)
    batch = collate_chat(generate_chat(4, seed=0), chat.config.chunk_len)
    loss, parts = chat.compute_loss(batch)
    assert torch.isfinite(loss) and "intent_loss" in parts


def test_check_positive_names_the_field():
    class Cfg:
        width, depth = 4, 0

    check_positive(Cfg(), "width")
    with pytest.raises(ValueError, match=r"Cfg\.depth must be positive, got 0"):
        check_positive(Cfg(), "width", "depth")


def test_gpt2_init():
    """Weights N(0, 0.02), biases zero, residual-stream outputs N(0, 0.02 / sqrt(2 depth))."""
    torch.manual_seed(0)
    net = nn.ModuleDict({"emb": nn.Embedding(300, 200), "fc": nn.Linear(200, 300), "out_proj": nn.Linear(300, 200)})
    gpt2_init(net, depth=8, residual_out=("out_proj.weight",))
    assert net["emb"].weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert net["fc"].weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert net["out_proj"].weight.std().item() == pytest.approx(0.02 / math.sqrt(16), rel=0.05)
    assert not net["fc"].bias.any() and not net["out_proj"].bias.any()


def test_piece_cache_encodes_each_new_piece_once_and_survives_overflow():
    calls = []

    def encode_new(pieces):
        calls.append(list(pieces))
        return [[len(p), p[0]] for p in pieces]

    cache = PieceCache(limit=3)
    assert cache.encode([b"ab", b"c", b"ab"], encode_new) == [2, 97, 1, 99, 2, 97]
    assert calls == [[b"ab", b"c"]]
    assert cache.encode([b"c", b"ab"], encode_new) == [1, 99, 2, 97] and len(calls) == 1  # all cached
    # two new pieces overflow the limit: the cache restarts, and the cached "c" is encoded again with them
    assert cache.encode([b"c", b"dd", b"e"], encode_new) == [1, 99, 2, 100, 1, 101]
    assert calls[-1] == [b"c", b"dd", b"e"] and len(cache.ids) == 3
