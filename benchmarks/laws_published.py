"""How close ``xlmr laws fit`` comes to two published scaling-law fits, per coefficient, and how long each fit takes.

    python benchmarks/laws_published.py                       # both fits, 200 bootstrap refits each
    python benchmarks/laws_published.py --n-boot 0 --json benchmarks/results/laws_published.json

The tables are read from the reference-data folder ``../shared/data`` beside the repository (or ``--data`` or
$XLMR_SHARED_DATA); they are never copied into this repository. Each folder's SOURCE.md gives the provenance,
units and exact published fit:

- ``epoch_chinchilla_2024``: Besiroglu et al. 2024's Chinchilla replication, 240 of 245 points;
- ``tao_vocab_2024``: Tao et al. 2024's vocabulary-law data, the 1054 rows with FLOPs ≥ 2.18e17.

The fits are exactly what ``xlmr laws fit`` runs (the column expressions are in ``lawcli.PUBLISHED_FITS``). Printed
per coefficient: published, ours with its bootstrap interval, relative difference; then the seconds of the
point fit (the grid of starts) and of the bootstrap. Exit status 1 if a coefficient is off by more than
``--tolerance`` (5 %).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xlmr_core.study import lawcli  # noqa: E402


def data_dir(given: str | None) -> Path:
    """``--data``, else $XLMR_SHARED_DATA, else ``../shared/data`` relative to the repository root."""
    return Path(given or os.environ.get("XLMR_SHARED_DATA") or REPO.parent / "shared" / "data").resolve()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="reference-data folder (default ../shared/data beside the repository)")
    ap.add_argument("--n-boot", type=int, default=200, help="bootstrap refits (default 200)")
    ap.add_argument("--tolerance", type=float, default=0.05, help="largest relative difference allowed (0.05)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    root = data_dir(args.data)
    if not root.is_dir():
        print(f"no reference data at {root}: give --data DIR (the folder holding epoch_chinchilla_2024/ and "
              f"tao_vocab_2024/)", file=sys.stderr)
        return 2
    out, worst = {"host": platform.node(), "cpus": os.cpu_count(), "n_boot": args.n_boot, "fits": {}}, 0.0
    for spec in lawcli.PUBLISHED_FITS:
        t0 = time.perf_counter()
        point, t_point = lawcli.fit_published(spec, root, n_boot=0)
        fit, t_all = lawcli.fit_published(spec, root, n_boot=args.n_boot) if args.n_boot else (point, t_point)
        cmp = lawcli.compare_published(spec, fit)
        worst = max(worst, float(cmp["rel_diff"].abs().max()))
        print(f"\n{spec.name}: {spec.source}\n  {fit.n_rows} rows; R² = {fit.r2:.4f}; flags: "
              f"{'; '.join(fit.flags) or 'none'}")
        print(f"  {'param':<7} {'published':>10} {'ours':>10} {'interval':>22} {'rel. diff':>10}")
        for r in cmp.itertuples():
            interval = f"[{r.lo:.4g}, {r.hi:.4g}]" if args.n_boot else "-"
            print(f"  {r.param:<7} {r.published:>10.4g} {r.ours:>10.4g} {interval:>22} {r.rel_diff:>+10.2%}")
        print(f"  point fit {t_point:.2f} s; with {args.n_boot} bootstrap refits {t_all:.2f} s "
              f"(wall {time.perf_counter() - t0:.2f} s for both)")
        out["fits"][spec.name] = {"source": spec.source, "rows": fit.n_rows, "r2": fit.r2, "flags": fit.flags,
                                  "point_fit_s": t_point, "fit_with_bootstrap_s": t_all,
                                  "coefficients": cmp.drop(columns="fit").to_dict(orient="records")}
    ok = worst <= args.tolerance
    print(f"\nlargest relative difference {worst:.2%} ({'within' if ok else 'beyond'} {args.tolerance:.0%})")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
