"""Repetition counted: effective data (Muennighoff et al. 2023), epochs per language in final.json, the results
and fitting tables, and the plan's warning and refusal before any run starts."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import TEST_LANGS, TEST_SAMPLE_LINES, TEST_VOCAB

from xlmr_core.config import load_config
from xlmr_core.data import repetition
from xlmr_core.errors import XlmrError
from xlmr_core.study import laws, results, sweeps
from xlmr_core.train import rundir

REPO = Path(__file__).resolve().parents[1]
LAUNCH = [sys.executable, str(REPO / "sweeps" / "launch.py")]


def test_effective_data_at_1_4_and_16_epochs():
    U = 1e6
    # Muennighoff et al. 2023 with R* = 15.4: 1 epoch is all unique, 4 epochs are worth 3.73 U, 16 epochs 10.6 U
    assert laws.effective_data(1 * U, U) == pytest.approx(1.0 * U)
    assert round(laws.effective_data(4 * U, U) / U, 2) == 3.73
    assert round(laws.effective_data(16 * U, U) / U, 1) == 10.6
    # below one epoch nothing is repeated; the value saturates at U·(1 + R*); an unknown U leaves D as it is
    assert laws.effective_data(0.3 * U, U) == pytest.approx(0.3 * U)
    assert laws.effective_data(1e6 * U, U) == pytest.approx(U * (1 + laws.R_STAR), rel=1e-6)
    assert list(laws.effective_data([2e6, 5e5], [1e6, math.nan])) == pytest.approx(
        [laws.effective_data(2e6, 1e6), 5e5])


def test_repetition_counts_seen_tokens_and_epochs():
    rep = repetition(1_000_000, {"en": 0.75, "gl": 0.25, "xx": 0.0}, {"en": 3_000_000, "gl": 50_000, "xx": 10})
    assert set(rep) == {"en", "gl"}  # a language never sampled is not trained on
    assert rep["gl"] == {"unique_tokens": 50_000, "tokens_seen": 250_000.0, "epochs": 5.0}
    assert rep["en"]["epochs"] == pytest.approx(0.25)


def _long_table() -> pd.DataFrame:
    # two runs of two training languages: gl repeated 8 epochs in r1, nothing repeated in r2
    rows = []
    for run, tokens in (("r1", 1_000_000), ("r2", 100_000)):
        for lang, prob, unique in (("en", 0.6, 10_000_000), ("gl", 0.4, 50_000)):
            rows.append({"run": run, "sweep": "s", "status": "done", "seen": True, "n_langs": 2,
                         "params_non_embedding": 1e6, "tokens": tokens, "prob": prob, "lang": lang,
                         "unique_tokens": unique, "bpb": 1.0, "group": "high" if lang == "en" else "low"})
    return pd.DataFrame(rows)


def test_fitting_table_has_effective_data_columns():
    t = laws.fitting_table(_long_table())
    r1gl = t[(t["run"] == "r1") & (t["lang"] == "gl")].iloc[0]
    assert r1gl["D_t"] == pytest.approx(400_000)
    assert r1gl["D_t_eff"] == pytest.approx(laws.effective_data(400_000, 50_000)) and r1gl["repeated"]
    r1en = t[(t["run"] == "r1") & (t["lang"] == "en")].iloc[0]
    assert r1en["D_t_eff"] == r1en["D_t"] and not r1en["repeated"]
    # D_eff: the run's tokens less what repetition takes from its languages
    assert r1en["D_eff"] == pytest.approx(1_000_000 - 400_000 + r1gl["D_t_eff"])
    r2 = t[t["run"] == "r2"]
    assert (r2["D_eff"] == r2["D"]).all() and (r2["D_t_eff"] == r2["D_t"]).all()
    g = laws.fitting_table(_long_table(), aggregate="group")
    assert {"D_t_eff", "D_eff", "repeated"} <= set(g.columns)


def test_old_final_json_loads_without_repetition():
    old = {"name": "r", "run_dir": "/x/r", "steps": 3, "tokens": 10, "per_lang": {"en": {"bpb": 1.0}}}
    rec = rundir.RunRecord.from_dict(old)
    assert rec.repetition == {} and rec.max_epochs is None and "repetition" not in rec.extra
    rec.repetition = {"en": {"unique_tokens": 5, "tokens_seen": 10.0, "epochs": 2.0}}
    again = rundir.RunRecord.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert again.repetition == rec.repetition and again.max_epochs == 2.0


def _plan(epochs: float, exact: bool = True) -> sweeps.RunPlan:
    cfg = load_config(None, ["name=big-s0", "data.corpus=/data/mine", "data.vocab_size=8000"])
    rep = {"gl": {"unique_tokens": 61_234, "tokens_seen": 61_234 * epochs, "epochs": epochs},
           "en": {"unique_tokens": 10**7, "tokens_seen": 1e6, "epochs": 0.1}}
    return sweeps.RunPlan(cfg, 1e6, 1e12, None, rep, exact)


def test_too_small_a_corpus_is_refused_in_one_line_naming_language_tokens_epochs_and_flag():
    sweeps.check_repetition([_plan(3.9)], "gpu")  # within the limit: nothing to say
    with pytest.raises(XlmrError) as e:
        sweeps.check_repetition([_plan(3.9), _plan(233.0)], "gpu")
    msg = str(e.value)
    assert "\n" not in msg
    for part in ("language gl", "61,234 unique training tokens", "233.0 epochs", "limit 4", "--allow-repeat",
                 "big-s0", "/data/mine"):
        assert part in msg, part
    sweeps.check_repetition([_plan(233.0)], "gpu", allow_repeat=True)


def test_every_preset_over_4_epochs_states_why():
    for name, p in sweeps.PRESETS.items():
        assert p.max_epochs <= sweeps.WARN_EPOCHS or p.repeat_reason, name
    with pytest.raises(XlmrError, match="repeat_reason"):
        import dataclasses

        dataclasses.replace(sweeps.PRESETS["demo"], max_epochs=10.0, repeat_reason="")


def test_tiny_run_records_epochs_per_language_in_final_json_and_results(demo_corpus, tmp_path):
    from xlmr_core.train.trainer import train

    run_dir = tmp_path / "run"
    cfg = load_config(None, [
        f"run_dir={run_dir}", "model.size=debug", f"data.corpus={demo_corpus}", f"data.langs={','.join(TEST_LANGS)}",
        f"data.vocab_size={TEST_VOCAB}", f"data.tokenizer_sample_lines={TEST_SAMPLE_LINES}", "data.seq_len=64",
        "data.batch_tokens=512", "schedule.steps=6", "schedule.warmup_steps=2", "log_interval=2",
        "checkpoint.interval=6", "eval.max_blocks=2", "eval.draws=1", "precision.device=cpu"])
    train(cfg)
    final = json.loads((run_dir / "final.json").read_text())
    rep = final["repetition"]
    assert set(rep) == set(TEST_LANGS)
    for lang, r in rep.items():
        assert r["unique_tokens"] == final["per_lang"][lang]["train_tokens"] > 0
        assert r["tokens_seen"] == pytest.approx(final["tokens"] * final["per_lang"][lang]["prob"])
        assert r["epochs"] == pytest.approx(r["tokens_seen"] / r["unique_tokens"])
    assert sum(r["tokens_seen"] for r in rep.values()) == pytest.approx(6 * 512)
    # the results tables carry them: the most epochs per run, and per language
    row = results.load(tmp_path).iloc[0]
    assert row["max_epochs"] == pytest.approx(max(r["epochs"] for r in rep.values()))
    long = results.load_long(tmp_path).set_index("lang")
    assert long.loc["ar", "epochs"] == pytest.approx(rep["ar"]["epochs"])
    assert long.loc["ar", "unique_tokens"] == rep["ar"]["unique_tokens"]


def test_plan_prints_epochs_per_language_and_run_refuses_before_training(demo_corpus, tmp_path):
    common = ["--scale", "demo", "--corpus", str(demo_corpus), "--root", str(tmp_path)]
    out = subprocess.run([*LAUNCH, "plan", "capacity_dilution", *common], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    assert "max epochs" in out.stdout and "epochs per training language" in out.stdout
    assert "no language above 4 epochs" in out.stdout  # the demo preset on its own corpus
    big = ["--set", "schedule.steps=40000", "--only", "matched-none-L006-h64-*", "--suites", "none"]
    out = subprocess.run([*LAUNCH, "plan", "capacity_dilution", *common, *big], capture_output=True, text=True,
                         timeout=600)
    limit = sweeps.PRESETS["demo"].max_epochs  # above 4 with the preset's stated reason, which plan shows
    assert "warning: 1 of 1 runs train" in out.stdout and f"refuses above {limit:g} epochs" in out.stdout
    assert sweeps.PRESETS["demo"].repeat_reason in out.stdout
    out = subprocess.run([*LAUNCH, "run", "capacity_dilution", *common, *big, "--executor", "local"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: language bg has") and "--allow-repeat" in lines[0]
    assert not (tmp_path / "capacity_dilution").exists() or not any((tmp_path / "capacity_dilution").iterdir())
