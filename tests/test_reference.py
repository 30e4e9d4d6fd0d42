"""Recorded reference results (data/reference/) and the report index that shows them."""
import json
from html.parser import HTMLParser

import pytest

from neuro_lib.bench.reference import (REFERENCE_DIR, beside, check_reference, label, load_reference,
                                       reference_names, value)
from neuro_lib.errors import NeuroError
from neuro_lib.workbook import NotebookRun, headline, write_index, write_metrics


@pytest.mark.parametrize("name", reference_names())
def test_every_committed_reference_follows_the_bench_schema(name):
    ref = load_reference(name)
    assert ref["results"] and all(isinstance(r["value"], (int, float)) for r in ref["results"])
    prov = ref.get("provenance")
    if prov is not None:  # transcribed by hand: must say from which dated run
        assert prov["kind"] == "transcribed" and prov["date"] == ref["date"]
        assert prov["command"].startswith("neuro bench " + ref["suite"])
        assert "transcribed" in label(ref) and prov["command"] in label(ref)


def test_reference_lookup_and_errors(tmp_path):
    assert "lm_gpt_plays_200s" in reference_names() and (REFERENCE_DIR / "lm_gpt_plays_200s.json").is_file()
    ref = load_reference("lm_gpt_plays_200s")
    assert value(ref, "gpt val bpb") == 2.455 and value(ref, "xz -9e (given train)") == 2.562
    assert beside(ref, "gpt val bpb") == {"value": 2.455, "unit": "bits/byte", "label": label(ref)}
    assert beside(ref, "gpt val loss", missing_ok=True) is None
    with pytest.raises(NeuroError, match="no result 'gpt val loss'"):
        value(ref, "gpt val loss")
    with pytest.raises(NeuroError, match="no reference result 'nope'"):
        load_reference("nope")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(NeuroError, match="not valid JSON"):
        load_reference("bad", tmp_path)
    (tmp_path / "thin.json").write_text(json.dumps({"suite": "lm", "results": []}))
    with pytest.raises(NeuroError, match=r"lacks the bench report field\(s\) \['machine', 'git', 'date', 'config'\]"):
        load_reference("thin", tmp_path)
    with pytest.raises(NeuroError, match="needs name, value and unit"):
        check_reference({**ref, "results": [{"name": "x", "value": 1}]})


class _Cells(HTMLParser):
    """Text of every innermost table cell."""

    def __init__(self):
        super().__init__()
        self.cells, self.depth, self.text = [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "th"):
            self.depth, self.text = self.depth + 1, []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.cells.append("".join(self.text).strip())
            self.depth -= 1

    def handle_data(self, data):
        self.text.append(data)


def test_index_shows_named_figures_never_raw_dicts(tmp_path):
    ref = load_reference("lm_gpt_plays_200s")
    book = tmp_path / "00_quick"
    book.mkdir()
    write_metrics(str(book), {"scan_rows": [{"scan": "fused", "ms": 3.1}], "config": {"a": 1}, "val_bpb": 2.91},
                  [headline("GPT val bpb", 2.9134, "bits/byte", beside(ref, "gpt val bpb")),
                   headline("params", 106_496, "params")])
    metrics = json.loads((book / "metrics.json").read_text())
    assert metrics["headline"][0]["reference"]["value"] == 2.455 and metrics["val_bpb"] == 2.91
    runs = [NotebookRun("00_quick", "ok", 12.0, metrics=metrics),
            NotebookRun("04_flat", "ok", 3.0, metrics={"rows": [1, 2], "acc": 0.5, "by_seed": {"0": 0.4}}),
            NotebookRun("05_broken", "failed", 1.0, error="RuntimeError: boom")]
    page = write_index(tmp_path, runs, "smoke").read_text()
    parser = _Cells()
    parser.feed(page)
    cells = [c for c in parser.cells if c]
    assert not [c for c in cells if c[:1] in "[{"], "a cell holds a raw list or dict"
    assert "GPT val bpb" in cells and "2.913" in cells and "106,496" in cells and "bits/byte" in cells
    assert any(c.startswith("2.455 bits/byte") and "transcribed" in c for c in cells)
    assert 'href="00_quick/00_quick.html"' in page and 'href="00_quick/metrics.json"' in page
    # 00: scan_rows and config stay in the file (val_bpb too); 04 wrote no headline: its scalars, rows/by_seed left
    assert "3 more in metrics.json" in page and "2 more in metrics.json" in page
    assert "acc" in cells and "0.5" in cells
    assert "RuntimeError: boom" in cells
