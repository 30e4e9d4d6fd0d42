"""`neuro report` (the notebooks through papermill into an HTML report) and `neuro nbfreeze`."""
from __future__ import annotations

import json

from neuro_lib.argtypes import positive
from neuro_lib.errors import NeuroError


def cmd_report(a):
    from neuro_lib.workbook import run_workbook

    params = {}
    for k, v in a.param or []:
        try:
            params[k] = json.loads(v)
        except json.JSONDecodeError:
            params[k] = v
    failures = run_workbook(profile=a.profile, only=a.only, jobs=a.jobs, params=params, out_root=a.out_root)
    if failures:
        raise NeuroError(f"{len(failures)} notebook(s) failed: {', '.join(failures)}")


def cmd_nbfreeze(a):
    from neuro_lib.workbook import freeze_notebook

    from neuro_lib.workbook import read_notebook

    for path in a.notebooks:  # every notebook checked before the first one runs
        read_notebook(path)
    for path in a.notebooks:
        freeze_notebook(path)
        print(f"froze {path}")


def register(sub) -> None:
    r = sub.add_parser("report", help="execute the notebooks with papermill into an HTML report")
    r.add_argument("--profile", default="smoke")
    r.add_argument("--only", nargs="*", help="notebook numbers or names, e.g. 00 03")
    r.add_argument("--jobs", type=positive(int), default=1, help="notebooks run in parallel")
    r.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="notebook parameter (repeatable)")
    r.add_argument("--out-root", default=None, help="defaults to papermill_runs/")
    r.set_defaults(func=cmd_report)
    f = sub.add_parser("nbfreeze", help="execute notebooks and save them stripped but for NBVAL_CHECK_OUTPUT cells")
    f.add_argument("notebooks", nargs="+")
    f.set_defaults(func=cmd_nbfreeze)
