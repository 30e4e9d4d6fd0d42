"""The report runner: execute the numbered notebooks with papermill into HTML.

    neuro report --profile smoke [--only 00 03] [--jobs 2] [-p name value ...]
    make report        # smoke profile
    make overnight     # full profile

Each run writes `papermill_runs/<UTC stamp>-<profile>/`:

    index.html                       every notebook: status, duration, a table of headline figures, links
    NN_name/NN_name.ipynb            the executed notebook (a failure keeps its traceback)
    NN_name/NN_name.html             nbconvert export; plotly figures embedded, works offline
    NN_name/parameters.json          the parameters injected
    NN_name/environment.json         Python, torch, threads, git sha + dirty flag
    NN_name/metrics.json             {"headline": [{name, value, unit, reference?}], ...}, written by the notebook

Unknown parameter names are rejected before anything runs (papermill would only warn).
Notebooks execute with the `notebooks/` folder as working directory and stream their
output. A failing notebook does not stop the others; the run reports the failures.
"""
from __future__ import annotations

import html
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from neuro_lib.envinfo import environment_record
from neuro_lib.atomic import write_atomic
from neuro_lib.paths import REPO_ROOT, check_output
from neuro_lib.errors import NeuroError

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
RUNS_DIR = REPO_ROOT / "papermill_runs"


@dataclass
class NotebookRun:
    name: str
    status: str = "pending"
    seconds: float = 0.0
    error: str = ""
    metrics: dict | None = None


CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
LEDGER = "13_claims_ledger"  # the index lists and links the claims ledger first: the summary of every other notebook


def strip_notebook(nb) -> None:
    """nbstripout semantics, except cells marked NBVAL_CHECK_OUTPUT keep output and count
    (nbval compares those). Kernelspec normalised to python3."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if CHECK_MARK not in cell.source:
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
    for key in ("papermill", "widgets"):
        nb.metadata.pop(key, None)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}


def read_notebook(path):
    """A notebook to rewrite in place, read and checked: a missing file, a folder, a link, or a file
    that is not a notebook is one sentence (NeuroError)."""
    import nbformat

    path = check_output(path, "notebook", exist_ok=True)
    if not path.is_file():
        raise NeuroError(f"notebook {path} does not exist")
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as e:  # nbformat raises JSON, Unicode, validation and reader errors
        raise NeuroError(f"{path} is not a readable notebook ({type(e).__name__})") from None


def freeze_notebook(path) -> Path:
    """Execute a notebook in place (smoke defaults) and save it stripped but for its checked cells."""
    import nbformat
    from nbclient import NotebookClient

    nb = read_notebook(path)
    path = Path(path)
    os.environ.setdefault("NEURO_PROGRESS", "log")
    NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
                   timeout=1800).execute()
    strip_notebook(nb)
    write_atomic(path, nbformat.writes(nb))
    return path


def headline(name: str, value, unit: str, reference: dict | None = None) -> dict:
    """One named headline figure for metrics.json; `reference` is the recorded figure to show beside it
    (`neuro_lib.bench.reference.beside`), or None."""
    row = {"name": name, "value": value, "unit": unit}
    if reference is not None:
        row["reference"] = reference
    return row


def write_metrics(run_dir: str, metrics: dict, headlines: list[dict] | None = None) -> Path:
    """Called by each notebook: its figures into its run folder (or the cwd). metrics.json is
    `{"headline": [{"name", "value", "unit", "reference"?}, ...], ...metrics}`: the headline rows are
    what the report index shows; the rest is kept for whoever opens the file."""
    path = Path(run_dir or ".") / "metrics.json"
    body = {"headline": list(headlines or []), **metrics}
    path.write_text(json.dumps(body, indent=2, default=float))
    return path


def list_notebooks(only=None, notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    books = sorted(Path(notebook_dir).glob("[0-9][0-9]_*.ipynb"))
    if only:
        picked = [b for b in books if any(b.stem == o or b.stem.startswith(f"{o}_") or b.stem.startswith(o)
                                          for o in only)]
        missing = [o for o in only if not any(b.stem.startswith(o) for b in books)]
        if missing:
            raise NeuroError(f"no notebook matches {missing}; have {[b.stem for b in books]}")
        books = picked
    if not books:
        raise NeuroError(f"no notebooks found in {notebook_dir}")
    return books


def check_parameters(notebook: Path, params: dict) -> None:
    import papermill as pm

    declared = pm.inspect_notebook(str(notebook))
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise NeuroError(f"{notebook.name} has no parameter(s) {unknown}; it declares {sorted(declared)}")
    for name, value in params.items():
        want = declared[name]["inferred_type_name"]
        if not _fits(value, want):
            raise NeuroError(f"parameter {name} of {notebook.name} is {want}, got {value!r}")


def _fits(value, type_name: str) -> bool:
    """Does a -p value fit the parameter's declared type (`name: type = value`)? Unknown types pass."""
    import math

    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "str":
        return isinstance(value, str)
    return True


