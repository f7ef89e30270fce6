"""The curse_lab study: the curse of multilinguality on derived languages (``xlmr_core.data.derived``).

K languages derived from one source at several widths and relatedness levels, so that only what a level
changes separates the languages. Language 0 is the source; the others are copies with their own documents and,
by level, their own piece ids and word order:

    level       share  order      what adding a language adds
    same        1      none       more text of the same language (the known answer: it helps, ψ < 0)
    half        0.5    none       a language sharing half its piece types with the source
    disjoint    0      none       a language with a vocabulary of its own, the same grammar
    inverted    0      inverted   a vocabulary of its own and reversed word order

Designs (tag ``arm``): ``matched`` (each language trains ``lang_tokens`` tokens, so a K-language run sees K
times the tokens: ATLAS's D_t fixed), and ``fixed`` (the total fixed at ``lang_tokens``, each language getting
1/K of it; one width). K = 1 is the same run for every level (only language 0 exists): tag ``level=base``,
which ``lab_table`` counts in every level.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xlmr_core.config import (
    CheckpointConfig,
    DataConfig,
    DeriveConfig,
    EvalConfig,
    ModelSpec,
    OptimConfig,
    RunConfig,
    ScheduleConfig,
)
from xlmr_core.errors import XlmrError

LEVELS: dict[str, dict] = {"same": dict(share=1.0, order="none"), "half": dict(share=0.5, order="none"),
                           "disjoint": dict(share=0.0, order="none"), "inverted": dict(share=0.0, order="inverted")}
"""Relatedness levels: derive.share and derive.order of languages 1 … K-1."""


@dataclass(frozen=True, kw_only=True)
class LabScale:
    """What a scale of the lab fixes."""

    source: str
    """``lab`` (the lab source, ``xlmr corpus lab``: English, ~19 MB) or ``demo:<lang>`` (a demo corpus file)."""
    ks: tuple[int, ...]
    widths: tuple[int, ...]
    levels: tuple[str, ...]
    lang_tokens: int
    """Training tokens per language in the matched design (the fixed arm's total)."""
    fixed_width: int | None
    """Width of the fixed-total arm (None: no such arm)."""
    vocab_size: int = 500
    """Pieces of the source tokenizer: small, because share=0 multiplies the vocabulary by K and the output
    layer's cost with it (at K = 16, 16 × 500 rows)."""
    layers: int = 2
    heads: int = 2
    seq_len: int = 64
    batch_tokens: int = 1024
    lr: float = 1e-3
    lr_ref_width: int = 128
    lr_width_exponent: float = 0.75
    """lr · (lr_ref_width / width)^this, as the capacity sweep (narrow models train best at larger rates)."""
    mask_prob: float = 0.4
    warmup_frac: float = 0.06
    heldout_lines: int = 500
    eval_masked: int = 4000
    eval_max_masked: int = 8000
    max_epochs: float = 4.0
    """No slice is seen for more epochs than this (``check``)."""
    retrieval: bool = True
    """The retrieval suite (held-out documents, language k against language 0) on runs with K ≥ 2."""
    ddtp_width: int | None = None
    """Width whose matched runs also get DDTP transfer (fine-tune on language 0, test on every language)."""


SCALES: dict[str, LabScale] = {
    # make demo: three K at one width where capacity binds, the same language against disjoint vocabularies
    "demo": LabScale(source="demo:de", ks=(1, 4, 16), widths=(16,), levels=("same", "disjoint"),
                     lang_tokens=150_000, fixed_width=None, heldout_lines=300, eval_masked=2000,
                     eval_max_masked=3000),
    # 2 cores, one seed in about an hour: widths 12-64 span 26x in non-embedding parameters (2 layers), so that
    # at 1M tokens a language the narrowest sees ~260 tokens per parameter and the widest ~10
    "cpu": LabScale(source="lab", ks=(1, 2, 4, 8, 16), widths=(12, 28, 64), levels=tuple(LEVELS),
                    lang_tokens=1_000_000, fixed_width=28, ddtp_width=28),
}


def get_scale(scale: str) -> LabScale:
    if scale not in SCALES:
        raise XlmrError(f"curse_lab has no scale {scale!r}: choose one of {', '.join(SCALES)}")
    return SCALES[scale]


def source_file(spec: str, corpus: str | os.PathLike | None = None) -> str:
    """The source language file of a scale's ``source`` (built on first use), or ``corpus`` if given as a file."""
    if corpus and Path(corpus).is_file():
        return str(corpus)
    if spec == "lab":
        from xlmr_core.democorpus.labsource import ensure_lab_source

        return str(ensure_lab_source())
    if spec.startswith("demo:"):
        from xlmr_core.democorpus import ensure_demo_corpus

        root = Path(corpus) if corpus else ensure_demo_corpus()
        return str(root / f"{spec[5:]}.txt")
    raise XlmrError(f"curse_lab source {spec!r}: give 'lab' or 'demo:<lang>'")


def _model(s: LabScale, width: int) -> ModelSpec:
    return ModelSpec(size="debug", num_layers=s.layers, hidden_size=width, num_heads=s.heads, ffn_size=4 * width,
                     pre_ln=True, dropout=0.0, attention_dropout=0.0)


def _run(s: LabScale, source: str, *, k: int, width: int, level: str, arm: str, seed: int, root, scale: str,
         sweep: str = "curse_lab") -> RunConfig:
    lv = LEVELS["same" if level == "base" else level]
    tokens = s.lang_tokens * (k if arm == "matched" else 1)
    steps = max(1, math.ceil(tokens / s.batch_tokens))
    lr = s.lr * (s.lr_ref_width / width) ** s.lr_width_exponent
    name = f"{arm}-{level}-K{k:02d}-h{width}-s{seed}"
    tags = {"sweep": sweep, "scale": scale, "point": name[: -len(f"-s{seed}")], "design": arm, "arm": arm,
            "level": level, "share": lv["share"], "order": lv["order"], "n_langs": k, "width": width,
            "lang_tokens": s.lang_tokens * (1 if arm == "matched" else 1 / k)}
    return RunConfig(
        run_dir=str(Path(root) / sweep / name), name=name, seed=seed, model=_model(s, width),
        data=DataConfig(vocab_size=s.vocab_size, seq_len=s.seq_len, batch_tokens=s.batch_tokens,
                        mask_prob=s.mask_prob, tokenizer_sample_lines=200_000, alpha=1.0),
        derive=DeriveConfig(k=k, source=source, share=lv["share"], order=lv["order"],
                            heldout_lines=s.heldout_lines),
        optim=OptimConfig(lr=lr),
        schedule=ScheduleConfig(steps=steps, warmup_steps=max(1, round(s.warmup_frac * steps))),
        eval=EvalConfig(masked_tokens=s.eval_masked, max_masked=s.eval_max_masked),
        checkpoint=CheckpointConfig(interval=max(steps, 1)),
        log_interval=max(1, steps // 20),
        tags=tuple(f"{k_}={v:g}" if isinstance(v, float) else f"{k_}={v}" for k_, v in tags.items()),
    )


def curse_lab(scale: str = "demo", seeds: tuple[int, ...] = (0,), root: str | os.PathLike = "results",
              corpus: str | os.PathLike | None = None) -> list[RunConfig]:
    """The lab's runs: every width × level × K in the matched design (K = 1 once per width), and the fixed-total
    arm at ``fixed_width`` for K ≥ 2 at every level."""
    s = get_scale(scale)
    source = source_file(s.source, corpus)
    check(scale, source)  # a source too small for the slices and tokens asked: one clear error, before anything
    runs = []
    for seed in seeds:
        for width in s.widths:
            runs.append(_run(s, source, k=1, width=width, level="base", arm="matched", seed=seed, root=root,
                             scale=scale))
            for level in s.levels:
                for k in (k for k in s.ks if k > 1):
                    runs.append(_run(s, source, k=k, width=width, level=level, arm="matched", seed=seed,
                                     root=root, scale=scale))
        if s.fixed_width is not None:
            for level in s.levels:
                for k in (k for k in s.ks if k > 1):
                    runs.append(_run(s, source, k=k, width=s.fixed_width, level=level, arm="fixed", seed=seed,
                                     root=root, scale=scale))
    return runs


def suites(scale: str, cfg: RunConfig) -> tuple[str, ...]:
    """Evaluation suites of one lab run beyond held-out bits per byte: retrieval between its languages (K ≥ 2)
    and, at ``ddtp_width``'s matched runs, DDTP transfer."""
    s = get_scale(scale)
    out = []
    if s.retrieval and cfg.derive.k >= 2:
        out.append("retrieval")
    width = cfg.model.hidden_size
    if s.ddtp_width == width and cfg.derive.k >= 2 and "arm=matched" in cfg.tags:
        out.append("ddtp")
    return tuple(out)


def check(scale: str, corpus: str | os.PathLike | None = None) -> dict:
    """The source's size against the scale: tokens per slice (estimated from bytes) and the epochs each
    language's slice is seen for; one clear error when a slice would repeat beyond ``max_epochs``."""
    s = get_scale(scale)
    source = source_file(s.source, corpus)
    st = Path(source).stat()
    counts = _source_counts(source, st.st_size, st.st_mtime_ns, s.heldout_lines)
    bytes_per_token = 2.6 if s.vocab_size <= 1000 else 3.6
    slice_tokens = min(counts["slice_bytes"]) / bytes_per_token
    epochs = s.lang_tokens / slice_tokens
    if epochs > s.max_epochs:
        raise XlmrError(f"curse_lab --scale {scale}: {source} gives slices of about {slice_tokens:,.0f} tokens; "
                        f"{s.lang_tokens:,} tokens a language would repeat each {epochs:.1f} times (at most "
                        f"{s.max_epochs:g}): give a larger source or fewer tokens")
    return {"source": source, "slice_tokens": slice_tokens, "epochs": epochs, **counts}


@functools.lru_cache(maxsize=8)
def _source_counts(source: str, size: int, mtime_ns: int, heldout_lines: int) -> dict:
    from xlmr_core.data.derived import split_source

    return split_source(DeriveConfig(k=1, source=source, heldout_lines=heldout_lines))[2]


# ---------------------------------------------------------------------------------------------
# analysis (the curse_lab notebook)


def lab_table(table) -> pd.DataFrame:
    """One row per curse_lab run and trained language from a study's tidy table (``results.read_table``):
    ``K``, ``N`` (non-embedding parameters), ``D_t`` (tokens of that language seen: tokens × its sampling
    probability), ``loss`` (bits per source byte) and ``loss_se``, ``unigram_bpb``, the retrieval accuracy against
    language 0 (``retrieval``, mean of both directions) and DDTP accuracy (``ddtp``) where measured, with the
    run's ``arm``, ``level``, ``share``, ``order``, ``width``, ``seed``. The K = 1 run of a width (``level=base``)
    appears once for every level of the table, ``base`` True."""
    from xlmr_core.study import results

    df = results.per_lang(table)
    if "seen" in df.columns:
        df = df[df["seen"]]
    need = ["n_langs", "params_non_embedding", "tokens", "prob", "bpb", "level", "arm", "width"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise XlmrError(f"lab_table: the table has no column(s) {', '.join(missing)}: is it a curse_lab study's "
                        "table (`xlmr-sweep collect curse_lab`)?")
    out = pd.DataFrame({
        "run": df["run"], "lang": df["lang"], "arm": df["arm"].astype(str), "level": df["level"].astype(str),
        "width": df["width"].astype(int), "seed": df["seed"].astype(int) if "seed" in df else 0,
        "K": df["n_langs"].astype(int), "N": df["params_non_embedding"].astype(float),
        "D_t": df["tokens"].astype(float) * df["prob"].astype(float), "loss": df["bpb"].astype(float),
        "loss_se": df["bpb_se"].astype(float) if "bpb_se" in df else np.nan,
        "unigram_bpb": df["unigram_bpb"].astype(float) if "unigram_bpb" in df else np.nan,
    })
    ret = [c for c in ("retrieval.docs_heldout.to_pivot", "retrieval.docs_heldout.from_pivot") if c in df]
    out["retrieval"] = df[ret].astype(float).mean(axis=1) if ret else np.nan
    out["ddtp"] = df["ddtp.accuracy"].astype(float) if "ddtp.accuracy" in df else np.nan
    levels = [lv for lv in LEVELS if lv in set(out["level"])]
    base = out[out["level"] == "base"]
    rest = out[out["level"] != "base"].assign(base=False)
    copies = [base.assign(level=lv, base=True) for lv in levels] or [base.assign(base=True)]
    return pd.concat([rest, *copies], ignore_index=True)


def run_points(lab: pd.DataFrame) -> pd.DataFrame:
    """One point per run and level: the loss averaged over the run's languages (its standard error from the
    languages' in quadrature), the mean D_t (to three significant figures), and retrieval and DDTP accuracy
    averaged over languages k ≥ 1."""
    keys = ["run", "arm", "level", "width", "seed", "K", "N", "base"]

    def agg(g: pd.DataFrame) -> pd.Series:
        other = g[g["lang"] != g["lang"].min()]
        # tokens a language saw: tokens / K up to whole steps (1,000,448 for 1M): three significant figures, so
        # runs of one design share a D_t and carry-forward baselines find their points
        d_t = float(f"{g['D_t'].mean():.3g}")
        return pd.Series({"D_t": d_t, "loss": g["loss"].mean(),
                          "loss_se": math.sqrt((g["loss_se"] ** 2).sum()) / len(g),
                          "unigram_bpb": g["unigram_bpb"].mean(), "source_loss": g.sort_values("lang")["loss"].iloc[0],
                          "retrieval": other["retrieval"].mean(), "ddtp": other["ddtp"].mean(),
                          "langs": len(g)})

    return lab.groupby(keys, dropna=False).apply(agg, include_groups=False).reset_index()


MIN_FIT_POINTS = 10
"""A level is fitted from this many runs on (the law has 7 parameters): the demo's K-sweep at one width is not."""


def _why_not_fitted(sub: pd.DataFrame) -> str | None:
    if len(sub) < MIN_FIT_POINTS:
        return f"not fitted: {len(sub)} runs (the law needs {MIN_FIT_POINTS} or more)"
    if sub["N"].nunique() < 2:
        return "not fitted: one width (N takes one value, α is not identified)"
    return None


def fit_levels(points: pd.DataFrame, *, n_boot: int = 200, seed: int = 0) -> dict:
    """The ATLAS law L = L∞ + A·K^φ/N^α + B·K^ψ/D_t^β per relatedness level (both arms), and jointly with one L∞
    per level (``joint``): {level: LawFit, "joint": LawFit}; where a level has fewer than ``MIN_FIT_POINTS`` runs,
    or a single width, the reason instead of a fit."""
    from xlmr_core.study.laws import fit_law

    out = {}
    for level, sub in points.groupby("level"):
        out[level] = _why_not_fitted(sub) or fit_law(sub.reset_index(drop=True), "atlas", n_boot=n_boot, seed=seed)
    out["joint"] = _why_not_fitted(points) or fit_law(points.reset_index(drop=True), "atlas", constant_by="level",
                                                        n_boot=n_boot, seed=seed)
    return out


def exponent_rows(fits: dict) -> pd.DataFrame:
    """φ, ψ, α, β (and L∞, R²) with their bootstrap intervals, one row per fit."""
    rows = []
    for name, f in fits.items():
        if isinstance(f, str):
            rows.append({"fit": name, "flags": f})
            continue
        row = {"fit": name, "points": f.n_points, "r2": f.r2, "r2_within": f.r2_within, "flags": "; ".join(f.flags)}
        for p in ("phi", "psi", "alpha", "beta", "L_inf"):
            if p in f.params:
                lo, hi = f.ci.get(p, (math.nan, math.nan))
                row.update({p: f.params[p], f"{p}_lo": lo, f"{p}_hi": hi})
        rows.append(row)
    return pd.DataFrame(rows)


def k_effects(points: pd.DataFrame) -> pd.DataFrame:
    """What adding languages does, per arm, level and width: loss at each K minus loss at K = 1 (bits per source
    byte; negative: the languages helped), with its standard error from the two evaluations (in quadrature;
    the seeds' spread, with several seeds, as ``seed_sd``)."""
    rows = []
    for (arm, level, width), g in points.groupby(["arm", "level", "width"]):
        base = points[(points["level"] == level) & (points["width"] == width) & (points["K"] == 1)]
        if base.empty:
            continue
        b, b_se = base["loss"].mean(), float(np.sqrt((base["loss_se"] ** 2).mean() / len(base)))
        for k, d in g[g["K"] > 1].groupby("K"):
            per_seed = d.groupby("seed")["loss"].mean() - base.groupby("seed")["loss"].mean()
            rows.append({"arm": arm, "level": level, "width": width, "K": k, "delta": d["loss"].mean() - b,
                         "se": float(np.sqrt((d["loss_se"] ** 2).mean() / len(d) + b_se ** 2)),
                         "seed_sd": float(per_seed.std()) if per_seed.notna().sum() > 1 else np.nan,
                         "seeds": int(per_seed.notna().sum())})
    out = pd.DataFrame(rows)
    if not out.empty:
        out["z"] = out["delta"] / out["se"]
    return out


def extrapolations(points: pd.DataFrame, *, n_boot: int = 100, seed: int = 0) -> pd.DataFrame:
    """Per level: the ATLAS law fitted without the largest K (then without the largest N) and scored on the
    held-out points, against carrying the last fitted value forward (mean |relative error| of each)."""
    from xlmr_core.study.laws import extrapolate

    rows = []
    for level, sub in points.groupby("level"):
        for by in ("K", "N"):
            why = _why_not_fitted(sub) or (f"not fitted: {by} takes {sub[by].nunique()} values"
                                           if sub[by].nunique() < 3 else None)
            if why:
                rows.append({"level": level, "held_out": f"largest {by}", "flags": why})
                continue
            ex = extrapolate(sub.reset_index(drop=True), "atlas", by=by, n_boot=n_boot, seed=seed)
            rows.append({"level": level, "held_out": f"largest {by}", "points": len(ex.points),
                         "law_error": ex.mean_abs_rel_error, "law_error_lo": ex.mean_abs_rel_error_ci[0],
                         "law_error_hi": ex.mean_abs_rel_error_ci[1],
                         "carry_forward_error": ex.baseline_mean_abs_rel_error,
                         "law_error_same_points": ex.law_mean_abs_rel_error_on_baseline,
                         "eval_rel_se": ex.mean_eval_rel_se, "flags": "; ".join(ex.flags + ex.fit.flags)})
    return pd.DataFrame(rows)
