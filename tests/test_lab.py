"""The curse_lab study (xlmr_core.study.lab): its grid at the cpu scale against what the issue asks of it, the
source-size check, and a tiny lab trained, collected, analysed and drawn end to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xlmr_core.errors import XlmrError
from xlmr_core.study import cli as studycli
from xlmr_core.study import jobs, lab, plots, results, studies
from xlmr_core.study.sweeps import param_counts

WORDS = ("the kernel maps each page of memory once and frees it when the last user goes away drivers register "
         "their devices with the bus which probes them in order a module exports symbols that others import at "
         "load time so that interrupts reach the handler of the device").split()


def _source(path: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            sents = [" ".join(rng.choice(WORDS, size=rng.integers(5, 14))).capitalize() + "." for _ in range(3)]
            f.write(f"Paragraph {i}. " + " ".join(sents) + "\n")
    return path


def test_cpu_grid_is_the_design_the_lab_needs(tmp_path, monkeypatch):
    monkeypatch.setattr(lab, "check", lambda scale, corpus=None: {})
    src = _source(tmp_path / "src" / "en.txt", 50)
    runs = lab.curse_lab("cpu", (0,), tmp_path / "results", corpus=src)
    s = lab.SCALES["cpu"]
    tags = [results.parse_tags(c.tags) for c in runs]
    matched = [(c, t) for c, t in zip(runs, tags) if t["arm"] == "matched"]
    fixed = [(c, t) for c, t in zip(runs, tags) if t["arm"] == "fixed"]
    # K in {1, 2, 4, 8, 16} at every width and level (K = 1 once per width), plus the fixed-total arm at one width
    assert sorted({c.derive.k for c in runs}) == [1, 2, 4, 8, 16]
    assert len(matched) == len(s.widths) * (1 + len(lab.LEVELS) * 4) and len(fixed) == len(lab.LEVELS) * 4
    assert {t["width"] for _, t in fixed} == {s.fixed_width}
    # the levels are the four the issue names
    assert {(c.derive.share, c.derive.order) for c, t in matched if c.derive.k > 1} == {
        (1.0, "none"), (0.5, "none"), (0.0, "none"), (0.0, "inverted")}
    # matched: every language trains lang_tokens (the run K times that); fixed: the run trains lang_tokens in all
    for c, _ in matched:
        assert abs(c.schedule.steps * c.data.batch_tokens - c.derive.k * s.lang_tokens) < c.data.batch_tokens
    for c, _ in fixed:
        assert abs(c.schedule.steps * c.data.batch_tokens - s.lang_tokens) < c.data.batch_tokens
    # >= 3 widths spanning >= 16x in non-embedding parameters; tokens per parameter from ~10 to >= 200
    n = {w: param_counts(lab._model(s, w), s.vocab_size)["non_embedding"] for w in s.widths}
    assert len(n) >= 3 and max(n.values()) / min(n.values()) >= 16
    per_param = {w: s.lang_tokens / v for w, v in n.items()}
    assert max(per_param.values()) >= 200 and 5 <= min(per_param.values()) <= 15
    # suites: retrieval between languages wherever there are two, DDTP at one width's matched runs
    suites = {c.name: lab.suites("cpu", c) for c in runs}
    assert all(("retrieval" in suites[c.name]) == (c.derive.k >= 2) for c in runs)
    assert {t["width"] for c, t in zip(runs, tags) if "ddtp" in suites[c.name]} == {s.ddtp_width}
    # one study of the table, its runs in <results>/curse_lab
    study = studies.get_study("curse_lab", "cpu", root=tmp_path / "results", corpus=src)
    assert len(study.runs) == len(runs) and study.root == tmp_path / "results" / "curse_lab"


def test_a_source_too_small_is_refused_in_one_line(tmp_path):
    src = _source(tmp_path / "small" / "en.txt", 2000)
    with pytest.raises(XlmrError, match=r"would repeat each .* times \(at most 4\): give a larger source"):
        lab.curse_lab("cpu", (0,), tmp_path / "results", corpus=src)


def test_tiny_lab_end_to_end(tmp_path, monkeypatch):
    src = _source(tmp_path / "src" / "en.txt", 3000)
    tiny = lab.LabScale(source="lab", ks=(1, 2), widths=(8, 16), levels=("same", "disjoint"), lang_tokens=4000,
                        fixed_width=8, vocab_size=120, heldout_lines=40, eval_masked=300, eval_max_masked=600,
                        seq_len=32, batch_tokens=256, retrieval=True, ddtp_width=None)
    monkeypatch.setitem(lab.SCALES, "demo", tiny)
    monkeypatch.setenv("XLMR_CACHE", str(tmp_path / "cache"))
    study = studies.get_study("curse_lab", "demo", root=tmp_path / "results", corpus=src)
    study = dataclasses.replace(study, runs=tuple(dataclasses.replace(
        c, data=dataclasses.replace(c.data, tokenizer_sample_lines=3000)) for c in study.runs))
    bad = studycli.launch_study(study, "debug", jobs.LaunchOptions(), echo=lambda *_: None)
    assert not bad, bad
    studycli.collect_study(study, echo=lambda *_: None)
    table = results.read_table(study.root, planned_runs=study.planned_runs)
    labt = lab.lab_table(table)
    # the K = 1 run counts in both levels; D_t is a language's own tokens: about lang_tokens in the matched arm,
    # lang_tokens / K in the fixed one
    assert set(labt[labt["base"]]["level"]) == {"same", "disjoint"}
    m = labt[(labt["arm"] == "matched")]
    assert np.allclose(m["D_t"], tiny.lang_tokens, rtol=0.25)
    f = labt[labt["arm"] == "fixed"]
    assert np.allclose(f["D_t"] * f["K"], tiny.lang_tokens, rtol=0.25)
    points = lab.run_points(labt)
    assert len(points) == 2 * (2 + 2) + 2 and points["loss"].between(0.5, 20).all()
    assert (points["loss_se"] > 0).all()
    # share 1: every language is the source, so retrieval between them is exact; share 0: no shared ids
    same = points[(points["level"] == "same") & (points["K"] > 1) & (points["arm"] == "matched")]
    assert (same["retrieval"] == 1.0).all()
    effects = lab.k_effects(points)
    assert set(effects["K"]) == {2} and (effects["se"] > 0).all()
    fits = lab.fit_levels(points, n_boot=5)
    assert all(fits[lv].startswith("not fitted: 5 runs") for lv in ("same", "disjoint"))  # too few to fit
    fig = plots.k_curves(points)
    drawn = fig.plotted_data
    assert set(drawn["panel"]) == {"same", "disjoint"} and len(fig.axes) == 2
    got = drawn[(drawn["panel"] == "same") & (drawn["series"] == "matched h8")].set_index("x")["y"]
    want = points[(points["level"] == "same") & (points["width"] == 8) & (points["arm"] == "matched")]
    assert np.allclose(got.sort_index().to_numpy(), want.groupby("K")["loss"].mean().sort_index().to_numpy())
    # the notebook draws from the table alone (few bootstrap refits: seconds)
    study = dataclasses.replace(study, notebooks=(studies.NotebookSpec("curse_lab", {"n_boot": 8}),))
    out = studycli.study_figures(study, tmp_path / "figures", echo=lambda *_: None)
    assert (tmp_path / "figures" / "curse_lab_k_curves.png").exists()
    saved = pd.read_csv(tmp_path / "figures" / "curse_lab_effects.csv")
    assert len(saved) == len(effects)
    nb = json.loads(Path(out["curse_lab"]).read_text())
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
