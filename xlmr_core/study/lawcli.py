"""``xlmr laws fit``: a scaling law fitted to anyone's table (a CSV of runs), with bootstrap intervals and flags.

The fitting is :func:`xlmr_core.study.laws.fit_law`'s (Huber on log-loss, L-BFGS-B from a grid of starts, as
Hoffmann et al. 2022 and Besiroglu et al. 2024); this module only turns a table into the law's variables:

- ``--columns N=…,D=…,loss=…`` maps each variable of the law (``xlmr laws fit --help`` lists them) to a column
  of the table or to an expression over its columns, evaluated by ``pandas.DataFrame.eval``: units are
  changed there (``N=Non_vocab_parameters/1e6``) and derived sizes built (``D=`Training FLOP` / (6 *
  `Model Size`)``; names with spaces in backticks).
- ``--where EXPR`` keeps the rows a ``DataFrame.query`` expression selects (``--where "FLOPs >= 2.18e17"``);
  ``--drop-highest K`` drops the rows at or above the K-th highest loss, as Besiroglu et al. drop the five
  highest-loss runs of Chinchilla's Figure 4.

The coefficients are reported in the units of the columns as given, so a published fit is reproduced only in its
own units (``benchmarks/laws_published.py`` does it for two published tables).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xlmr_core.errors import XlmrError
from xlmr_core.study import laws

_SPEC_SPLIT = re.compile(r",\s*(?=[A-Za-z_][A-Za-z_0-9]*\s*=(?!=))")  # a comma that starts the next VAR=


def parse_columns(specs: str | Sequence[str]) -> dict[str, str]:
    """``"N=Model Size,D=tokens,loss=loss"`` (or several such strings) -> {variable: column or expression}."""
    out: dict[str, str] = {}
    for spec in [specs] if isinstance(specs, str) else specs:
        for item in _SPEC_SPLIT.split(spec.strip()):
            if not item.strip():
                continue
            var, sep, expr = item.partition("=")
            if not sep or not var.strip() or not expr.strip():
                raise XlmrError(f"--columns: {item!r} is not VARIABLE=COLUMN_OR_EXPRESSION (e.g. N=params)")
            out[var.strip()] = expr.strip()
    return out


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV or TSV table (the separator is detected), or a JSON records file."""
    path = Path(path)
    if not path.is_file():
        raise XlmrError(f"table {path} does not exist: give the path of a CSV file of runs")
    try:
        if path.suffix.lower() == ".json":
            return pd.read_json(path)
        return pd.read_csv(path, sep=None, engine="python")
    except (ValueError, pd.errors.ParserError) as e:
        raise XlmrError(f"{path} could not be read as a table ({e}): give a CSV with a header row") from None


def _column(raw: pd.DataFrame, expr: str, var: str) -> pd.Series:
    if expr in raw.columns:
        values = raw[expr]
    else:
        try:
            values = raw.eval(expr, engine="python")
        except Exception as e:  # pandas raises many kinds for a bad expression: name the one the user wrote
            raise XlmrError(f"--columns {var}={expr}: not a column nor an expression over the columns ({e}); "
                            f"columns: {', '.join(map(str, raw.columns))} (names with spaces in backticks)"
                            ) from None
    values = pd.to_numeric(pd.Series(values, index=raw.index), errors="coerce")
    if values.isna().all():
        raise XlmrError(f"--columns {var}={expr}: no numeric values")
    return values.astype(float)


