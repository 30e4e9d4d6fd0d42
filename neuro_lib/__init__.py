"""neuro_lib: a research workbook for small language models."""
import os

# numba's parallel loops (models/ssm_fused.py) and torch share the OpenMP runtime; with the default
# spinning wait policy, idle numba workers starve torch's ops after any Mamba call (tiny
# GPT decoding in tests, docs/LOG.md 2026-11-25). Only effective if set before torch starts OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
