"""The study's tidy results table (``results.tidy``, ``write_table``, ``read_table``, ``per_run``, ``per_lang``) on
copies of the finished fixture run: every value of final.json once, the types restored exactly from disk, one
clear line when the table is missing or short of the planned runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xlmr_core.errors import XlmrError
from xlmr_core.study import plots, results
from xlmr_core.train import rundir

FIXTURE = Path(__file__).parent / "fixtures" / "run_v0"


def _run(study: Path, name: str, tags: list[str]) -> Path:
    """A copy of the fixture run named ``name`` (config and final.json) with ``tags``."""
    run = study / name
    shutil.copytree(FIXTURE, run)
    for path in (run / rundir.CONFIG_FILE, rundir.final_path(run)):
        d = json.loads(path.read_text())
        cfg = d["config"] if "config" in d else d
        cfg["name"], cfg["tags"] = name, tags
        path.write_text(json.dumps(d))
    return run


@pytest.fixture()
def study(tmp_path) -> Path:
    root = tmp_path / "results" / "capacity_dilution"
    _run(root, "a-s0", ["sweep=capacity_dilution", "width=8", "design=matched", "high=en,de"])
    _run(root, "a-s1", ["sweep=capacity_dilution", "width=8", "high=en"])  # no design tag: NaN in that column
    return root


def test_tidy_has_one_row_per_run_language_and_metric(study):
    t = results.tidy(results.run_dirs(study))
    assert list(t.columns[:6]) == list(results.TABLE_COLUMNS)
    assert t["value"].dtype == np.float64 and t["se"].dtype == np.float64
    assert not t.duplicated(["run_dir", "lang", "metric"]).any()
    assert set(t["run"]) == {"a-s0", "a-s1"} and set(t["lang"]) == {"", "en", "de", "fr"}
    raw = json.loads(rundir.final_path(study / "a-s0").read_text())
    row = t[t["run"] == "a-s0"].set_index(["lang", "metric"])
    assert row.loc[("fr", "retrieval.udhr_para.to_pivot"), "value"] == raw["eval"]["retrieval"]["sets"]["udhr_para"][
        "fr"]["to_pivot"]
    assert row.loc[("de", "bpb"), "value"] == raw["per_lang"]["de"]["bpb"]
    assert row.loc[("", "tokens"), "value"] == raw["tokens"] and row.loc[("en", "seen"), "value"] == 1.0
    assert not any(".settings." in m for m in t["metric"])  # what a suite ran with is not a result
    # the run's attributes on every row, as results.load names them
    assert (t["width"] == 8).all() and (t["status"] == "done").all() and set(t["n_langs"]) == {2}
    assert t[t["run"] == "a-s1"]["design"].isna().all()


def test_table_round_trips_exactly_and_moves_with_the_study(study, tmp_path):
    t = results.tidy(results.run_dirs(study))
    path = results.write_table(t, study)
    assert path == study / results.TABLE_FILE
    schema = json.loads((study / results.SCHEMA_FILE).read_text())
    assert schema["runs"] == schema["runs_done"] == 2 and schema["columns"]["value"]["dtype"] == "float64"
    pd.testing.assert_frame_equal(results.read_table(study), t)
    assert results.run_dirs(study) == [study / "a-s0", study / "a-s1"]  # the table is no run
    moved = tmp_path / "elsewhere" / "capacity_dilution"
    shutil.move(study, moved)
    back = results.read_table(moved)
    assert set(back["run_dir"]) == {str(moved.resolve() / "a-s0"), str(moved.resolve() / "a-s1")}
    pd.testing.assert_frame_equal(back.drop(columns="run_dir"), t.drop(columns="run_dir"))


def test_per_lang_and_per_run_agree_with_load_long_and_load(study):
    t = results.tidy(results.run_dirs(study))
    long, want = results.per_lang(t), results.load_long(study)
    assert len(long) == len(want) == 2 * 3 and list(long["lang"]) == list(want["lang"])
    for col in want.columns:
        ours = col.removeprefix("eval.")
        if ours in long.columns and pd.api.types.is_numeric_dtype(want[col]) and ".settings." not in col:
            np.testing.assert_allclose(long[ours].to_numpy(float), want[col].to_numpy(float), err_msg=col)
    assert list(long["group"]) == list(want["group"])
    assert long["seen"].dtype == bool and list(long["seen"]) == [True, True, False] * 2  # de, en; fr: evaluated
    runs = results.per_run(t)
    assert list(runs["run"]) == ["a-s0", "a-s1"]
    np.testing.assert_allclose(runs["bpb_mean"], results.load(study)["bpb_mean"])
    pd.testing.assert_frame_equal(plots.frame(t), long)


def test_read_table_says_what_is_missing_in_one_line(study, tmp_path):
    with pytest.raises(XlmrError, match=r"no results table \(results.csv\); write it with xlmr-sweep collect "
                                        r"capacity_dilution .*python sweeps/launch.py collect") as e:
        results.read_table(study)
    assert "\n" not in str(e.value)
    with pytest.raises(XlmrError, match="no such study directory"):
        results.read_table(tmp_path / "nowhere")
    assert results.read_table(tmp_path / "nowhere", missing_ok=True).empty
    t = results.tidy(results.run_dirs(study))
    results.write_table(t, study, planned_runs=6)
    msg = (f"{study}: 2 of 6 planned runs have results; finish the study (status/run) or pass partial=True to draw "
           "what is there")
    with pytest.raises(XlmrError) as e:
        results.read_table(study)  # the plan that collect recorded
    assert str(e.value) == msg
    assert len(results.read_table(study, partial=True)) == len(t)
    assert len(results.read_table(study, planned_runs=2)) == len(t)
    with pytest.raises(XlmrError, match=r"1 of 2 planned runs have results; .* \(without: a-s2\)$"):
        results.read_table(study, planned_runs=["a-s0", "a-s2"])
    (study / results.SCHEMA_FILE).unlink()
    with pytest.raises(XlmrError, match="no results.schema.json beside it"):
        results.read_table(study)


def test_unfinished_runs_keep_their_progress_rows(study):
    rundir.final_path(study / "a-s1").unlink()
    t = results.tidy(results.run_dirs(study))
    part = t[t["run"] == "a-s1"]
    assert set(part["status"]) == {"started"} and set(part["lang"]) == {""}
    assert {"steps", "tokens", "flops", "wall_s"} <= set(part["metric"])
    results.write_table(t, study)
    with pytest.raises(XlmrError, match="1 of 2 planned runs"):
        results.read_table(study, planned_runs=2)
    long = results.per_lang(results.read_table(study, planned_runs=2, partial=True))
    assert set(long["run"]) == {"a-s0"}