def law_table(raw: pd.DataFrame, law: str | laws.Law, columns: Mapping[str, str], *, where: str | None = None,
              drop_highest: int = 0, constant_by: str | None = None) -> pd.DataFrame:
    """The law's variables and ``loss`` computed from ``raw`` by ``columns``, on the rows ``where`` keeps, less the
    ``drop_highest`` highest losses; ``constant_by``'s column is carried along."""
    law = laws.get_law(law)
    need = [*law.variables, "loss"]
    missing = [v for v in need if v not in columns]
    unknown = [v for v in columns if v not in need]
    if missing or unknown:
        what = (f"missing {', '.join(missing)}" if missing else "") + ("; " if missing and unknown else "") + (
            f"not variables of the law: {', '.join(unknown)}" if unknown else "")
        raise XlmrError(f"--columns for the {law.name} law ({law.formula}) needs {', '.join(need)}: {what}")
    if where:
        try:
            raw = raw.query(where, engine="python")
        except Exception as e:
            raise XlmrError(f"--where {where!r}: not a row selection over the columns ({e})") from None
    table = pd.DataFrame({v: _column(raw, columns[v], v) for v in need}, index=raw.index)
    if constant_by:
        if constant_by not in raw.columns:
            raise XlmrError(f"--constant-by {constant_by}: no such column; columns: {', '.join(map(str, raw.columns))}")
        table[constant_by] = raw[constant_by].astype(str)
    if drop_highest:
        # as Besiroglu et al.: keep losses[i] < sorted(losses)[-K] (ties with the K-th highest go too)
        cut = np.sort(table["loss"].dropna().to_numpy())[-drop_highest]
        table = table[table["loss"] < cut]
    table = table.reset_index(drop=True)
    table.attrs["loss"] = f"{columns['loss']}"
    return table


def fit_summary(fit: laws.LawFit, **extra) -> dict:
    """A fit as a JSON-ready dict: parameters with intervals, R², counts and flags."""
    params = {p: {"value": fit.params[p], "lo": fit.ci[p][0], "hi": fit.ci[p][1]} for p in fit.param_names}
    return {"law": fit.law.name, "formula": fit.law.formula, "columns": dict(fit.columns), "space": fit.space,
            "params": params, "r2": fit.r2, "r2_ci": list(fit.r2_ci), "n_rows": fit.n_rows,
            "n_points": fit.n_points, "n_boot": fit.n_boot, "n_boot_ok": len(fit.boot), "level": fit.level,
            "ok": fit.ok, "flags": list(fit.flags), **extra}


def _json_safe(x):
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, float) and not np.isfinite(x):
        return None  # JSON has no NaN
    return x


