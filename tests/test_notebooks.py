"""The analysis notebooks, executed by papermill against the tidy tables of real (tiny) studies run in this session
through the launcher's debug executor: every figure is written, the numbers drawn match the results read straight
from the run directories, and a study short of its planned runs stops a notebook with one line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xlmr_core.config import apply_overrides
from xlmr_core.errors import XlmrError
from xlmr_core.evaluate import finetune
from xlmr_core.study import jobs, notebooks, results, sweeps

NOTEBOOKS = ("capacity_dilution", "vocab_scaling", "sampling_alpha", "scaling_laws", "explore")
PACKAGED = (*NOTEBOOKS, "curse_lab")
"""Every notebook the package ships (curse_lab runs against a lab of derived languages: tests/test_lab.py)."""
STUDY = {"capacity_dilution": "capacity_dilution", "vocab_scaling": "vocab_scaling", "sampling_alpha": "sampling_alpha",
         "scaling_laws": "capacity_dilution", "explore": "capacity_dilution"}
"""The study each notebook is run against here (the laws on the capacity runs, as the demo study does)."""
PARAMETERS = ("study_root", "figures_dir", "planned_runs", "partial")
# the debug model for a few steps on short blocks: seconds per run; small tokenizers, cached across runs
TINY = ["model.size=debug", "schedule.steps=6", "data.seq_len=32", "data.batch_tokens=256",
        "data.micro_batch_blocks=0", "data.tokenizer_sample_lines=8000", "eval.max_blocks=2", "eval.draws=1",
        "log_interval=2", "checkpoint.interval=6"]

DDTP_TINY = dataclasses.replace(finetune.DDTP_CONFIG, max_train_examples=48, max_eval_examples=12, epochs=1,
                                max_len=32)
"""DDTP transfer in seconds: 48 English training examples, 12 test items per language."""


def _launch(cfgs, root: Path, sweep: str) -> None:
    out = jobs.launch(cfgs, "debug", jobs.LaunchOptions(), root / sweep, suites=("bpb", "tokenizer"),
                      echo=lambda *_: None)
    assert sorted(out.submitted) == sorted(c.name for c in cfgs)
    states = jobs.sweep_status(root / sweep)
    assert {n: s.state for n, s in states.items()} == {c.name: "done" for c in cfgs}


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory, demo_corpus) -> Path:
    """Tiny capacity (2 language sets × 2 widths × 2 seeds), vocabulary (2 sizes × 2 modes) and α (2 values)
    sweeps from ``xlmr_core.study.sweeps`` with the debug model, trained and evaluated for real."""
    from xlmr_core.evaluate.suites import evaluate_run

    root = tmp_path_factory.mktemp("results")
    # the matched design: the six targets alone and with six related languages, two widths, two seeds
    cap = [c for c in sweeps.get_sweep("capacity_dilution", "demo", (0, 1), root, demo_corpus)
           if c.name.startswith(("matched-none-", "matched-related-"))]
    twelve = ",".join(next(c.data.langs for c in cap if c.name.startswith("matched-related-")))
    # one tokenizer on the twelve languages for both sets (the demo preset shares one across its sets too)
    cap = [apply_overrides(c, TINY + ["data.vocab_size=2000", f"data.tokenizer_langs=[{twelve}]"]) for c in cap]
    assert len(cap) == 8
    _launch(cap, root, "capacity_dilution")
    # retrieval on a small parallel set and DDTP transfer from a few English examples (the launcher's default
    # suites would take minutes here)
    for c in cap:
        evaluate_run(c.run_dir, ["retrieval", "ddtp"], sets=("udhr_para",), max_items=30, unseen=(),
                     ddtp_cfg=DDTP_TINY, quiet=True)
    langs = ",".join(cap[0].data.langs)  # the five languages of the smallest set: shared tokenizers and shards
    voc = [apply_overrides(c, TINY + [f"data.langs=[{langs}]"])
           for c in sweeps.get_sweep("vocab_scaling", "demo", (0,), root, demo_corpus)
           if c.name.startswith(("v001k-", "v004k-"))]
    assert len(voc) == 4
    _launch(voc, root, "vocab_scaling")
    for c in voc:
        evaluate_run(c.run_dir, ["ddtp"], ddtp_cfg=DDTP_TINY, quiet=True)
    alpha = [apply_overrides(c, TINY + [f"data.langs=[{langs}]", "data.vocab_size=2000"])
             for c in sweeps.get_sweep("sampling_alpha", "demo", (0,), root, demo_corpus)
             if c.name.startswith(("a0.3-", "a1-"))]
    assert len(alpha) == 2
    _launch(alpha, root, "sampling_alpha")
    for study in ("capacity_dilution", "vocab_scaling", "sampling_alpha"):  # what `collect` does
        results.write_table(results.tidy(results.run_dirs(root / study)), root / study)
    return root


@pytest.fixture(scope="module")
def executed(tiny_results, tmp_path_factory) -> Path:
    figures = tmp_path_factory.mktemp("figures")
    out = notebooks.run_notebooks(NOTEBOOKS, {nb: tiny_results / s for nb, s in STUDY.items()}, figures,
                                  parameters={"n_boot": 20}, echo=lambda *_: None)
    assert sorted(out) == sorted(NOTEBOOKS)
    return figures


def _group_means(long: pd.DataFrame, group: str, metric: str, keys: list[str]) -> pd.Series:
    """Independent of plots: per run the mean over the group's trained languages, then the mean over seeds."""
    sub = long[(long["group"] == group) & long["seen"].astype(bool)]
    return sub.groupby(["run", *keys])[metric].mean().groupby(keys).mean()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_notebooks_write_every_figure(executed):
    for name in NOTEBOOKS:
        nb = json.loads((executed / f"{name}.ipynb").read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(c["execution_count"] for c in code), f"{name}: a cell did not run"
        assert not any(o.get("output_type") == "error" for c in code for o in c["outputs"])
        assert any(o.get("data", {}).get("image/png") for c in code for o in c["outputs"]), f"{name}: no figure shown"
        for fig in notebooks.FIGURES[name]:
            for ext in ("png", "pdf"):
                path = executed / f"{fig}.{ext}"
                assert path.exists() and path.stat().st_size > 5000, path
            assert len(pd.read_csv(executed / f"{fig}.csv")) >= 2, fig
    assert (executed / "capacity_dilution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_plotted_numbers_match_the_results_table(executed, tiny_results):
    # capacity: high- and low-resource targets' bits per byte below unigram per (languages, width), seeds
    # averaged, on the related-languages line of the matched design
    long = results.load_long(tiny_results / "capacity_dilution")
    assert set(long["n_langs"]) == {6, 12} and set(long["seed"]) == {0, 1}
    drawn = pd.read_csv(executed / "capacity_dilution.csv")
    for group in ("high", "low"):
        want = _group_means(long, group, "bpb_below_unigram", ["n_langs", "width"])
        assert len(want) == 4
        for (n, w), value in want.items():
            got = drawn[(drawn["panel"] == f"matched:bpb_below_unigram:{group}") & (drawn["x"] == n)
                        & drawn["series"].str.startswith(f"width={w} ") & drawn["series"].str.endswith(", related")]
            assert len(got) == 1 and got["y"].iloc[0] == pytest.approx(value, rel=1e-9)
            assert got["n"].iloc[0] == 2  # two seeds
    # the baseline itself: the unigram bits per byte of the same tokens, above the model's where it learned
    both = long.dropna(subset=["unigram_bpb"])
    np.testing.assert_allclose(both["bpb_below_unigram"], both["unigram_bpb"] - both["bpb"], rtol=1e-9)
    retr = drawn[drawn["panel"].str.startswith("matched:retrieval:")]
    assert len(retr) and retr["y"].between(0, 1).all()

    # paired gains of + related over the targets alone (same width and seed, same held-out tokens): per language
    # the difference of bits below unigram, then the group mean per seed, then the seed mean; each with its s.e.
    pairs = results.paired_differences(tiny_results / "capacity_dilution")
    assert len(pairs) == 2 * 2 * 6 and (pairs["se"] > 0).all()  # widths × seeds × the six targets
    below = long.set_index(["width", "seed", "relation", "lang"])["bpb_below_unigram"]
    for _, p in pairs.iterrows():
        want = below[(p["width"], p["seed"], "related", p["lang"])] - below[(p["width"], p["seed"], "none", p["lang"])]
        assert p["diff"] == pytest.approx(want, abs=2e-4)  # per-block sums are stored to 4 decimals
    drawn = pd.read_csv(executed / "capacity_dilution_paired.csv")
    for group in ("high", "low"):
        sub = pairs[pairs["group"] == group]
        for w, value in sub.groupby(["width", "seed"])["diff"].mean().groupby("width").mean().items():
            got = drawn[(drawn["panel"] == f"matched:{group}") & (drawn["x"] == w) & (drawn["series"] == "related")]
            assert len(got) == 1 and got["y"].iloc[0] == pytest.approx(value, rel=1e-9)
            assert 0 < got["eval_se"].iloc[0] < 0.1 and got["n"].iloc[0] == 2

    # vocabulary: mean bits per byte over the trained languages per (vocabulary, mode); embedding share
    long = results.load_long(tiny_results / "vocab_scaling")
    drawn = pd.read_csv(executed / "vocab_scaling.csv")
    trained = long[long["seen"].astype(bool)]
    want = trained.groupby(["run", "vocab", "mode"])["bpb"].mean().groupby(["vocab", "mode"]).mean()
    for (v, mode), value in want.items():
        got = drawn[(drawn["panel"] == "bpb") & (drawn["series"] == mode) & (drawn["x"] == v)]
        assert got["y"].iloc[0] == pytest.approx(value, rel=1e-9)
    runs = results.load(tiny_results / "vocab_scaling")
    share = drawn[drawn["panel"] == "embedding_share"].merge(runs, left_on=["x", "series"], right_on=["vocab", "mode"])
    np.testing.assert_allclose(share["y"], share["params_embedding"] / share["params_total"])
    fert = drawn[drawn["panel"] == "tokens_per_char"]
    assert fert["y"].between(0.05, 1.5).all()
    # more pieces, fewer tokens per character (the same text, a larger unigram vocabulary)
    ft = fert[fert["series"] == "fixed_transformer"].sort_values("x")["y"].to_numpy()
    assert ft[-1] < ft[0]

    # α: per group and α
    long = results.load_long(tiny_results / "sampling_alpha")
    drawn = pd.read_csv(executed / "sampling_alpha.csv")
    for group in ("high", "low"):
        for a, value in _group_means(long, group, "bpb", ["alpha"]).items():
            got = drawn[(drawn["panel"] == "bpb") & (drawn["series"] == group) & np.isclose(drawn["x"], a)]
            assert got["y"].iloc[0] == pytest.approx(value, rel=1e-9)

    # transfer: English and zero-shot DDTP accuracy per (languages, width), seeds averaged, beside chance
    long = results.load_long(tiny_results / "capacity_dilution")
    drawn = pd.read_csv(executed / "capacity_dilution_transfer.csv")
    en = long[long["lang"] == "en"].groupby(["run", "n_langs", "width"])["eval.ddtp.accuracy"].mean()
    want = en.groupby(["n_langs", "width"]).mean()
    assert len(want) == 4
    for (n, w), value in want.items():
        got = drawn[(drawn["panel"] == "matched:transfer:en") & (drawn["x"] == n)
                    & (drawn["series"] == f"width={w}, related")]
        assert len(got) == 1 and got["y"].iloc[0] == pytest.approx(value, rel=1e-9) and got["n"].iloc[0] == 2
    chance = drawn[drawn["series"] == "chance"]["y"]
    assert len(chance) and np.allclose(chance, 1 / len(finetune.get_task("ddtp").labels))
    drawn = pd.read_csv(executed / "vocab_scaling_transfer.csv")
    assert drawn[drawn["series"] != "chance"]["y"].dropna().between(0, 1).all()

    # training curves: the logged steps of every capacity point, loss in bits
    curves = results.load_curves(tiny_results / "capacity_dilution")
    drawn = pd.read_csv(executed / "capacity_dilution_curves.csv")
    want = curves.groupby(["point", "tokens"])["loss_bits"].mean()
    got = drawn.set_index(["series", "x"])["y"]
    np.testing.assert_allclose(got.loc[want.index].to_numpy(), want.to_numpy(), rtol=1e-9)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_study_short_of_its_plan_stops_the_notebook_in_one_line(tiny_results, tmp_path):
    root = tiny_results / "capacity_dilution"
    with pytest.raises(XlmrError) as e:
        notebooks.run_notebook("capacity_dilution", root, tmp_path, planned_runs=9)
    msg = str(e.value)
    assert "\n" not in msg and f"{root.resolve()}: 8 of 9 planned runs have results; finish the study" in msg
    assert "pass partial=True to draw what is there" in msg and not list(tmp_path.glob("*.png"))
    # the plan by run names: the missing one is named; partial draws what is there
    alpha = tiny_results / "sampling_alpha"
    with pytest.raises(XlmrError, match=r"2 of 3 planned runs .*\(without: a0.7-s0\)$"):
        notebooks.run_notebook("sampling_alpha", alpha, tmp_path,
                               planned_runs=[*results.per_run(results.read_table(alpha))["run"], "a0.7-s0"])
    names = [*results.per_run(results.read_table(root))["run"], "matched-related-h9-s0"]
    out = notebooks.run_notebook("explore", root, tmp_path, planned_runs=names, partial=True)
    assert out == tmp_path / "explore.ipynb" and (tmp_path / "explore_curves.png").exists()


def test_notebooks_are_package_data_linked_from_the_repository():
    repo = Path(__file__).resolve().parents[1]
    assert sorted(notebooks.notebook_names()) == sorted(PACKAGED)
    for name in PACKAGED:
        path = notebooks.notebook_path(name)
        assert path.parent == Path(notebooks.__file__).parent / "nb"
        assert (repo / "notebooks" / f"{name}.ipynb").resolve() == path.resolve()  # jupyter lab notebooks/…
    with pytest.raises(XlmrError, match="no notebook 'nope'; the notebooks are capacity_dilution"):
        notebooks.notebook_path("nope")


@pytest.mark.parametrize("name", PACKAGED)
def test_notebooks_are_stored_without_outputs(name):
    path = notebooks.notebook_path(name)
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code
    for c in code:
        assert c["outputs"] == [] and c["execution_count"] is None, f"{path}: commit it without outputs"
        src = "".join(c["source"])
        assert "def " not in src and "lambda" not in src, f"{path}: notebooks call library functions only"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    src = "".join(params[0]["source"])
    for key in PARAMETERS:
        assert f"{key} =" in src
    assert 'planned_runs = None' in src and "partial = False" in src
    # the defaults work from the repository root: papermill notebooks/<name>.ipynb out.ipynb
    assert f'study_root = "results/{notebooks.ANALYSIS[name]}"' in src and "../" not in src
    # the results come from the study's table, figures from its frames: no field paths of final.json
    body = "".join("".join(c["source"]) for c in code)
    assert "results.read_table(study_root, planned_runs=planned_runs, partial=partial)" in body
    assert "eval." not in body and "load_long" not in body and "final.json" not in body
