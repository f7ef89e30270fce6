"""Sweep results as pandas DataFrames, read from each run's config.json, final.json and metrics.jsonl.

Nothing is parsed out of logs, and a score that is missing (a run not finished, a suite not run) is NaN,
never 0. The study's one results table is ``tidy``: one row per run, language and metric (``lang`` "" for
run-level values such as tokens and wall time), with ``value`` and its standard error ``se`` and the run's
attributes (tags, shape, parameters) as columns. ``write_table`` stores it in the study's directory
(``results.csv`` beside ``results.schema.json``, what ``collect`` writes), ``read_table`` reads it back with its
types and says in one line when it is missing or holds fewer runs than the study plans; ``per_run`` and
``per_lang`` turn it into one row per run or per run and language, the frames ``plots`` and ``laws`` take.

``load`` (one row per run), ``load_long`` (one row per run and language, suites' columns named ``eval.<suite>.…``)
and ``load_curves`` (one row per logged training step and one per held-out evaluation and language) read run
directories directly. Each run's ``tags`` (``key=value``, set by ``sweeps``) become columns.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from xlmr_core.errors import XlmrError
from xlmr_core.fsutil import atomic_write_json, atomic_write_text
from xlmr_core.train import rundir


def run_dirs(sweep_dir: str | os.PathLike) -> list[Path]:
    """Run directories under a sweep or study directory (or under each sweep of a results root), sorted; hidden
    directories (``.old/``: runs moved aside) are not runs of the study."""
    root = Path(sweep_dir)
    if not root.is_dir():
        raise XlmrError(f"results directory {root} does not exist: run the sweep first or fix the path")
    runs = rundir.found_runs(root)
    if not runs:  # a results root holding several sweeps
        runs = [r for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
                for r in rundir.found_runs(sub)]
    return runs


def _value(text: str):
    """A tag value as int, float or string."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_tags(tags) -> dict:
    """``["sweep=x", "n_langs=7"]`` -> ``{"sweep": "x", "n_langs": 7}`` (a bare tag maps to True)."""
    out = {}
    for t in tags or ():
        k, sep, v = str(t).partition("=")
        out[k] = _value(v) if sep else True
    return out


def _num(x):
    """None (JSON null) and non-numbers -> NaN, numbers -> float."""
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, (int, float)):
        return float(x)
    return math.nan


def _flatten(d: dict, prefix: str) -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        elif isinstance(v, (int, float, bool)) or v is None:
            out[key] = _num(v)
    return out


def _split_suite(name: str, result: dict, numbers_only: bool = False) -> tuple[dict, dict[str, dict]]:
    """One suite's result as run-level columns and per-language columns (``rundir.suite_per_lang``).

    ``eval.bpb.per_lang.de.bpb`` becomes column ``eval.bpb.bpb`` of language de in the long form,
    ``eval.retrieval.sets.udhr_para.de.to_pivot`` becomes ``eval.retrieval.udhr_para.to_pivot`` and
    ``eval.xnli.n_eval.de`` becomes ``eval.xnli.n_eval``. ``numbers_only``: leave out the values that are not
    numbers (text, lists) instead of giving them NaN.
    """
    prefix = f"eval.{name}"
    per_lang: dict[str, dict] = {}
    for path, values in rundir.suite_per_lang(result).items():
        key = f"{prefix}.{path}" if path else prefix
        for lang, val in values.items():
            row = per_lang.setdefault(lang, {})
            row.update(_flatten(val, key) if isinstance(val, dict) else {key: _num(val)})
    rest = {k: v for k, v in result.items() if k not in (*rundir.PER_LANG_KEYS, "sets")}
    return _leaves(rest, prefix, numbers_only), per_lang


