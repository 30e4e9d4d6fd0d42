"""`neuro json`: schema-constrained JSON from a run, and `neuro json validate FILE --schema ID`."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from neuro_lib.argtypes import number, positive, seed
from neuro_lib.errors import NeuroError


def cmd_json(a):
    from neuro_lib.structured.schemas import load_schema
    from neuro_lib.structured.verify import verify_text

    if a.action == "validate":
        if not a.file or not Path(a.file).is_file():
            raise NeuroError(f"neuro json validate needs an existing FILE, got {a.file!r}")
        schema = load_schema(a.schema)
        _, errors = verify_text(Path(a.file).read_bytes(), schema)
        print(f"{a.file}: valid against {a.schema}" if not errors else
              f"{a.file}: {len(errors)} error(s) against {a.schema}\n" + "\n".join(f"  {e}" for e in errors))
        return 1 if errors else 0
    if a.file or a.prompt is None:
        raise NeuroError("neuro json needs --prompt TEXT (or: neuro json validate FILE --schema ID)")
    from neuro_lib.checkpoint import load_checkpoint
    from neuro_lib.structured.expert import answer

    schema = load_schema(a.schema)  # an unknown or broken schema fails before any model work
    if a.run:
        model, tok, cfg = load_checkpoint(a.run)
    else:
        from neuro_lib.profiles import get_profile
        from neuro_lib.runtime.experts import cached_model
        from neuro_lib.structured.expert import check_description

        profile = get_profile(a.profile)
        check_description(a.prompt, a.schema, profile.tasks.family.base["block_size"])
        model, tok, cfg = cached_model("struct-mini", profile)  # the runtime's Struct-mini: the base's fine-tune
    r = answer(model, tok, cfg, a.schema, a.prompt, not a.no_constraint, a.max_new_tokens, a.temperature, a.seed,
               grounded=not a.no_grounding)
    print(r["text"])
    print(f"valid against {a.schema}" if r["valid"] else "invalid:\n" + "\n".join(f"  {e}" for e in r["errors"]))
    rep, doc = r["repair"], None
    if rep is not None:
        print(("repaired:" if rep.ok else "unrepairable; attempted:") + "".join(f"\n  {c}" for c in rep.changes))
        if rep.ok:
            print(json.dumps(rep.doc, ensure_ascii=False))
            doc = rep.doc
    if r["valid"]:
        doc = verify_text(r["text"], schema)[0]
    if doc is None:
        return 1
    # valid is not right: the same grounding check as the runtime's verifier (issue 21, honest answers)
    from neuro_lib.runtime.judge import ungrounded

    bad = ungrounded(doc, a.prompt, schema)
    if bad:
        print(f"neuro: unverified: {bad[0]!r} is not in the prompt", file=sys.stderr)
        return 3
    return 0


def register(sub) -> None:
    j = sub.add_parser("json", help="schema-constrained JSON from a run; `neuro json validate FILE --schema ID`")
    j.add_argument("action", nargs="?", choices=["validate"], help="validate FILE against --schema")
    j.add_argument("file", nargs="?", help="with validate: the JSON file")
    j.add_argument("--schema", required=True, help="a schema id in data/schemas/ (or a .json path)")
    j.add_argument("--prompt", help="the description to turn into JSON")
    j.add_argument("--run", help="checkpoint directory (default: the runtime's Struct-mini, the family base "
                                 "fine-tuned on the struct task, trained once)")
    j.add_argument("--profile", default="smoke", help="sizes of the default Struct-mini expert")
    j.add_argument("--no-constraint", action="store_true", help="decode without the grammar constraint")
    j.add_argument("--no-grounding", action="store_true",
                   help="let names and numbers be anything the grammar allows, not spans/numbers of the prompt")
    j.add_argument("--max-new-tokens", type=positive(int), default=256, help="the token budget")
    j.add_argument("--temperature", type=number(float, 0, strict=False), default=0.0, help=">= 0; 0 is greedy")
    j.add_argument("--seed", type=seed, default=0)
    j.set_defaults(func=cmd_json)
