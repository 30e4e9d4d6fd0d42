"""Aeron backbone: config + presets (config.py), the model (model.py), parameter and
KV-cache accounting against the seed's claims (budget.py). The seed's optional modules, one file each:
the enhancement pipeline (enhanced.py) with reasoning, scratchpad, episodic memory and knowledge-graph
attention; continual learning (continual.py: EWC, task embeddings), uncertainty (uncertainty.py),
BADGE active learning (badge.py), the vision path (vision.py), and the encoder classifier they are
measured on (classifier.py)."""
from neuro_lib.models.aeron.config import PRESETS, AeronConfig, preset
from neuro_lib.models.aeron.model import Aeron, AeronState

__all__ = ["Aeron", "AeronConfig", "AeronState", "PRESETS", "preset"]
