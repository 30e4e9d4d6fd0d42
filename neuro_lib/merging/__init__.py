"""Model merging (issue 24, notebook 11): fine-tunes of one base combined without training.

core.py (the shared policy: float tensors merged, non-float copied, tied tensors once, inputs never
changed; `task_vector`, task arithmetic) -> ties.py (TIES, DARE) -> slerp.py -> soups.py (uniform,
greedy) -> layerwise.py (a coefficient per block, chosen on validation) -> ensemble.py (logit
ensembles, decoded by the engine) -> runs.py (run folders: lineage checked, merged checkpoint written).

    neuro merge --method ties --base runs/base runs/a runs/b --density 0.2 --out runs/ab
    neuro bench merge --profile smoke
    pytest tests/test_merging.py
"""
from neuro_lib.merging.core import describe, task_arithmetic, task_vector
from neuro_lib.merging.ensemble import LogitEnsemble
from neuro_lib.merging.layerwise import layerwise, tune_layerwise
from neuro_lib.merging.slerp import slerp
from neuro_lib.merging.soups import greedy_soup, uniform_soup
from neuro_lib.merging.ties import dare, ties

__all__ = ["describe", "task_arithmetic", "task_vector", "ties", "dare", "slerp", "uniform_soup", "greedy_soup",
           "layerwise", "tune_layerwise", "LogitEnsemble"]