def _leaves(d: dict, prefix: str, numbers_only: bool = False) -> dict:
    """Every leaf of a nested dict as a column (``a.b.c``); a value that is not a number is NaN (left out with
    ``numbers_only``; None, JSON's null, is NaN either way)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}"
        if isinstance(v, dict):
            out.update(_leaves(v, key, numbers_only))
        elif not numbers_only or v is None or isinstance(v, (int, float, bool)):
            out[key] = _num(v)
    return out


def _last_step(run_dir: Path) -> dict:
    """The last training record of metrics.jsonl (a run in progress or stopped), {} before the first."""
    return next((rec for rec in reversed(rundir.read_metrics(run_dir)) if "loss" in rec), {})


def _run_record(run_dir: Path) -> tuple[dict, dict[str, dict]]:
    """One run's row and its per-language rows, from config.json and the typed final.json."""
    row, metrics, per_lang = _run_parts(run_dir)
    return {**row, **metrics}, per_lang


def _run_parts(run_dir: Path, numbers_only: bool = False) -> tuple[dict, dict, dict[str, dict]]:
    """One run's attributes (name, tags, config, shape, parameters), its run-level measurements (progress, means
    over the training languages, suites' run-level values as ``eval.<suite>.…``) and its per-language values."""
    meta = rundir.read_info(run_dir, missing_ok=True)
    final = rundir.read_final(run_dir)
    cfg = meta.get("config") or {}
    data, model = cfg.get("data", {}), cfg.get("model", {})
    row: dict = {"run": run_dir.name, "sweep": run_dir.parent.name, "run_dir": str(run_dir),
                 "status": "done" if final is not None else ("started" if meta else "submitted")}
    row.update(parse_tags(final.tags if final is not None else cfg.get("tags")))
    langs = final.langs if final is not None else (meta.get("langs") or list(data.get("langs") or []))
    shape = (final.model if final is not None else None) or meta.get("model_config") or {}
    derived = {
        "seed": final.seed if final is not None else cfg.get("seed"), "model_size": model.get("size"),
        "hidden_size": shape.get("hidden_size"), "num_layers": shape.get("num_layers"),
        "vocab_pieces": data.get("vocab_size"), "alpha": data.get("alpha"), "seq_len": data.get("seq_len"),
        "batch_tokens": data.get("batch_tokens"), "total_steps": meta.get("total_steps"),
        "n_langs": len(langs) if langs else None, "langs": ",".join(langs) if langs else None,
    }
    for k, v in derived.items():
        row.setdefault(k, v)
    params = (final.params if final is not None else None) or meta.get("params") or {}
    for k in ("embedding", "non_embedding", "lm_head", "total"):
        row[f"params_{k}"] = _num(params.get(k))
    if final is not None:
        progress = {"steps": final.steps, "tokens": final.tokens, "flops": final.flops, "wall_s": final.wall_s}
    else:
        last = _last_step(run_dir)
        progress = {"steps": last.get("step"), **{k: last.get(k) for k in ("tokens", "flops", "wall_s")}}
    metrics = {k: _num(v) for k, v in progress.items()}
    metrics["final_train_loss_bits"] = _num(final.final_train_loss_bits if final is not None else None)
    # repetition (final.json of runs since it was recorded): the most epochs of any training language
    metrics["max_epochs"] = _num(final.max_epochs if final is not None else None)

    per_lang: dict[str, dict] = {}
    for lang, r in (final.per_lang if final is not None else {}).items():
        per_lang[lang] = {k: (_num(v) if k != "seen" else bool(v)) for k, v in r.to_dict().items()
                          if k != "blocks" and (isinstance(v, (int, float, bool)) or v is None)}
    for lang, rep in (final.repetition if final is not None else {}).items():
        per_lang.setdefault(lang, {}).update({k: _num(rep.get(k)) for k in ("unique_tokens", "tokens_seen", "epochs")})
    train_langs = set(langs)
    for metric in ("bpb", "unigram_bpb", "bpb_below_unigram", "unigram_gain", "loss_bits", "acc"):
        vals = [per_lang[lang].get(metric, math.nan) for lang in per_lang if lang in train_langs]
        metrics[f"{metric}_mean"] = float(np.mean(vals)) if vals and not any(map(math.isnan, vals)) else math.nan
    for metric in ("bpb", "bpb_below_unigram"):  # languages are scored on disjoint text: errors add in quadrature
        ses = [per_lang[lang].get(f"{metric}_se", math.nan) for lang in per_lang if lang in train_langs]
        metrics[f"{metric}_mean_se"] = math.sqrt(sum(x * x for x in ses)) / len(ses) if ses else math.nan
    for name, result in (final.eval if final is not None else {}).items():
        wide, ev_lang = _split_suite(name, result, numbers_only)
        metrics.update(wide)
        for lang, vals in ev_lang.items():
            per_lang.setdefault(lang, {}).update(vals)
    for k in [k for k in row if k in metrics]:  # a tag named like a measurement: the measurement, as load has it
        del row[k]
    return row, metrics, per_lang


