"""Named training-recipe changes, each one model or training override, combined with '+'.

    resolve_recipe("muon+qknorm") -> ({"qk_norm": True}, {"optimizer": "muon"})

`neuro bench lm --arch gpt@muon+wsd,nanogpt` trains each arm with its recipe; "current" is the recipe
as it stands (no overrides). The equal-step screens of each change are in docs/LOG.md (2026-12-03) and
data/reference/recipe_screen.json; a change joins RECIPES["best"] only if it won there.
"""
from __future__ import annotations

from neuro_lib.errors import NeuroError

# name -> (model overrides, training overrides)
RECIPES: dict[str, tuple[dict, dict]] = {
    "current": ({}, {}),
    "muon": ({}, {"optimizer": "muon"}),              # Muon on hidden matrices, AdamW on the rest (optim.py)
    "wsd": ({}, {"schedule": "wsd"}),                  # warmup, flat, linear decay over the last 20 %
    "qknorm": ({"qk_norm": True}, {}),                 # RMS-normalised queries and keys per head
    "untied": ({"tie_weights": False}, {}),            # a separate LM head
}
# The changes that won the equal-step screens (docs/LOG.md 2026-12-03): Muon (3 seeds of 3) and WSD (2 of 2;
# with Muon, seed 0); both still have to win at equal wall-clock on a quiet machine (Muon's Newton-Schulz
# iterations cost time per step).
RECIPES["best"] = ({}, {"optimizer": "muon", "schedule": "wsd"})


def resolve_recipe(name: str) -> tuple[dict, dict]:
    """'a+b+...' -> (model overrides, training overrides), later names winning on a shared key."""
    model, train = {}, {}
    for part in (name or "current").split("+"):
        if part not in RECIPES:
            raise NeuroError(f"unknown recipe {part!r}; choose from {', '.join(RECIPES)} (joined with '+')")
        m, t = RECIPES[part]
        model.update(m)
        train.update(t)
    return model, train
