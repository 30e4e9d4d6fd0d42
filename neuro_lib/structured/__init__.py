"""Structured output: JSON Schemas (schemas.py), constrained decoding with llguidance
(constrain.py), verification (verify.py), repair (repair.py), the Struct-mini task and
experts (task.py, expert.py). See each module's docstring."""
