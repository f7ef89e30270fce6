"""The run directory and its records: a run that the trainer of an earlier version left still loads in full.

``fixtures/run_v0`` is a complete run (4 steps of a 1-layer, 8-wide model on en and de, with the bpb,
retrieval and tokenizer suites) written by the trainer and ``xlmr eval`` before ``rundir`` existed; its
paths name the directory it was written in, so reading it here is also reading a moved run directory.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from xlmr_core.errors import XlmrError
from xlmr_core.study import jobs, results
from xlmr_core.train import rundir

FIXTURE = Path(__file__).parent / "fixtures" / "run_v0"


@pytest.fixture()
def old_run(tmp_path) -> Path:
    run = tmp_path / "sweep" / "run_v0"
    shutil.copytree(FIXTURE, run)
    return run


def en_se_is_missing(record) -> bool:
    return record.per_lang["en"].bpb_se is None and record.per_lang["en"].blocks is None


def test_old_final_json_round_trips_through_the_typed_record(old_run):
    raw = json.loads(rundir.final_path(old_run).read_text())
    record = rundir.read_final(old_run)
    # every key kept as it was, except the one renamed since: per-language ``in_training`` is ``seen`` now
    renamed = {lang: {("seen" if k == "in_training" else k): v for k, v in r.items()}
               for lang, r in raw["per_lang"].items()}
    out = record.to_dict()
    assert "in_training" in raw["per_lang"]["en"]
    assert {k: v for k, v in out.items() if k in raw} == dict(raw, per_lang=out["per_lang"])
    for lang, r in out["per_lang"].items():  # fields recorded since then read as missing: None, never 0
        assert {k: v for k, v in r.items() if k in renamed[lang]} == renamed[lang]
        assert all(r[k] is None for k in set(r) - set(renamed[lang])), r
    assert out["repetition"] == {} and record.max_epochs is None and en_se_is_missing(record)
    rundir.write_final(old_run, record)
    assert rundir.read_final(old_run).to_dict() == record.to_dict()
    assert record.steps == 4 and record.langs == ["en", "de"] and record.model["hidden_size"] == 8
    en = record.per_lang["en"]
    assert en.seen and not en.extra and en.prob == pytest.approx(raw["per_lang"]["en"]["prob"]) and en.bpb > 0
    assert set(record.eval) == {"bpb", "retrieval", "tokenizer"}
    assert rundir.suite_per_lang(record.eval["retrieval"]).keys() == {"udhr_para"}
    assert jobs.is_done(old_run) and rundir.is_done(old_run, need_eval=False)


def test_old_checkpoints_are_found_and_load(old_run):
    assert [rundir.checkpoint_step(p) for p in rundir.list_checkpoints(old_run)] == [4, 2]
    # final.json names the checkpoint by the path it was written at; the moved directory's copy is used
    assert rundir.run_checkpoint(old_run) == rundir.checkpoint_path(old_run, 4)
    state, path = rundir.read_checkpoint_state(old_run)
    assert state["step"] == 4 and path == rundir.checkpoint_path(old_run, 4)
    model, _, _ = rundir.load_run(path, tokenizer=False)  # the fixture's tokenizer file was not kept
    assert model.config.hidden_size == 8 and model.config.vocab_size == 302
    with torch.no_grad():
        assert torch.isfinite(model.logits(torch.tensor([[0, 5, 6, 2]]))).all()
    assert rundir.run_config(old_run).data.langs == ("en", "de")
    model, _, cfg = rundir.load_run(old_run, tokenizer=False)  # the run directory: final.json's checkpoint
    assert model.config.hidden_size == 8 and cfg.data.langs == ("en", "de") and not model.training


def test_old_run_reads_into_the_results_frames(old_run):
    df = results.load(old_run.parent)
    row = df.iloc[0]
    assert row["status"] == "done" and row["steps"] == 4 and row["sweep"] == "fixture" and row["n_langs"] == 2
    assert row["params_total"] == rundir.read_final(old_run).params["total"]
    long = results.load_long(old_run.parent).set_index("lang")
    assert set(long.index) == {"en", "de", "fr"}  # fr: evaluated (retrieval, tokenizer), not trained on
    raw = json.loads(rundir.final_path(old_run).read_text())
    assert long.loc["de", "eval.bpb.bpb"] == pytest.approx(raw["eval"]["bpb"]["per_lang"]["de"]["bpb"])
    assert long.loc["fr", "eval.retrieval.udhr_para.to_pivot"] == pytest.approx(
        raw["eval"]["retrieval"]["sets"]["udhr_para"]["fr"]["to_pivot"])
    assert bool(long.loc["en", "seen"]) and long.loc["en", "eval.tokenizer.tokens_per_char"] > 0
    curves = results.load_curves(old_run.parent)
    assert (curves["kind"] == "train").sum() == 4  # the logged steps, and the final held-out scores per language
    held = curves[curves["kind"] == "heldout"]
    assert sorted(held["lang"]) == ["de", "en"] and held["bpb"].gt(0).all()


def test_merge_eval_keeps_the_record_and_adds_the_suite(old_run):
    rundir.merge_eval(old_run, {"pll": {"settings": {"max_texts": 1}, "per_lang": {"en": {"bpb": 3.0}}}})
    record = rundir.read_final(old_run)
    assert set(record.eval) == {"bpb", "retrieval", "tokenizer", "pll"} and record.steps == 4


def test_checkpoint_names_are_defined_once(tmp_path):
    assert rundir.checkpoint_path(tmp_path, 100).name == "step_00000100.pt"
    assert rundir.checkpoint_step(rundir.checkpoint_path(tmp_path, 100_000_000)) == 100_000_000
    assert rundir.checkpoint_step(tmp_path / "100.pt") is None
    assert rundir.checkpoint_step(tmp_path / ".step_00000100.pt.123.tmp") is None
    with pytest.raises(XlmrError, match=r"no final.json and no checkpoints/step_\*.pt"):
        rundir.run_checkpoint(tmp_path)


def _imports() -> dict[str, set[str]]:
    """{module: the xlmr_core modules it imports}, at module level and inside functions alike."""
    import ast

    root = Path(__file__).resolve().parents[1] / "xlmr_core"
    files = {".".join(p.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): p
             for p in root.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                names = [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                while name not in files and "." in name:
                    name = name.rpartition(".")[0]
                if name in files and name != mod and not mod.startswith(name + "."):
                    found.add(name)
        out[mod] = found
    return out


def test_only_the_job_and_the_cli_import_the_trainer_and_no_import_makes_a_circle():
    graph = _imports()
    assert "xlmr_core.train.rundir" in graph and "xlmr_core.evaluate.finetune.tasks" in graph
    importers = {m for m, deps in graph.items() if "xlmr_core.train.trainer" in deps}
    assert importers <= {"xlmr_core.study.jobs", "xlmr_core.cli", "xlmr_core.train"}
    for m in ("xlmr_core.model.hf", "xlmr_core.study.results", "xlmr_core.evaluate.suites",
              "xlmr_core.evaluate.finetune.loop"):
        assert "xlmr_core.train.rundir" in graph[m], m
    state: dict[str, int] = {}  # depth-first search: 1 on the path, 2 done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            assert state.get(d) != 1, "import circle: " + " → ".join([*path, m, d])
            if d not in state:
                visit(d, [*path, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
