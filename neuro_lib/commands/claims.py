"""`neuro claims check | table`: the claims ledger (data/claims.yaml, neuro_lib/claims.py).

    neuro claims check                  every evidence key resolves, every quoted figure equals its record
    neuro claims table                  the README's coverage block, printed
    neuro claims table --write-readme   ... written into README.md between its claims:begin/end comments
"""
from __future__ import annotations

import sys


def cmd_check(args) -> int:
    from neuro_lib import claims as C

    ledger = C.load_claims(args.ledger) if args.ledger else C.load_claims()
    problems = (C.evidence_problems(ledger) + C.quote_problems(ledger) + C.reason_problems(ledger)
                + C.figure_problems())
    for p in problems:
        print(p)
    if not C.SEED_DIR.is_dir():
        print(f"quotes not checked: no seeds at {C.SEED_DIR} (set NEURO_SEEDS_DIR)")
    counts = {v: sum(c.verdict == v for c in ledger) for v in C.VERDICTS}
    print(f"{len(ledger)} claims ({', '.join(f'{v} {n}' for v, n in counts.items() if n)}); "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


def cmd_table(args) -> int:
    from neuro_lib import claims as C

    ledger = C.load_claims(args.ledger) if args.ledger else C.load_claims()
    if args.write_readme:
        changed = C.write_readme(ledger)
        print(f"README.md {'updated' if changed else 'already up to date'}")
        return 0
    sys.stdout.write(C.render_coverage(ledger) + "\n")
    return 0


def register(sub) -> None:
    p = sub.add_parser("claims", help="the claims ledger: check its evidence, render the README's coverage table")
    inner = p.add_subparsers(dest="claims_command", required=True)
    c = inner.add_parser("check", help="resolve every evidence key and check every quoted figure")
    c.add_argument("--ledger", help="a ledger file other than data/claims.yaml")
    c.set_defaults(func=cmd_check)
    t = inner.add_parser("table", help="the Seed coverage block generated from the ledger")
    t.add_argument("--ledger", help="a ledger file other than data/claims.yaml")
    t.add_argument("--write-readme", action="store_true", help="write it into README.md")
    t.set_defaults(func=cmd_table)