def load(sweep_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per run of a sweep directory: tags, config, parameters, budget and mean held-out scores."""
    rows = [_run_record(d)[0] for d in run_dirs(sweep_dir)]
    return pd.DataFrame(rows)


def _group(lang: str, row: dict) -> str:
    def members(key):
        v = row.get(key)
        return set(str(v).split(",")) if isinstance(v, str) and v else set()

    if lang in members("high"):
        return "high"
    if lang in members("low"):
        return "low"
    return "other"


def load_long(sweep_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per run and evaluated language: the run's columns plus bpb, loss_bits, acc, per-language eval
    scores, training tokens/bytes, the sampling probability, repetition (``unique_tokens``, ``tokens_seen``,
    ``epochs``) and ``group`` (high/low/other, from the tags)."""
    rows = []
    for d in run_dirs(sweep_dir):
        run, per_lang = _run_record(d)
        for lang, vals in sorted(per_lang.items()):
            rows.append({**run, "lang": lang, "group": _group(lang, run), **vals})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the study's results table (tidy)

TABLE_FILE = "results.csv"
"""The study's results table in its directory (``collect`` writes it, the notebooks read it)."""
SCHEMA_FILE = "results.schema.json"
"""Beside it: each column's dtype and the number of runs, so that ``read_table`` restores the table exactly."""
TABLE_COLUMNS = ("run", "run_dir", "lang", "metric", "value", "se")
"""The columns every tidy table starts with; the runs' attributes follow."""
_MEASURED = ("lang", "metric", "value", "se")
_RUN_LEVEL = ("steps", "tokens", "flops", "wall_s")
"""Run-level values every run has a row for (NaN before it logs any), so that no run drops out of the table."""


def _metric_name(key: str) -> str:
    """``eval.ddtp.accuracy`` -> ``ddtp.accuracy``: a suite's values under the suite's name."""
    return key.removeprefix("eval.")


def _measured_rows(values: dict, lang: str) -> list[tuple]:
    """(lang, metric, value, se) of one language's (or the run's) values; ``<m>_se`` is the ``se`` of ``<m>``."""
    vals = {_metric_name(k): _num(v) for k, v in values.items()}
    return [(lang, k, v, vals.get(f"{k}_se", math.nan)) for k, v in vals.items()
            if not (k.endswith("_se") and k[:-3] in vals)]


def _sources(source) -> list[Path]:
    """Run directories from a directory of runs (``run_dirs``), a sequence of run directories or a table with a
    ``run_dir`` column (its runs, in order)."""
    if isinstance(source, pd.DataFrame):
        if "run_dir" not in source.columns:
            raise XlmrError("the table has no run_dir column: pass results.read_table(...) or a directory")
        return [Path(d) for d in dict.fromkeys(source["run_dir"].dropna())]
    if isinstance(source, (str, os.PathLike)):
        return run_dirs(source)
    return [Path(d) for d in source]


def tidy(run_dirs: Sequence[Path]) -> pd.DataFrame:
    """The results of ``run_dirs`` as one tidy table: one row per run, language and metric.

    Columns: ``run`` (the run's name from its config), ``run_dir`` (absolute), ``lang`` ("" for run-level values:
    steps, tokens, flops, wall_s, final_train_loss_bits, max_epochs, the means over the training languages
    ``bpb_mean`` …, suites' run-level values), ``metric`` (``bpb``, ``unigram_bpb``, ``bpb_below_unigram``, ``seen``
    (1/0), ``train_bytes``, ``prob``, ``epochs``, and each suite's values under its name, flattened with dots:
    ``ddtp.accuracy``, ``retrieval.<set>.to_pivot``, ``tokenizer.tokens_per_char`` …; not the suites' settings),
    ``value`` and ``se`` (its standard error where the run recorded one, else NaN), both float64; then the run's
    attributes as ``load`` names them (``sweep``, ``status``, the tags such as ``design``, ``relation``,
    ``width``, ``seed``, ``alpha``, ``budget``; ``n_langs``, ``langs``, ``hidden_size``, ``vocab_pieces``,
    ``params_total``, ``params_non_embedding`` …). A run that has not finished has its progress rows only
    (``status`` says so)."""
    attrs, parts = [], []
    for d in run_dirs:
        d = Path(d).resolve()
        row, metrics, per_lang = _run_parts(d, numbers_only=True)
        cfg = rundir.read_info(d, missing_ok=True).get("config") or {}
        row["run"] = str(cfg.get("name") or d.name)
        row["run_dir"] = str(d)
        attrs.append(row)
        rows = _measured_rows({k: metrics.get(k) for k in _RUN_LEVEL}, "")
        rows += _measured_rows({k: v for k, v in metrics.items()
                                if k not in _RUN_LEVEL and ".settings." not in k}, "")  # what a suite ran with
        for lang, vals in sorted(per_lang.items()):
            rows += _measured_rows(vals, lang)
        parts.append(pd.DataFrame(rows, columns=list(_MEASURED)).assign(run_dir=str(d)))
    if not attrs:
        return _empty_table()
    runs = pd.DataFrame(attrs)
    measured = pd.concat(parts, ignore_index=True).astype({"value": "float64", "se": "float64"})
    out = measured.merge(runs, on="run_dir", how="left", sort=False, validate="many_to_one")
    first = list(TABLE_COLUMNS)
    return out[first + [c for c in out.columns if c not in first]].reset_index(drop=True)


def _column_schema(col: pd.Series) -> dict:
    """A column's dtype as ``read_table`` restores it, and whether it has missing values."""
    dtype = str(col.dtype)
    spec = {"dtype": dtype, "na": bool(col.isna().any())}
    if dtype == "object":
        vals = col.dropna()
        spec["values"] = "str" if vals.map(lambda v: isinstance(v, str)).all() else "mixed"
    return spec


def write_table(df: pd.DataFrame, study_root: str | os.PathLike, *,
                planned_runs: int | Sequence[str] | None = None) -> Path:
    """Write the tidy table ``df`` to ``study_root/results.csv`` and its schema (each column's dtype, the number of
    runs, finished runs and, when given, the runs the study plans, a number or their names: ``read_table`` checks
    against it) to
    ``results.schema.json``, each atomically; run directories inside ``study_root`` are stored relative to it, so
    the study can move. Returns the table's path."""
    root = Path(study_root)
    missing = [c for c in TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise XlmrError(f"write_table: not a tidy results table (no column(s) {', '.join(missing)}): "
                        f"pass results.tidy(run_dirs)")
    base = root.resolve()
    out = df.copy()

    def relative(d):
        p = Path(d)
        return p.relative_to(base).as_posix() if p.is_absolute() and p.is_relative_to(base) else d

    out["run_dir"] = out["run_dir"].map(relative).astype(df["run_dir"].dtype)
    done = df[df["status"] == "done"] if "status" in df.columns else df
    schema = {"format": 1, "rows": len(df), "runs": int(df["run_dir"].nunique()),
              "runs_done": int(done["run_dir"].nunique()),
              "planned_runs": planned_runs if planned_runs is None or isinstance(planned_runs, int)
              else [str(r) for r in planned_runs], "run_dir": "relative",
              "columns": {c: _column_schema(df[c]) for c in df.columns}}
    path = atomic_write_text(root / TABLE_FILE, out.to_csv(index=False, na_rep=""))
    atomic_write_json(root / SCHEMA_FILE, schema)
    return path


def _restore(raw: pd.Series, spec: dict) -> pd.Series:
    """A column read as text (empty: missing) back to the dtype the schema records."""
    dtype, empty = spec["dtype"], raw == ""
    if dtype.startswith(("float", "int", "uint")):
        num = pd.to_numeric(raw.where(~empty, np.nan))
        return num.astype(dtype)
    if dtype == "bool":
        return raw == "True"
    if dtype == "object" and spec.get("values") == "mixed":
        flag = {"True": True, "False": False}
        return raw.map(lambda v: math.nan if v == "" and spec["na"] else flag.get(v, _value(v))).astype(object)
    col = raw.where(~empty, np.nan) if spec["na"] else raw
    return col.astype(dtype) if dtype != "object" else col.astype(object)


def _empty_table(columns: dict | None = None) -> pd.DataFrame:
    cols = columns or {"run": {"dtype": "str"}, "run_dir": {"dtype": "str"}, "lang": {"dtype": "str"},
                       "metric": {"dtype": "str"}, "value": {"dtype": "float64"}, "se": {"dtype": "float64"}}
    return pd.DataFrame({c: pd.Series(dtype=spec["dtype"] if spec["dtype"] != "str" else str)
                         for c, spec in cols.items()})


def read_table(study_root: str | os.PathLike, *, planned_runs: int | Sequence[str] | None = None,
               partial: bool = False, missing_ok: bool = False) -> pd.DataFrame:
    """The study's tidy results table (``write_table``) with its types restored.

    Raises XlmrError, in one line, when there is no table (collect it first), or when it holds fewer finished
    runs than ``planned_runs`` (a number, or the planned runs' names: then those without results are named;
    default: what ``collect`` recorded, if anything) and ``partial`` is not set. ``missing_ok``: a missing table
    is an empty one.
    """
    root = Path(study_root)
    path, schema_path = root / TABLE_FILE, root / SCHEMA_FILE
    where = f" (relative to {Path.cwd()})" if not root.is_absolute() else ""
    collect = (f"xlmr-sweep collect {root.name} --root {root.parent} (or python sweeps/launch.py collect "
               f"{root.name} --root {root.parent})")
    if not path.exists():
        if missing_ok:
            return _empty_table()
        if not root.is_dir():
            raise XlmrError(f"{root}{where}: no such study directory; run the study, then write its table with "
                            f"{collect}")
        raise XlmrError(f"{root}{where}: no results table ({TABLE_FILE}); write it with {collect}")
    if not schema_path.exists():
        raise XlmrError(f"{path} has no {SCHEMA_FILE} beside it (an older collect's table): collect again with "
                        f"{collect}")
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    cols = schema["columns"]
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
    if list(raw.columns) != list(cols) or len(raw) != schema["rows"]:
        raise XlmrError(f"{path} and its {SCHEMA_FILE} disagree (written by different collects?): collect again "
                        f"with {collect}")
    table = pd.DataFrame({c: _restore(raw[c], cols[c]) for c in cols}) if len(raw) else _empty_table(cols)
    if schema.get("run_dir") == "relative" and len(table):
        base = root.resolve()
        run_dir = table["run_dir"].map(lambda d: d if Path(d).is_absolute() else str(base / d))
        table["run_dir"] = run_dir.astype(table["run_dir"].dtype)
    planned = planned_runs if planned_runs is not None else schema.get("planned_runs")
    if planned and not partial:
        _check_planned(table, planned, root)
    return table


def _check_planned(table: pd.DataFrame, planned: int | Sequence[str], root: Path) -> None:
    """One line when fewer of the planned runs (a number, or names) have results than planned."""
    done = table[table["status"] == "done"] if "status" in table.columns else table
    if isinstance(planned, int):
        n, m, missing = int(done["run_dir"].nunique()), planned, []
    else:
        names = list(dict.fromkeys(str(r) for r in planned))
        have = set(done["run"])
        missing = [r for r in names if r not in have]
        n, m = len(names) - len(missing), len(names)
    if n < m:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        which = f" (without: {', '.join(missing[:5])}{more})" if missing else ""
        raise XlmrError(f"{root}: {n} of {m} planned runs have results; finish the study (status/run) or pass "
                        f"partial=True to draw what is there{which}")


def _attribute_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in _MEASURED]


def _need_tidy(table: pd.DataFrame, what: str) -> None:
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise XlmrError(f"{what}: not a tidy results table (no column(s) {', '.join(missing)}); "
                        f"pass results.read_table(study_root) or results.tidy(run_dirs)")


def _wide(rows: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """``value`` per metric as columns, and ``<metric>_se`` for the metrics with a standard error."""
    rows = rows.drop_duplicates([*index, "metric"], keep="last")
    values = rows.set_index([*index, "metric"])["value"].unstack("metric")
    with_se = rows.dropna(subset=["se"])
    if len(with_se):
        se = with_se.set_index([*index, "metric"])["se"].unstack("metric").add_suffix("_se")
        values = values.join(se[[c for c in se.columns if c not in values.columns]])
    values.columns.name = None
    return values


def per_run(table: pd.DataFrame) -> pd.DataFrame:
    """One row per run of a tidy table: its attributes and its run-level values as columns (``steps``,
    ``tokens``, ``wall_s``, ``bpb_mean``, ``bpb_mean_se`` …), the columns ``load`` has (suites' values without the
    ``eval.`` prefix)."""
    _need_tidy(table, "per_run")
    attrs = table[_attribute_columns(table)].drop_duplicates("run_dir").reset_index(drop=True)
    run_level = table[table["lang"] == ""]
    if run_level.empty:
        return attrs
    wide = _wide(run_level, ["run_dir"])
    return attrs.merge(wide, left_on="run_dir", right_index=True, how="left")


def per_lang(table: pd.DataFrame) -> pd.DataFrame:
    """One row per run and language of a tidy table, as ``load_long`` has it: the run's columns (``per_run``),
    ``lang``, ``group`` (high/low/other, from the tags), ``seen`` (bool: the run trained on the language) and each
    per-language metric as a column (``bpb``, ``bpb_se``, ``unigram_bpb``, ``train_bytes``, ``prob``,
    ``ddtp.accuracy`` …)."""
    runs = per_run(table)
    lang_rows = table[table["lang"] != ""]
    if lang_rows.empty:
        return runs.iloc[:0].assign(lang=pd.Series(dtype=str), group=pd.Series(dtype=str))
    wide = _wide(lang_rows, ["run_dir", "lang"]).reset_index()
    runs = runs.drop(columns=[c for c in wide.columns if c != "run_dir" and c in runs.columns])
    out = runs.merge(wide, on="run_dir", how="inner", sort=False)
    order = {d: i for i, d in enumerate(runs["run_dir"])}
    out = out.sort_values(["run_dir", "lang"], key=lambda s: s.map(order) if s.name == "run_dir" else s,
                          kind="stable").reset_index(drop=True)
    tags = out[[c for c in ("high", "low") if c in out.columns]].to_dict("records")
    group = [_group(lang, t) for lang, t in zip(out["lang"], tags)] if tags else ["other"] * len(out)
    at = out.columns.get_loc("lang") + 1
    out.insert(at, "group", pd.Series(group, index=out.index, dtype=out["lang"].dtype))
    if "seen" in out.columns:
        out["seen"] = out["seen"].fillna(0.0).astype(float).astype(bool)
    return out


_HELDOUT_RENAME = {"loss_bits": "heldout_loss_bits", "loss_nats": "heldout_loss_nats"}
"""Held-out values whose names would read as the training loss's in the curves table."""


def load_curves(sweep_dir) -> pd.DataFrame:
    """The curves of every run (metrics.jsonl) of a directory of runs, a list of run directories or a results table
    (its ``run_dir``s), with the run's tags: one row per logged training step
    (``kind="train"``: loss_bits, lr, grad_norm, tokens_per_s, …) and one per held-out evaluation made during
    or at the end of training and language (``kind="heldout"``, ``lang``: bpb, unigram_bpb, bpb_below_unigram,
    acc, …; the per-token loss as ``heldout_loss_bits``, so that ``loss_bits`` is always the training loss)."""
    rows = []
    for d in _sources(sweep_dir):
        if not rundir.metrics_path(d).exists():
            continue
        run, _ = _run_record(d)
        cfg = rundir.read_info(d, missing_ok=True).get("config") or {}
        keep = {"run": run["run"], "sweep": run["sweep"], "seed": run.get("seed"), **parse_tags(cfg.get("tags"))}
        for rec in rundir.read_metrics(d):
            if "loss" in rec:
                rows.append({**keep, "kind": "train", **{k: _num(v) for k, v in rec.items()}})
            elif isinstance(rec.get("eval"), dict):
                at = {k: _num(rec.get(k)) for k in ("step", "tokens")}
                rows.extend({**keep, "kind": "heldout", **at, "lang": lang,
                             **{_HELDOUT_RENAME.get(k, k): _num(v) for k, v in r.items()
                                if not isinstance(v, (dict, list))}}
                            for lang, r in sorted(rec["eval"].items()) if isinstance(r, dict))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- paired comparisons between arms


def paired_differences(sweep_dir, *, arm: str = "relation", baseline: str = "none",
                       match: Sequence[str] = ("design", "width", "seed")) -> pd.DataFrame:
    """Each arm's gain over its baseline run, per language, paired on the same held-out tokens.

    ``sweep_dir``: a directory of runs, a list of run directories or a results table (its ``run_dir``s). Runs are
    matched on the ``match`` tags (the same design, width and seed); for every run whose ``arm`` tag
    is not ``baseline`` and every language both it and its baseline run trained on, ``diff`` is the arm's bits
    per byte below unigram minus the baseline's (= baseline bpb − arm bpb: the same tokens and unigram
    baseline), with ``se`` its standard error over the shared blocks (``heldout.paired_difference``). Runs
    scored before per-block results were kept have no pairs; their languages are skipped.
    """
    from xlmr_core.evaluate.heldout import paired_difference

    records = []
    for d in _sources(sweep_dir):
        final = rundir.read_final(d)
        if final is not None:
            records.append((d.name, {"seed": final.seed, **parse_tags(final.tags)}, final))
    missing = [k for k in (arm, *match) if not any(k in t for _, t, _ in records)]
    if missing:
        where = sweep_dir if isinstance(sweep_dir, (str, os.PathLike)) else "these runs"
        raise XlmrError(f"paired_differences: no finished run of {where} has the tag(s) {', '.join(missing)}; "
                        f"pair on tags the sweep sets (arm={arm!r}, match={list(match)})")
    base = {tuple(t.get(k) for k in match): (name, f) for name, t, f in records if t.get(arm) == baseline}
    rows = []
    for name, tags, final in records:
        key = tuple(tags.get(k) for k in match)
        if tags.get(arm) in (None, baseline) or key not in base:
            continue
        base_name, base_final = base[key]
        for lang, r in final.per_lang.items():
            b = base_final.per_lang.get(lang)
            if b is None or not (r.seen and b.seen) or not (r.blocks and b.blocks):
                continue
            diff, se = paired_difference(b.to_dict(), r.to_dict())  # baseline bpb − arm bpb
            rows.append({**dict(zip(match, key)), arm: tags[arm], "run": name, "baseline_run": base_name,
                         "lang": lang, "group": _group(lang, tags), "diff": diff, "se": se})
    return pd.DataFrame(rows)


def _quadrature(se: pd.Series) -> float:
    return float(np.sqrt((se ** 2).sum()) / len(se))


def arm_effects(pairs: pd.DataFrame, *, arm: str = "relation", by: Sequence[str] = ("design", "width"),
                groups: Sequence[str] = ("high", "low")) -> pd.DataFrame:
    """``paired_differences`` averaged over each group's languages, then over seeds.

    One row per (``by``, arm, group): ``diff`` the mean gain, ``eval_se`` its evaluation error (standard errors
    in quadrature over languages, then over seeds, each divided by the count averaged), ``seed_sd`` the spread
    over seeds (s.d. of the seeds' group means; NaN with one seed) and ``n_seeds``: measurement error and
    training noise, apart.
    """
    keys = [*by, arm, "group"]
    cols = [*keys, "diff", "eval_se", "seed_sd", "n_seeds"]
    if pairs.empty:
        return pd.DataFrame(columns=cols)
    per_seed = (pairs[pairs["group"].isin(groups)].groupby([*keys, "seed"], dropna=False)
                .agg(diff=("diff", "mean"), se=("se", _quadrature)).reset_index())
    out = (per_seed.groupby(keys, dropna=False)
           .agg(diff=("diff", "mean"), eval_se=("se", _quadrature), seed_sd=("diff", "std"),
                n_seeds=("diff", "size")).reset_index())
    return out[cols]