def write_fit(fit: laws.LawFit, path: str | Path, **extra) -> Path:
    """``.json``: :func:`fit_summary`; anything else: CSV of ``LawFit.table()`` (one row per parameter, then R²)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        text = json.dumps(_json_safe(fit_summary(fit, **extra)), indent=2, ensure_ascii=False)
        path.write_text(text + "\n", encoding="utf-8")
    else:
        df = fit.table().assign(ok=fit.ok, flags="; ".join(fit.flags), n_rows=fit.n_rows)
        df.to_csv(path, index=False)
    return path


@dataclass(frozen=True, kw_only=True)
class PublishedFit:
    """A published fit and how to redo it with ``xlmr laws fit``: its table, columns, rows and coefficients."""

    name: str
    folder: str
    """Folder of the table under the reference-data directory (which has its SOURCE.md)."""
    file: str
    law: str
    columns: dict[str, str]
    where: str | None = None
    drop_highest: int = 0
    published: dict[str, float]
    """The published coefficients, in the units of ``columns``."""
    source: str


PUBLISHED_FITS: tuple[PublishedFit, ...] = (
    PublishedFit(
        name="epoch_chinchilla", folder="epoch_chinchilla_2024", file="svg_extracted_data.csv", law="chinchilla",
        # D = C / (6N), as the replication's notebook (cell 3)
        columns={"N": "`Model Size`", "D": "`Training FLOP` / (6 * `Model Size`)", "loss": "loss"},
        drop_highest=5,
        published={"E": 1.817, "A": 478.0, "B": 2144.0, "alpha": 0.347, "beta": 0.367},
        source="Besiroglu et al. 2024 (Epoch AI), Chinchilla replication, 'replicate exactly' fit on 240 points"),
    PublishedFit(
        name="tao_vocab", folder="tao_vocab_2024", file="exp_data.csv", law="vocab",
        # their units: N_nv and V·d in millions, H in 1e9 characters; D = H · f(ln(V / 1000)) as their code calls
        # H_to_D with V already divided by 1000 (SOURCE.md)
        columns={"N": "Non_vocab_parameters / 1e6", "N_v": "vocab_size * embed_dim / 1e6",
                 "D": "num_characters / 1e9 * (0.00639222 * log(vocab_size / 1000) ** 2 "
                      "- 0.15811069 * log(vocab_size / 1000) + 1.20470122)",
                 "loss": "Lossu"},
        where="FLOPs >= 2.18e17",
        published={"E": 5.533, "A1": 1.831, "A2": 0.196, "B": 2.124, "alpha1": 0.447, "alpha2": 0.671,
                   "beta": 0.447},
        source="Tao et al. 2024, approach 3 (optimal_Nv_predict.py), rows with FLOPs >= 2.18e17"),
)


def fit_published(spec: PublishedFit, data_dir: str | Path, **fit_kw) -> tuple[laws.LawFit, float]:
    """Refit ``spec`` on its table under ``data_dir``: the fit and the seconds it took (bootstrap included)."""
    path = Path(data_dir) / spec.folder / spec.file
    table = law_table(read_table(path), spec.law, spec.columns, where=spec.where, drop_highest=spec.drop_highest)
    t0 = time.perf_counter()
    fit = laws.fit_law(table, spec.law, **fit_kw)
    return fit, time.perf_counter() - t0


def compare_published(spec: PublishedFit, fit: laws.LawFit) -> pd.DataFrame:
    """Per coefficient: published, ours [interval], and the relative difference (ours − published) / published."""
    rows = [{"fit": spec.name, "param": p, "published": v, "ours": fit.params[p], "lo": fit.ci[p][0],
             "hi": fit.ci[p][1], "rel_diff": (fit.params[p] - v) / abs(v)} for p, v in spec.published.items()]
    return pd.DataFrame(rows)


def _cli_fit(args) -> int:
    columns = parse_columns(args.columns)
    table = law_table(read_table(args.table), args.law, columns, where=args.where, drop_highest=args.drop_highest,
                      constant_by=args.constant_by)
    t0 = time.perf_counter()
    fit = laws.fit_law(table, args.law, n_boot=args.n_boot, level=args.level, seed=args.seed, space=args.space,
                       constant_by=args.constant_by, max_inits=args.max_inits)
    seconds = time.perf_counter() - t0
    print(f"{args.table}: {len(table)} rows" + (f" where {args.where}" if args.where else "")
          + (f", less the {args.drop_highest} highest losses" if args.drop_highest else "")
          + "; " + ", ".join(f"{v} = {e}" for v, e in columns.items()))
    print(fit)
    print(f"  fitted in {seconds:.1f} s ({args.n_boot} bootstrap refits)")
    if args.out:
        path = write_fit(fit, args.out, table=str(args.table), columns=columns, where=args.where,
                         drop_highest=args.drop_highest, seconds=seconds)
        print(f"wrote {path}")
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("laws", help="scaling laws on any table of runs: xlmr laws fit TABLE.csv --law ...")
    lsub = p.add_subparsers(dest="laws_command", required=True, metavar="SUBCOMMAND")
    variables = "; ".join(f"{name}: {', '.join((*law.variables, 'loss'))}" for name, law in laws.LAWS.items())
    f = lsub.add_parser("fit", help="fit a law to a CSV table: parameters with bootstrap intervals, R², flags",
                        description=__doc__.split("\n\n")[0])
    f.add_argument("table", help="CSV (or TSV, or JSON records) with one row per run or evaluation")
    f.add_argument("--law", choices=list(laws.LAWS), default="chinchilla", help="the law (default chinchilla)")
    f.add_argument("--columns", action="append", required=True, metavar="VAR=COL,...",
                   help=f"each variable of the law as a column or a pandas expression over the columns ({variables})")
    f.add_argument("--where", help="keep the rows this pandas query selects, e.g. 'FLOPs >= 2.18e17'")
    f.add_argument("--drop-highest", type=int, default=0, metavar="K", help="drop the K highest losses")
    f.add_argument("--constant-by", metavar="COLUMN", help="one constant per value of this column (e.g. lang)")
    f.add_argument("--space", choices=["log", "linear"], help="Huber on log-loss or on the loss (default: the law's)")
    f.add_argument("--n-boot", type=int, default=200, help="bootstrap refits for the intervals (default 200)")
    f.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    f.add_argument("--max-inits", type=int, default=64, help="starts of the optimiser's grid (default 64)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--out", help="write the fit: .json (summary) or .csv (one row per parameter)")
    f.set_defaults(func=_cli_fit)
