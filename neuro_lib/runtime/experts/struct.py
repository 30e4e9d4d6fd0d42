"""Struct-mini: a description and a schema_id -> a JSON document valid against the schema, decoded under the JSON
grammar (structured/constrain.py) and, with `grounded` (the default), infer/grounding.GroundedJson: the fields the
task marks (structured/task.GROUNDED: names, SKUs, cities, attendees as spans of the description; prices,
temperatures, durations as numbers written in it; all six schemas) are copied from the input. The family base fine-tuned on the
"struct" task (runtime/experts/).

    expert = StructMini(model)                # or build_experts()["struct-mini"]
    expert.answer(Query("The red kettle costs $42.", schema_id="product_v1")).value   # {"name": "red kettle", ...}

Held-out evaluation: structured/expert.evaluate_expert (`neuro bench family`). Tests: tests/test_runtime_experts.py.
"""
from __future__ import annotations

from neuro_lib.errors import NeuroError
from neuro_lib.runtime.types import ExpertAnswer, Query
from neuro_lib.structured.expert import write_json
from neuro_lib.structured.schemas import load_schema
from neuro_lib.structured.verify import verify_text


class StructMini:
    name = "struct-mini"
    skills = ("json",)
    tools = ()
    contract = {"input": "a description of a product, a weather report, an event, an order, a person or a recipe, "
                         "and a schema_id",
                "output": "a JSON document valid against the query's schema (constrained decoding)"}

    def __init__(self, model, budget: int = 256, grounded: bool = True):
        self.model, self.budget, self.grounded = model, budget, grounded

    def answer(self, query: Query) -> ExpertAnswer:
        if not query.schema_id:
            return ExpertAnswer("", ok=False, error="struct-mini needs a schema_id")
        try:
            schema = load_schema(query.schema_id)
        except NeuroError as e:
            return ExpertAnswer("", ok=False, error=str(e))
        out, _ = write_json(self.model, query.text, query.schema_id, constrained=True, budget=self.budget,
                            grounded=self.grounded)
        doc, errors = verify_text(out, schema)
        return ExpertAnswer(out.decode("utf-8", "replace"), ok=not errors, value=doc, model_calls=1,
                            tokens=len(out) + 1, error=str(errors[0]) if errors else None,
                            meta={"schema_id": query.schema_id, "grounded": self.grounded})
