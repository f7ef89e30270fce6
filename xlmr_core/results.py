"""Sweep results as pandas DataFrames, read from each run's config.json, final.json and metrics.jsonl.

Nothing is parsed out of logs, and a score that is missing (a run not finished, a suite not run) is NaN,
never 0. ``load`` gives one row per run, ``load_long`` one row per run and language, ``load_curves`` one row
per logged training step and one per held-out evaluation and language. Each run's ``tags`` (``key=value``, set
by ``sweeps``) become columns.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import rundir
from .errors import XlmrError

_RUN_FILES = (rundir.CONFIG_FILE, rundir.FINAL_FILE, "job.json")


def run_dirs(sweep_dir: str | os.PathLike) -> list[Path]:
    """Run directories under a sweep directory (or under each sweep of a results root), sorted."""
    root = Path(sweep_dir)
    if not root.is_dir():
        raise XlmrError(f"results directory {root} does not exist: run the sweep first or fix the path")

    def runs_in(d: Path) -> list[Path]:
        return sorted(p for p in d.iterdir() if p.is_dir() and any((p / f).exists() for f in _RUN_FILES))

    runs = runs_in(root)
    if not runs:  # a results root holding several sweeps
        runs = [r for sub in sorted(p for p in root.iterdir() if p.is_dir()) for r in runs_in(sub)]
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


def _split_suite(name: str, result: dict) -> tuple[dict, dict[str, dict]]:
    """One suite's result as run-level columns and per-language columns (``rundir.suite_per_lang``).

    ``eval.bpb.per_lang.de.bpb`` becomes column ``eval.bpb.bpb`` of language de in the long form,
    ``eval.retrieval.sets.udhr_para.de.to_pivot`` becomes ``eval.retrieval.udhr_para.to_pivot`` and
    ``eval.xnli.n_eval.de`` becomes ``eval.xnli.n_eval``.
    """
    prefix = f"eval.{name}"
    per_lang: dict[str, dict] = {}
    for path, values in rundir.suite_per_lang(result).items():
        key = f"{prefix}.{path}" if path else prefix
        for lang, val in values.items():
            row = per_lang.setdefault(lang, {})
            row.update(_flatten(val, key) if isinstance(val, dict) else {key: _num(val)})
    rest = {k: v for k, v in result.items() if k not in (*rundir.PER_LANG_KEYS, "sets")}
    return _leaves(rest, prefix), per_lang


def _leaves(d: dict, prefix: str) -> dict:
    """Every leaf of a nested dict as a column (``a.b.c``); a value that is not a number is NaN."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}"
        out.update(_leaves(v, key) if isinstance(v, dict) else {key: _num(v)})
    return out


def _last_step(run_dir: Path) -> dict:
    """The last training record of metrics.jsonl (a run in progress or stopped), {} before the first."""
    return next((rec for rec in reversed(rundir.read_metrics(run_dir)) if "loss" in rec), {})


def _run_record(run_dir: Path) -> tuple[dict, dict[str, dict]]:
    """One run's row and its per-language rows, from config.json and the typed final.json."""
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
    row.update({k: _num(v) for k, v in progress.items()})
    row["final_train_loss_bits"] = _num(final.final_train_loss_bits if final is not None else None)
    # repetition (final.json of runs since it was recorded): the most epochs of any training language
    row["max_epochs"] = _num(final.max_epochs if final is not None else None)

    per_lang: dict[str, dict] = {}
    for lang, r in (final.per_lang if final is not None else {}).items():
        per_lang[lang] = {k: (_num(v) if k != "seen" else bool(v)) for k, v in r.to_dict().items()
                          if k != "blocks" and (isinstance(v, (int, float, bool)) or v is None)}
    for lang, rep in (final.repetition if final is not None else {}).items():
        per_lang.setdefault(lang, {}).update({k: _num(rep.get(k)) for k in ("unique_tokens", "tokens_seen", "epochs")})
    train_langs = set(langs)
    for metric in ("bpb", "unigram_bpb", "bpb_below_unigram", "unigram_gain", "loss_bits", "acc"):
        vals = [per_lang[lang].get(metric, math.nan) for lang in per_lang if lang in train_langs]
        row[f"{metric}_mean"] = float(np.mean(vals)) if vals and not any(map(math.isnan, vals)) else math.nan
    for metric in ("bpb", "bpb_below_unigram"):  # languages are scored on disjoint text: errors add in quadrature
        ses = [per_lang[lang].get(f"{metric}_se", math.nan) for lang in per_lang if lang in train_langs]
        row[f"{metric}_mean_se"] = math.sqrt(sum(x * x for x in ses)) / len(ses) if ses else math.nan
    for name, result in (final.eval if final is not None else {}).items():
        wide, ev_lang = _split_suite(name, result)
        row.update(wide)
        for lang, vals in ev_lang.items():
            per_lang.setdefault(lang, {}).update(vals)
    return row, per_lang


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


_HELDOUT_RENAME = {"loss_bits": "heldout_loss_bits", "loss_nats": "heldout_loss_nats"}
"""Held-out values whose names would read as the training loss's in the curves table."""


def load_curves(sweep_dir: str | os.PathLike) -> pd.DataFrame:
    """The curves of every run (metrics.jsonl), with the run's tags: one row per logged training step
    (``kind="train"``: loss_bits, lr, grad_norm, tokens_per_s, …) and one per held-out evaluation made during
    or at the end of training and language (``kind="heldout"``, ``lang``: bpb, unigram_bpb, bpb_below_unigram,
    acc, …; the per-token loss as ``heldout_loss_bits``, so that ``loss_bits`` is always the training loss)."""
    rows = []
    for d in run_dirs(sweep_dir):
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


def paired_differences(sweep_dir: str | os.PathLike, *, arm: str = "relation", baseline: str = "none",
                       match: Sequence[str] = ("design", "width", "seed")) -> pd.DataFrame:
    """Each arm's gain over its baseline run, per language, paired on the same held-out tokens.

    Runs are matched on the ``match`` tags (the same design, width and seed); for every run whose ``arm`` tag
    is not ``baseline`` and every language both it and its baseline run trained on, ``diff`` is the arm's bits
    per byte below unigram minus the baseline's (= baseline bpb − arm bpb: the same tokens and unigram
    baseline), with ``se`` its standard error over the shared blocks (``heldout.paired_difference``). Runs
    scored before per-block results were kept have no pairs; their languages are skipped.
    """
    from .heldout import paired_difference

    records = []
    for d in run_dirs(sweep_dir):
        final = rundir.read_final(d)
        if final is not None:
            records.append((d.name, {"seed": final.seed, **parse_tags(final.tags)}, final))
    missing = [k for k in (arm, *match) if not any(k in t for _, t, _ in records)]
    if missing:
        raise XlmrError(f"paired_differences: no finished run of {sweep_dir} has the tag(s) {', '.join(missing)}; "
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
