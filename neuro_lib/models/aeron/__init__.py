"""Aeron backbone: config + presets (config.py), the model (model.py), parameter and
KV-cache accounting against the seed's claims (budget.py); the enhancement pipeline around it
(enhanced.py: reasoning.py + scratchpad.py, episodic.py, knowledge_graph.py, inject.py), and the learning
modules: continual learning (continual.py: EWC, task embeddings), uncertainty (uncertainty.py), BADGE
active learning (badge.py), the vision path (vision.py), and the encoder classifier they are measured on
(classifier.py)."""
from neuro_lib.models.aeron.config import PRESETS, AeronConfig, preset
from neuro_lib.models.aeron.model import Aeron, AeronState

__all__ = ["Aeron", "AeronConfig", "AeronState", "PRESETS", "preset"]
