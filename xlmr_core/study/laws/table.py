"""The table the laws are fitted on: ``fitting_table`` (from ``results.load_long``: K, N, D, D_t, N_v and the loss,
one row per finished run and language or group), ``load_table`` (the same from sweep directories; empty, with a
note, when there is nothing to fit), repetition-aware effective data (``effective_data``, Muennighoff et al. 2023,
and ``data_columns``: which D a law is fitted on) and ``design_summary`` (what a fit can see).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from xlmr_core.errors import XlmrError

LOSS_ALIASES = {"bpb_below_unigram": "unigram_normalised", "unigram_normalized": "unigram_normalised"}
TABLE_COLUMNS = ("K", "N", "D", "D_t", "N_v", "loss")

R_STAR = 15.4
"""Muennighoff et al. 2023 (arXiv 2305.16264), their C4 fit: repeated tokens lose value with a decay constant of
R* ≈ 15.4 repetitions (after about 4 epochs the loss in value becomes visible; after ~40 repeating is worthless)."""


def effective_data(D, U, r_star: float = R_STAR):
    """Muennighoff et al. 2023's repetition-aware data D' = U + U·R*·(1 − exp(−R/R*)), R = max(D/U − 1, 0):
    D tokens seen of U unique tokens (element-wise; D where U is missing or not positive). ATLAS's S_λ has the
    same form with λ = 1/R*. One epoch is worth 1 U, 4 epochs 3.73 U, 16 epochs 10.6 U; D' never exceeds
    U·(1 + R*)."""
    D = np.asarray(D, dtype=float)
    U = np.asarray(U, dtype=float)
    ok = np.isfinite(U) & (U > 0)
    Us = np.where(ok, U, 1.0)
    R = np.maximum(D / Us - 1.0, 0.0)
    eff = np.where(D > Us, Us + Us * r_star * (1.0 - np.exp(-R / r_star)), D)
    out = np.where(ok, eff, D)
    return out if out.ndim else float(out)


def fitting_table(long_df: pd.DataFrame, loss: str = "bpb", *, params: str = "params_non_embedding",
                  target_tokens: str | None = None, select: Mapping[str, object] | None = None,
                  aggregate: str = "lang", trained_only: bool = True) -> pd.DataFrame:
    """The table the laws are fitted on, from ``results.load_long``: one row per finished run and trained language
    (``aggregate="group"``: per run and resource group), with the long table's columns plus

    - ``K`` (``n_langs``), ``N`` (``params``, non-embedding by default), ``D`` (tokens seen, ``tokens``),
    - ``D_t``: tokens of that language seen, ``tokens × prob`` (or the column ``target_tokens``),
    - ``D_t_eff`` and ``D_eff``: the same as repetition-aware effective data (``effective_data``, Muennighoff et
      al. 2023) from each language's unique training tokens (``unique_tokens``, else ``train_tokens``), D_eff
      summed over the run's training languages; ``repeated``: the language was seen for more than one epoch,
    - ``N_v``: vocabulary parameters (``params_vocab``, else ``vocab_pieces × hidden_size``),
    - ``loss``: ``bpb``, or ``unigram_normalised`` (also ``bpb_below_unigram``): bpb − unigram bpb =
      −bpb_below_unigram, Tao et al.'s loss, negative when the model beats its unigram baseline; or any column
      that is a loss (lower is better).

    ``select`` keeps the rows whose columns equal the given values (``{"design": "matched"}``; None values are
    ignored). With ``aggregate="group"`` the loss is the mean over the group's languages and D_t their
    geometric mean. ``table.attrs["loss"]`` says what the loss column holds.
    """
    loss = LOSS_ALIASES.get(loss, loss)
    if aggregate not in ("lang", "group"):
        raise XlmrError(f"fitting_table: aggregate must be 'lang' or 'group', got {aggregate!r}")
    if long_df is None or long_df.empty:
        return _empty_table(loss, "no runs in the results")
    df = long_df.copy()
    if "status" in df.columns:
        df = df[df["status"] == "done"]
    if trained_only and "seen" in df.columns:
        df = df[df["seen"].fillna(False).astype(bool)]
    for col, value in (select or {}).items():
        if value is None:
            continue
        if col not in df.columns:
            raise XlmrError(f"fitting_table: no column {col!r} to select {col}={value!r} on; the sweep's tags "
                            f"are the columns ({', '.join(map(str, df.columns[:30]))})")
        df = df[df[col] == value]
    need = ["n_langs", params, "tokens"] + ([target_tokens] if target_tokens else ["prob"])
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise XlmrError(f"fitting_table: the results have no column(s) {', '.join(missing)}; is this a "
                        f"results.load_long table of finished runs?")
    df["K"] = df["n_langs"].astype(float)
    df["N"] = df[params].astype(float)
    df["D"] = df["tokens"].astype(float)
    df["D_t"] = (df[target_tokens] if target_tokens else df["tokens"] * df["prob"]).astype(float)
    # repetition-aware data (Muennighoff et al. 2023): D_t_eff from the language's unique training tokens, D_eff
    # the sum over the run's training languages (the rows of the table before aggregation); equal to D_t and D
    # where nothing is repeated or the unique tokens are unknown
    unique = df["unique_tokens"] if "unique_tokens" in df.columns else df.get("train_tokens")
    df["D_t_eff"] = effective_data(df["D_t"], unique if unique is not None else np.nan)
    df["repeated"] = unique.astype(float).lt(df["D_t"]).to_numpy() if unique is not None else False
    run_keys = [c for c in ("run", "sweep") if c in df.columns]
    if run_keys and "prob" in df.columns and not target_tokens:
        gain = (df["D_t_eff"] - df["D_t"]).fillna(0.0).groupby([df[k] for k in run_keys], dropna=False).transform("sum")
        df["D_eff"] = df["D"] + gain
    else:
        df["D_eff"] = df["D"]
    if "params_vocab" in df.columns:
        df["N_v"] = df["params_vocab"].astype(float)
    elif {"vocab_pieces", "hidden_size"} <= set(df.columns):
        df["N_v"] = df["vocab_pieces"].astype(float) * df["hidden_size"].astype(float)
    else:
        df["N_v"] = np.nan
    if loss == "unigram_normalised":
        if "bpb_below_unigram" in df.columns:
            df["loss"] = -df["bpb_below_unigram"].astype(float)
        elif {"bpb", "unigram_bpb"} <= set(df.columns):
            df["loss"] = df["bpb"].astype(float) - df["unigram_bpb"].astype(float)
        else:
            raise XlmrError("fitting_table: the runs have no unigram baseline (bpb_below_unigram / unigram_bpb): "
                            "evaluate them again with the bpb suite (xlmr eval RUN --suite bpb)")
        what = "bpb − unigram bpb (unigram-normalised)"
        df["loss_se"] = df["bpb_below_unigram_se"].astype(float) if "bpb_below_unigram_se" in df.columns else np.nan
    else:
        if loss not in df.columns:
            raise XlmrError(f"fitting_table: no loss column {loss!r} in the results "
                            f"(bpb, unigram_normalised or a column of the table)")
        df["loss"] = df[loss].astype(float)
        df["loss_se"] = df[f"{loss}_se"].astype(float) if f"{loss}_se" in df.columns else np.nan
        what = "held-out bits per byte" if loss == "bpb" else loss
    if aggregate == "group":
        if "group" not in df.columns:
            raise XlmrError("fitting_table: aggregate='group' needs the group column (high/low tags of the sweep)")
        keys = [c for c in ("run", "sweep", "group") if c in df.columns]
        first = df.groupby(keys, dropna=False).first()
        agg = df.groupby(keys, dropna=False).agg(
            D_t_eff=("D_t_eff", lambda s: float(np.exp(np.log(s[s > 0]).mean())) if (s > 0).any() else np.nan),
            repeated=("repeated", "any"),
            loss=("loss", "mean"), loss_se=("loss_se", lambda s: float(np.sqrt((s ** 2).sum()) / len(s))),
            D_t=("D_t", lambda s: float(np.exp(np.log(s[s > 0]).mean())) if (s > 0).any()
                                        else np.nan), n_group_langs=("lang", "nunique"))
        df = (first.drop(columns=["loss", "loss_se", "D_t", "D_t_eff", "repeated", "lang"], errors="ignore")
              .join(agg).reset_index())
    df = df.reset_index(drop=True)
    df.attrs["loss"] = what
    df.attrs["loss_name"] = loss
    return df


def data_columns(table: pd.DataFrame) -> tuple[dict[str, str], str]:
    """Which data columns a law should be fitted on: ``({"D_t": "D_t_eff", "D": "D_eff"}, note)`` when any point
    of ``table`` repeats a language beyond one epoch (DESIGN.md: a law must use effective data), else ``({}, note)``
    for the tokens seen; ``note`` says which D was used and why (pass the dict as ``fit_law(columns=...)``)."""
    if "repeated" not in table.columns or table.empty:
        return {}, "D = tokens seen (the table has no repetition columns)"
    n = int(table["repeated"].fillna(False).astype(bool).sum())
    if not n:
        return {}, "D = tokens seen: no point repeats a language beyond one epoch"
    return ({"D_t": "D_t_eff", "D": "D_eff"},
            f"D = effective data D_eff, D_t_eff (Muennighoff et al. 2023, R* = {R_STAR:g}): {n} of {len(table)} "
            "points repeat their language beyond one epoch")


def _empty_table(loss: str, note: str) -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype=float) for c in TABLE_COLUMNS})
    df.attrs.update(loss=loss, loss_name=loss, note=note)
    return df


def load_table(sweep_dir: str | os.PathLike | Sequence[str | os.PathLike], loss: str = "bpb",
               **kw) -> pd.DataFrame:
    """``fitting_table(results.load_long(sweep_dir), loss, **kw)``; several sweep directories are read into one
    table (the law grid's own runs and the capacity sweep's, its budget-1 points), skipping missing ones. A sweep
    that is missing, has no finished runs or lacks the loss asked for gives an empty table whose
    ``attrs["note"]`` says why (and prints it): fits on it are flagged, not raised, so a notebook runs through
    on whatever results exist."""
    from xlmr_core.study.results import load_long

    dirs = [Path(sweep_dir)] if isinstance(sweep_dir, (str, os.PathLike)) else [Path(d) for d in sweep_dir]
    frames, errors = [], []
    for d in dirs:
        try:
            frames.append(load_long(d))
        except XlmrError as e:
            errors.append(str(e))
    try:
        if not frames:
            raise XlmrError("; ".join(errors) or "no sweep directory given")
        table = fitting_table(pd.concat(frames, ignore_index=True), loss, **kw)
    except XlmrError as e:
        print(f"no results to fit: {e}")
        return _empty_table(loss, str(e))
    if table.empty:
        table.attrs["note"] = f"no finished runs with a {loss} value in {', '.join(str(d) for d in dirs)}"
        print(f"no results to fit: {table.attrs['note']}")
    return table


def design_summary(table: pd.DataFrame, variables: Sequence[str] = ("K", "N", "D_t", "D", "N_v")) -> pd.DataFrame:
    """What a fit can see: per variable the distinct values, min, max and their ratio (the span of the law)."""
    rows = []
    for v in variables:
        if v not in table.columns:
            continue
        s = table[v].dropna()
        s = s[s > 0]
        rows.append({"variable": v, "distinct": int(s.nunique()), "min": float(s.min()) if len(s) else np.nan,
                     "max": float(s.max()) if len(s) else np.nan,
                     "ratio": float(s.max() / s.min()) if len(s) else np.nan})
    n = len(table)
    rows.append({"variable": "rows", "distinct": n, "min": np.nan, "max": np.nan, "ratio": np.nan})
    return pd.DataFrame(rows)
