"""Sweep results as pandas DataFrames, read from each run's config.json, final.json and metrics.jsonl.

Nothing is parsed out of logs, and a score that is missing (a run not finished, a suite not run) is NaN,
never 0. ``load`` gives one row per run, ``load_long`` one row per run and language, ``load_curves`` one row
per logged training step. Each run's ``tags`` (``key=value``, set by ``sweeps``) become columns.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import XlmrError

_RUN_FILES = ("config.json", "final.json", "job.json")


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


def _read_json(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise XlmrError(f"{path} is not valid JSON ({e}): the file is damaged; delete the run to redo it") from None


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


def _is_per_lang(key: str, v, langs: set[str]) -> bool:
    """A dict keyed by language: ``per_lang``, keys among the run's languages, or values that say ``seen``."""
    if not isinstance(v, dict) or not v:
        return False
    if key == "per_lang" or set(v) <= langs:
        return True
    return all(isinstance(x, dict) and "seen" in x for x in v.values())


def _split_eval(ev: dict, langs: set[str], prefix: str = "eval") -> tuple[dict, dict[str, dict]]:
    """Split final.json's eval tree into run-level scalars and per-language values.

    ``eval.bpb.per_lang.de.bpb`` becomes column ``eval.bpb.bpb`` of language de in the long form, and
    ``eval.retrieval.sets.udhr_para.de.to_pivot`` becomes ``eval.retrieval.udhr_para.to_pivot``.
    """
    wide: dict = {}
    per_lang: dict[str, dict] = {}
    for k, v in ev.items():
        key = prefix if k in ("per_lang", "sets") else f"{prefix}.{k}"
        if _is_per_lang(k, v, langs):
            for lang, val in v.items():
                row = per_lang.setdefault(lang, {})
                row.update(_flatten(val, key) if isinstance(val, dict) else {key: _num(val)})
        elif isinstance(v, dict):
            w, p = _split_eval(v, langs, key)
            wide.update(w)
            for lang, row in p.items():
                per_lang.setdefault(lang, {}).update(row)
        else:
            wide[key] = _num(v)
    return wide, per_lang


def _last_metrics(path: Path) -> dict | None:
    """The last training record of metrics.jsonl (a run in progress or stopped)."""
    if not path.exists():
        return None
    last = None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash
        if "loss" in rec:
            last = rec
    return last


def _run_record(run_dir: Path) -> tuple[dict, dict[str, dict]]:
    """One run's row and its per-language rows."""
    meta = _read_json(run_dir / "config.json") or {}
    final = _read_json(run_dir / "final.json")
    cfg = meta.get("config") or {}
    data, model = cfg.get("data", {}), cfg.get("model", {})
    row: dict = {"run": run_dir.name, "sweep": run_dir.parent.name, "run_dir": str(run_dir),
                 "status": "done" if final is not None else ("started" if meta else "submitted")}
    row.update(parse_tags((final or {}).get("tags") or cfg.get("tags")))
    langs = (final or {}).get("langs") or meta.get("langs") or list(data.get("langs") or [])
    derived = {
        "seed": (final or cfg).get("seed"), "model_size": model.get("size"),
        "hidden_size": ((final or {}).get("model") or meta.get("model_config") or {}).get("hidden_size"),
        "num_layers": ((final or {}).get("model") or meta.get("model_config") or {}).get("num_layers"),
        "vocab_pieces": data.get("vocab_size"), "alpha": data.get("alpha"), "seq_len": data.get("seq_len"),
        "batch_tokens": data.get("batch_tokens"), "total_steps": meta.get("total_steps"),
        "n_langs": len(langs) if langs else None, "langs": ",".join(langs) if langs else None,
    }
    for k, v in derived.items():
        row.setdefault(k, v)
    params = (final or {}).get("params") or meta.get("params") or {}
    for k in ("embedding", "non_embedding", "lm_head", "total"):
        row[f"params_{k}"] = _num(params.get(k))
    src = final if final is not None else (_last_metrics(run_dir / "metrics.jsonl") or {})
    row["steps"] = _num(src.get("steps", src.get("step")))
    for k in ("tokens", "flops", "wall_s"):
        row[k] = _num(src.get(k))
    row["final_train_loss_bits"] = _num((final or {}).get("final_train_loss_bits"))

    per_lang: dict[str, dict] = {}
    for lang, r in ((final or {}).get("per_lang") or {}).items():
        per_lang[lang] = {k: (_num(v) if k != "in_training" else bool(v)) for k, v in r.items()
                          if isinstance(v, (int, float, bool)) or v is None}
    train_langs = set(langs)
    for metric in ("bpb", "unigram_bpb", "bpb_below_unigram", "unigram_gain", "loss_bits", "acc"):
        vals = [per_lang[lang].get(metric, math.nan) for lang in per_lang if lang in train_langs]
        row[f"{metric}_mean"] = float(np.mean(vals)) if vals and not any(map(math.isnan, vals)) else math.nan
    ev = (final or {}).get("eval") or {}
    known = train_langs | set(per_lang) | set((final or {}).get("eval_langs") or [])
    wide, ev_lang = _split_eval(ev, known)
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
    scores, training tokens/bytes, the sampling probability and ``group`` (high/low/other, from the tags)."""
    rows = []
    for d in run_dirs(sweep_dir):
        run, per_lang = _run_record(d)
        for lang, vals in sorted(per_lang.items()):
            rows.append({**run, "lang": lang, "group": _group(lang, run), **vals})
    return pd.DataFrame(rows)


def load_curves(sweep_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per logged training step of every run (metrics.jsonl), with the run's tags."""
    rows = []
    for d in run_dirs(sweep_dir):
        path = d / "metrics.jsonl"
        if not path.exists():
            continue
        run, _ = _run_record(d)
        cfg = (_read_json(d / "config.json") or {}).get("config") or {}
        keep = {"run": run["run"], "sweep": run["sweep"], "seed": run.get("seed"), **parse_tags(cfg.get("tags"))}
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "loss" in rec:
                rows.append({**keep, **{k: _num(v) for k, v in rec.items()}})
    return pd.DataFrame(rows)
