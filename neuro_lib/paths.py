"""Where the repository is: the one definition of the repository root.

The package is installed editable (`make venv`), so the repository is the parent of the
`neuro_lib/` folder; data/cache, figures/, notebooks/ and papermill_runs/ hang off it.
"""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