def export_html(ipynb: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(ipynb), as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    out = ipynb.with_suffix(".html")
    out.write_text(body, encoding="utf-8")
    return out


def run_one(notebook: Path, run_root: Path, params: dict) -> NotebookRun:
    import papermill as pm

    rec = NotebookRun(notebook.stem)
    folder = run_root / notebook.stem
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / notebook.name
    params = {**params, "run_dir": str(folder.resolve())}
    (folder / "parameters.json").write_text(json.dumps(params, indent=2))
    (folder / "environment.json").write_text(json.dumps(environment_record(), indent=2))
    print(f"[report] {notebook.stem}: running", flush=True)
    t0 = time.time()
    try:
        pm.execute_notebook(str(notebook), str(out), parameters=params, cwd=str(notebook.parent), log_output=True,
                            kernel_name="python3", progress_bar=False)
        rec.status = "ok"
    except pm.PapermillExecutionError as e:
        rec.status, rec.error = "failed", f"{e.ename}: {e.evalue}"
    except Exception as e:  # a kernel that died, a notebook that cannot be read: recorded, run goes on
        rec.status, rec.error = "failed", f"{type(e).__name__}: {e}"
    rec.seconds = time.time() - t0
    if out.exists():
        export_html(out)
    metrics = folder / "metrics.json"
    if metrics.exists():
        rec.metrics = json.loads(metrics.read_text())
    print(f"[report] {notebook.stem}: {rec.status} in {rec.seconds:.0f}s {rec.error}", flush=True)
    return rec


def _fmt(v) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    return f"{v:,}" if isinstance(v, int) else f"{v:,.4g}"


def headline_rows(metrics: dict | None) -> tuple[list[dict], int]:
    """The rows the index shows for one notebook, and how many other entries metrics.json holds.
    A notebook that wrote no (or an empty) "headline" list gets its top-level scalars; lists and dicts
    stay in the file."""
    metrics = dict(metrics or {})
    rows = metrics.pop("headline", None)
    if not rows:
        rows = [{"name": k, "value": v, "unit": ""} for k, v in metrics.items()
                if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    shown = {r["name"] for r in rows}
    return rows, sum(1 for k in metrics if k not in shown)


def _headline_table(r: NotebookRun) -> str:
    rows, rest = headline_rows(r.metrics)
    if not rows and r.metrics is None:
        return "no metrics.json"
    cells, labels = [], []  # each distinct recorded-run label once, under the table, cited by number
    for h in rows:
        ref = h.get("reference")
        ref_cell = ""
        if ref:
            if ref["label"] not in labels:
                labels.append(ref["label"])
            ref_cell = (f"{html.escape(_fmt(ref['value']))} {html.escape(ref.get('unit', h['unit']))} "
                        f"<sup>({labels.index(ref['label']) + 1})</sup>")
        cells.append(f"<tr><td>{html.escape(h['name'])}</td><td>{html.escape(_fmt(h['value']))}</td>"
                     f"<td>{html.escape(h['unit'])}</td><td>{ref_cell}</td></tr>")
    notes = "".join(f"<br>({i}) {html.escape(lab)}" for i, lab in enumerate(labels, 1))
    more = f"<br>{rest} more in metrics.json" if rest else ""
    return (f"<table class='h'><tr><th>figure</th><th>this run</th><th>unit</th><th>recorded reference</th></tr>"
            f"{''.join(cells)}</table><p><small>{notes[4:]}{more}</small></p>")


def write_index(run_root: Path, runs: list[NotebookRun], profile: str) -> Path:
    """index.html: per notebook its status, duration, a table of named headline figures (with the
    recorded reference beside each where the notebook gave one) and links to its HTML and metrics.json.
    The claims ledger (notebook 13), where it ran, comes first and is linked above the table."""
    runs = sorted(runs, key=lambda r: r.name != LEDGER)  # stable: the others keep their order
    start = ""
    if runs and runs[0].name == LEDGER:
        start = (f'<p>Start with <a href="{LEDGER}/{LEDGER}.html">the claims ledger</a>: every seed claim, '
                 f'our verdict and the evidence behind it, with links into the other notebooks.</p>')
    rows = []
    for r in runs:
        links = f'<a href="{r.name}/{r.name}.html">{r.name}</a>'
        if r.metrics is not None:
            links += f'<br><small><a href="{r.name}/metrics.json">metrics.json</a></small>'
        colour = "#2e7d32" if r.status == "ok" else "#c62828"
        rows.append(f"<tr><td>{links}</td><td style='color:{colour}'>{r.status}</td><td>{r.seconds:.0f}s</td>"
                    f"<td>{_headline_table(r)}</td><td>{html.escape(r.error)}</td></tr>")
    env = environment_record()
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>neuro_lib report {run_root.name}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;
vertical-align:top}}table.h td,table.h th{{padding:2px 8px;font-size:90%}}</style>
</head><body><h1>neuro_lib workbook — {html.escape(run_root.name)}</h1>
<p>profile <b>{profile}</b>; git {env['git']['sha']}{' (dirty)' if env['git']['dirty'] else ''};
torch {env['torch']}; {env['cpu']}, {env['cores']} cores</p>
{start}<table><tr><th>notebook</th><th>status</th><th>duration</th><th>headline figures</th><th>error</th></tr>
{''.join(rows)}</table></body></html>"""
    index = run_root / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def run_workbook(profile: str = "smoke", only=None, jobs: int = 1, params: dict | None = None,
                 out_root=None, notebook_dir=NOTEBOOK_DIR) -> list[str]:
    """Run the notebooks; returns the names of those that failed."""
    from neuro_lib.profiles import get_profile

    get_profile(profile)  # an unknown profile: one sentence before anything runs
    books = list_notebooks(only, notebook_dir)
    params = {"profile": profile, **(params or {})}
    for nb in books:
        check_parameters(nb, params)
    root = check_output(out_root or RUNS_DIR, "report folder", folder=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_root = check_output(root / f"{stamp}-{profile}", "report folder", folder=True)
    run_root.mkdir(parents=True, exist_ok=False)
    os.environ.setdefault("NEURO_PROGRESS", "log")  # kernels inherit it: log lines, no widgets
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = list(pool.map(lambda nb: run_one(nb, run_root, params), books))
    index = write_index(run_root, runs, profile)
    print(f"[report] {sum(r.status == 'ok' for r in runs)}/{len(runs)} notebooks ok; open {index}", flush=True)
    return [r.name for r in runs if r.status != "ok"]
