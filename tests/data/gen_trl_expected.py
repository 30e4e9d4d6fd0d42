"""Generate tests/data/trl_expected.json with TRL 0.28.0 (run once; the test reads the JSON).

    python3 -m venv /work/venvs/rlhf-trl028 && /work/venvs/rlhf-trl028/bin/pip install torch==2.13.0 trl==0.28.0
    /work/venvs/rlhf-trl028/bin/python tests/data/gen_trl_expected.py

TRL's `DPOTrainer.dpo_loss` is called as a plain function on fixed log-probabilities with a namespace for
`self` holding the settings it reads; `masked_whiten` is TRL's PPO helper. The inputs are in the JSON too.
"""
import json
import types
from pathlib import Path

import torch
import trl
import importlib

importlib.import_module("trl.import_utils").is_weave_available = lambda: False  # a broken optional weave install in this venv; not used here
from trl.experimental.ppo.ppo_trainer import masked_whiten
from trl.trainer.dpo_trainer import DPOTrainer, FDivergenceType

torch.manual_seed(0)
inputs = {k: (torch.randn(6) * 3 - 20).tolist() for k in ("pi_chosen", "pi_rejected", "ref_chosen", "ref_rejected")}
t = {k: torch.tensor(v) for k, v in inputs.items()}
cases = []
for loss_type, beta, eps in [("sigmoid", 0.1, 0.0), ("sigmoid", 0.5, 0.2), ("ipo", 0.1, 0.0), ("hinge", 0.1, 0.0),
                             ("hinge", 0.3, 0.0)]:
    self = types.SimpleNamespace(accelerator=types.SimpleNamespace(device="cpu"), reference_free=False,
                                 f_divergence_type=FDivergenceType.REVERSE_KL, f_divergence_params=None,
                                 beta=beta, label_smoothing=eps, use_weighting=False, aux_loss_enabled=False)
    losses, rc, rr = DPOTrainer.dpo_loss(self, t["pi_chosen"], t["pi_rejected"], t["ref_chosen"], t["ref_rejected"],
                                         loss_type=loss_type)
    cases.append({"loss_type": loss_type, "beta": beta, "label_smoothing": eps, "losses": losses.tolist(),
                  "chosen_rewards": rc.tolist(), "rejected_rewards": rr.tolist()})
x = torch.randn(3, 5)
mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
white = masked_whiten(x, mask)
out = {"trl_version": trl.__version__, "torch_version": torch.__version__, "inputs": inputs, "dpo": cases,
       "whiten": {"x": x.tolist(), "mask": mask.int().tolist(), "out": white.tolist()}}
Path(__file__).with_name("trl_expected.json").write_text(json.dumps(out, indent=1))
print("wrote", trl.__version__)
