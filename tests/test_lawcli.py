"""``xlmr laws fit`` on anyone's table: column expressions, row selection, outputs, errors; and the two published
fits (Besiroglu et al. 2024's Chinchilla replication, Tao et al. 2024's vocabulary law) reproduced within 5 % per
coefficient from the reference data in ``../shared/data`` (skipped where that folder is absent)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xlmr_core.cli import main
from xlmr_core.errors import XlmrError
from xlmr_core.study import lawcli

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("XLMR_SHARED_DATA") or REPO.parent / "shared" / "data").resolve()


@pytest.fixture
def chinchilla_csv(tmp_path) -> Path:
    """A table made from a known Chinchilla law, with sizes in other units and a row to leave out."""
    rng = np.random.default_rng(0)
    n = np.repeat([1e7, 3e7, 1e8, 3e8, 1e9], 6)
    d = np.tile([1e9, 3e9, 1e10, 3e10, 1e11, 3e11], 5)
    loss = 1.7 + 400 / n ** 0.34 + 1500 / d ** 0.30
    loss *= np.exp(rng.normal(0, 0.002, len(n)))
    df = pd.DataFrame({"params (M)": n / 1e6, "compute": 6 * n * d, "final loss": loss, "keep": 1})
    df.loc[len(df)] = [1.0, 6e15, 9.9, 0]  # an outlier that --where drops
    path = tmp_path / "runs.csv"
    df.to_csv(path, index=False)
    return path


def test_fit_any_table_with_expressions_and_outputs(chinchilla_csv, tmp_path, capsys):
    out = tmp_path / "fit.json"
    rc = main(["laws", "fit", str(chinchilla_csv), "--law", "chinchilla", "--where", "keep == 1",
               "--columns", "N=`params (M)` * 1e6,D=compute / (6 * `params (M)` * 1e6)",
               "--columns", "loss=`final loss`", "--n-boot", "20", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "30 rows where keep == 1" in text and "R² =" in text and "flags:" in text
    fit = json.loads(out.read_text())
    assert fit["law"] == "chinchilla" and fit["n_rows"] == 30 and fit["n_boot_ok"] == 20
    p = fit["params"]
    assert p["alpha"]["value"] == pytest.approx(0.34, abs=0.03) and p["beta"]["value"] == pytest.approx(0.30, abs=0.03)
    assert p["E"]["lo"] <= p["E"]["value"] <= p["E"]["hi"] and fit["r2"] > 0.99
    assert fit["columns"]["loss"] == "`final loss`"
    csv = tmp_path / "fit.csv"
    assert main(["laws", "fit", str(chinchilla_csv), "--columns", "N=`params (M)`,D=compute,loss=`final loss`",
                 "--drop-highest", "1", "--n-boot", "0", "--out", str(csv)]) == 0
    table = pd.read_csv(csv)
    assert list(table["param"]) == ["E", "A", "B", "alpha", "beta", "r2"] and (table["n_rows"] == 30).all()


def test_bad_columns_are_one_clear_line(chinchilla_csv, capsys):
    assert main(["laws", "fit", str(chinchilla_csv), "--columns", "N=`params (M)`,loss=`final loss`"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "needs N, D, loss: missing D" in err
    assert main(["laws", "fit", str(chinchilla_csv), "--columns", "N=nope * 2,D=compute,loss=`final loss`"]) == 2
    assert "--columns N=nope * 2" in capsys.readouterr().err
    assert main(["laws", "fit", str(chinchilla_csv.with_name("missing.csv")), "--columns", "N=a,D=b,loss=c"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(XlmrError, match="not VARIABLE="):
        lawcli.parse_columns("justaname")


def test_parse_columns_keeps_commas_inside_expressions():
    assert lawcli.parse_columns("N=a,D=where(b > 1, b, 1),loss=c") == {"N": "a", "D": "where(b > 1, b, 1)",
                                                                         "loss": "c"}


@pytest.mark.skipif(not DATA.is_dir(), reason=f"no reference data at {DATA} (../shared/data beside the repository)")
@pytest.mark.parametrize("spec", lawcli.PUBLISHED_FITS, ids=lambda s: s.name)
def test_published_fit_is_reproduced_within_5_percent(spec):
    fit, _ = lawcli.fit_published(spec, DATA, n_boot=0)
    assert fit.n_rows == {"epoch_chinchilla": 240, "tao_vocab": 1054}[spec.name]
    cmp = lawcli.compare_published(spec, fit)
    assert (cmp["rel_diff"].abs() < 0.05).all(), cmp.to_string()
