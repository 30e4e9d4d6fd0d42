"""Progress reporting that suits where the code runs.

tqdm (notebook widget in JupyterLab, a bar in a terminal) when someone is watching;
plain periodic log lines on stderr when headless (papermill, nbval, CI, a pipe), never a line per
update. `NEURO_PROGRESS=bar|log|off` overrides the guess.
"""
from __future__ import annotations

import os
import sys
import time


def progress_mode() -> str:
    """bar (someone watches), log (headless) or off."""
    forced = os.environ.get("NEURO_PROGRESS")
    if forced:
        return forced
    # the report runner and `make test` export NEURO_PROGRESS=log for the kernels they start
    if os.environ.get("CI") or "PYTEST_CURRENT_TEST" in os.environ:
        return "log"
    try:
        from IPython import get_ipython

        ip = get_ipython()
        if ip is not None and "IPKernelApp" in ip.config and sys.stdout.isatty() is False:
            return "bar"  # a Jupyter kernel someone is looking at: tqdm's widget
    except ImportError:
        pass
    return "bar" if sys.stderr.isatty() else "log"


class Progress:
    """`with Progress(total, desc) as p: p.update(n, loss=...)`; log lines at most every `every_s` seconds."""

    def __init__(self, total: float | None, desc: str = "", unit: str = "it", every_s: float = 10.0,
                 enabled: bool = True):
        """`enabled=False` reports nothing (a data-parallel worker other than rank 0)."""
        self.mode, self.total, self.desc, self.every_s = progress_mode() if enabled else "off", total, desc, every_s
        self.n, self._start = 0.0, time.time()
        self._last = self._start
        self.bar = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)

    def update(self, n: float = 1, **postfix):
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix({k: f"{v:.4g}" if isinstance(v, float) else v for k, v in postfix.items()},
                                     refresh=False)
        elif self.mode == "log" and time.time() - self._last >= self.every_s:
            self._last = time.time()
            done = f"{self.n:.0f}/{self.total:.0f}" if self.total else f"{self.n:.0f}"
            extras = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in postfix.items())
            # stderr: a command's stdout is its result (`neuro run --format json` must stay one JSON document)
            print(f"[{self.desc}] {done} {extras} ({time.time() - self._start:.0f}s)", file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
