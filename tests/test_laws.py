"""xlmr_core.study.laws on synthetic data drawn from each law with noise: the exponents are recovered within their
bootstrap intervals, bad fits are flagged, prediction errors and the derived answers match their closed forms.
The ATLAS data go through real run directories and ``results.load_long``, as a sweep's would."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xlmr_core.errors import XlmrError
from xlmr_core.study import laws, plots, results

ATLAS_TRUE = dict(L_inf=1.2, A=60.0, B=40.0, alpha=0.35, beta=0.3, phi=0.12, psi=-0.05)
CHIN_TRUE = {"high": dict(E=1.5, A=200.0, B=300.0, alpha=0.34, beta=0.28),
             "low": dict(E=2.0, A=100.0, B=500.0, alpha=0.30, beta=0.35)}
TAO_TRUE = dict(E=1.5, A1=30.0, A2=20.0, B=25.0, alpha1=0.3, alpha2=0.35, beta=0.3)
LANGS = ["en", "sl", "fr", "hr", "de", "sr", "ru", "bg"]
FAST = dict(n_boot=40, max_inits=48)


def atlas_loss(K, N, D_t, p=ATLAS_TRUE):
    return p["L_inf"] + p["A"] * K ** p["phi"] / N ** p["alpha"] + p["B"] * K ** p["psi"] / D_t ** p["beta"]


def write_runs(root: Path, *, sizes=(1e5, 3e5, 1e6, 3e6), counts=(1, 2, 4, 8), seeds=(0, 1), noise=0.004,
               sweep="scaling_laws", unigram_bpb=5.0, seed=0) -> Path:
    """Finished run directories (config.json + final.json, the trainer's schema) whose held-out bpb follows the
    ATLAS law: a matched design (each language sees D_t = 1e6 or 1e7 tokens at every K) and a fixed one (1e7
    tokens in all, D_t = 1e7/K)."""
    rng = np.random.default_rng(seed)
    out = root / sweep
    for design, per_target in (("matched", 1e6), ("matched", 1e7), ("fixed", None)):
        for N in sizes:
            for K in counts:
                langs = LANGS[:K]
                tokens = per_target * K if per_target else 1e7
                for s in seeds:
                    name = f"{design}{'' if per_target is None else f'{per_target:.0e}'}-K{K:02d}-N{N:.0e}-s{s}"
                    tags = [f"sweep={sweep}", f"design={design}", f"point={name[:-3]}", "high=en,fr", "low=sl,hr"]
                    per_lang = {}
                    for lang in langs:
                        bpb = atlas_loss(K, N, tokens / K) * math.exp(rng.normal(0, noise))
                        per_lang[lang] = {"bpb": bpb, "unigram_bpb": unigram_bpb,
                                          "bpb_below_unigram": unigram_bpb - bpb, "prob": 1.0 / K,
                                          "seen": True, "train_tokens": 5e6, "train_bytes": 2e7}
                    final = {"tags": tags, "seed": s, "langs": langs, "n_langs": K, "tokens": tokens, "steps": 100,
                             "params": {"embedding": 128000, "non_embedding": N, "lm_head": 9000, "total": N + 137000},
                             "model": {"hidden_size": 64, "num_layers": 2}, "per_lang": per_lang}
                    cfg = {"config": {"seed": s, "tags": tags, "model": {"size": "debug"},
                                      "data": {"langs": langs, "vocab_size": 2000}}}
                    d = out / name
                    d.mkdir(parents=True)
                    (d / "config.json").write_text(json.dumps(cfg))
                    (d / "final.json").write_text(json.dumps(final))
    return out


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    return write_runs(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def table(sweep_dir) -> pd.DataFrame:
    return laws.fitting_table(results.load_long(sweep_dir), loss="bpb")


@pytest.fixture(scope="module")
def atlas_fit(table) -> laws.LawFit:
    return laws.fit_law(table, "atlas", **FAST)


def chinchilla_table(seed=1, noise=0.004) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for group, p in CHIN_TRUE.items():
        for N in (1e5, 3e5, 1e6, 3e6, 1e7):
            for D in (1e6, 3e6, 1e7, 3e7, 1e8):
                for s in (0, 1):
                    L = p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
                    rows.append({"N": N, "D": D, "seed": s, "group": group, "loss": L * math.exp(rng.normal(0, noise))})
    return pd.DataFrame(rows)


def tao_table(seed=2, noise=0.003) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p, rows = TAO_TRUE, []
    for N in (1e5, 4e5, 1.6e6, 6.4e6):
        for Nv in (1e5, 3e5, 1e6, 3e6):
            for D in (1e6, 1e7, 1e8):
                L = -p["E"] + p["A1"] / N ** p["alpha1"] + p["A2"] / Nv ** p["alpha2"] + p["B"] / D ** p["beta"]
                rows.append({"N": N, "N_v": Nv, "D": D, "seed": 0, "loss": L + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def _within(fit: laws.LawFit, true: dict, names):
    for name in names:
        lo, hi = fit.ci[name]
        assert lo <= true[name] <= hi, f"{name}: true {true[name]} outside {fit.params[name]:.4g} [{lo:.4g}, {hi:.4g}]"
        assert hi - lo < 0.5 * abs(true[name]) + 0.05, f"{name}: interval [{lo}, {hi}] too wide to mean anything"


# ---------------------------------------------------------------- the fitting table


def test_fitting_table_from_load_long(sweep_dir, table):
    long = results.load_long(sweep_dir)
    assert len(table) == len(long) == 3 * 4 * 2 * sum((1, 2, 4, 8))
    np.testing.assert_allclose(table["D_t"], table["tokens"] * table["prob"])
    np.testing.assert_array_equal(table["K"], table["n_langs"])
    np.testing.assert_array_equal(table["N"], table["params_non_embedding"])
    np.testing.assert_array_equal(table["N_v"], 2000 * 64)
    assert set(table.loc[table["design"] == "matched", "D_t"].round()) == {1e6, 1e7}
    uni = laws.fitting_table(long, loss="bpb_below_unigram", select={"design": "fixed", "unused": None})
    assert set(uni["design"]) == {"fixed"}
    np.testing.assert_allclose(uni["loss"], uni["bpb"] - 5.0)
    assert "unigram" in uni.attrs["loss"]
    grouped = laws.fitting_table(long, aggregate="group")
    assert set(grouped["group"]) == {"high", "low", "other"}
    one = grouped[(grouped["run"] == "matched1e+07-K08-N1e+05-s0") & (grouped["group"] == "high")].iloc[0]
    rows = table[(table["run"] == "matched1e+07-K08-N1e+05-s0") & table["lang"].isin(["en", "fr"])]
    assert one["loss"] == pytest.approx(rows["loss"].mean())
    assert laws.fitting_table(pd.DataFrame()).empty
    summary = laws.design_summary(table).set_index("variable")
    assert summary.loc["N", "ratio"] == pytest.approx(30.0) and summary.loc["K", "distinct"] == 4


def test_missing_sweep_gives_flagged_fit(tmp_path, capsys):
    t = laws.load_table(tmp_path / "nothing-here")
    assert t.empty and "does not exist" in t.attrs["note"] and "no results to fit" in capsys.readouterr().out
    fit = laws.fit_law(t, "atlas", n_boot=5)
    assert not fit.ok and not fit.fitted and any("no fit" in f for f in fit.flags)
    assert np.isnan(fit.params["phi"]) and "no fit" in repr(fit)
    assert laws.language_multipliers(fit)["value"].isna().all()
    assert np.isnan(laws.turning_point(fit)["value"]).all()
    ext = laws.extrapolate(t, "atlas", n_boot=5)
    assert not ext.ok and "held-out" in repr(ext)
    fig = plots.law_fit(fit)
    assert fig.plotted_data.empty
    fig = plots.law_extrapolation(ext)


# ---------------------------------------------------------------- recovering known exponents


def test_atlas_recovers_exponents(atlas_fit):
    assert atlas_fit.ok, atlas_fit.flags
    _within(atlas_fit, ATLAS_TRUE, ["phi", "psi", "alpha", "beta", "L_inf"])
    assert atlas_fit.r2 > 0.99 and atlas_fit.r2_ci[0] > 0.99
    text = repr(atlas_fit)
    assert "φ = " in text and "[" in text.split("φ = ")[1].split("\n")[0] and "flags: none" in text
    tab = atlas_fit.table()
    assert tab[["value", "lo", "hi"]].notna().all().all() and not tab["at_bound"].any()


def test_chinchilla_recovers_exponents_per_group():
    fits = laws.fit_groups(chinchilla_table(), "chinchilla", **FAST)
    assert set(fits) == {"high", "low"}
    for group, fit in fits.items():
        assert fit.ok, (group, fit.flags)
        _within(fit, CHIN_TRUE[group], ["alpha", "beta", "E"])
    table = laws.exponent_table({"Chinchilla": fits})
    alpha = table[(table["fit"] == "Chinchilla: high") & (table["exponent"] == "α")]["published"].iloc[0]
    assert "0.34 (Hoffmann" in alpha and "0.3478 (Besiroglu" in alpha
    assert table["ours"].str.contains(r"\[").all()


def test_vocab_law_recovers_exponents_and_optimal_vocab():
    fit = laws.fit_law(tao_table(), "vocab", **FAST)
    assert fit.space == "linear" and fit.ok, fit.flags
    _within(fit, TAO_TRUE, ["alpha1", "alpha2", "E"])
    assert fit.params["beta"] == fit.params["alpha1"]  # tied, as Tao et al. fit it
    p, P = fit.params, 2e6
    opt = laws.optimal_vocab(fit, P, width=128).set_index("quantity")
    nv = opt.loc["vocab params N_v*", "value"]
    # closed form: α1·A1/(P − N_v)^(α1+1) = α2·A2/N_v^(α2+1)
    assert p["alpha1"] * p["A1"] / (P - nv) ** (p["alpha1"] + 1) == pytest.approx(
        p["alpha2"] * p["A2"] / nv ** (p["alpha2"] + 1), rel=1e-6)
    assert opt.loc["vocab size V* (width 128)", "value"] == pytest.approx(nv / 128)
    assert opt.loc["vocab params N_v*", "lo"] <= nv <= opt.loc["vocab params N_v*", "hi"]
    # Tao et al.'s fixed-compute optimum: the minimum of the law along N_v, by brute force
    F, Nnv = 1e15, 1e6
    got = laws.optimal_vocab(fit, non_embedding=Nnv, flops=F).set_index("quantity").loc["vocab params N_v*", "value"]
    grid = np.geomspace(1e3, 1e9, 20001)
    curve = p["A2"] / grid ** p["alpha2"] + p["B"] * (6 * (Nnv + grid) / F) ** p["beta"]
    assert got == pytest.approx(grid[curve.argmin()], rel=2e-3)


# ---------------------------------------------------------------- bad fits are flagged


def test_too_few_points_and_one_value_flagged():
    t = chinchilla_table()
    few = laws.fit_law(t[(t["group"] == "high") & (t["N"] <= 3e5) & (t["D"] <= 3e6)], "chinchilla", n_boot=10)
    assert not few.ok and any(f.startswith("too few points: 4 for 5") for f in few.flags)
    one = laws.fit_law(t[(t["group"] == "high") & (t["N"] == 1e6)], "chinchilla", n_boot=10)
    assert any(f.startswith("N takes one value") and "A, α not identified" in f for f in one.flags)
    assert np.isnan(one.params["alpha"]) and np.isfinite(one.params["beta"])
    assert np.isnan(one.predict({"N": [3e6], "D": [1e7]})[0])  # the fit knows nothing about another N
    assert np.isfinite(one.predict({"N": [1e6], "D": [1e7]})[0])


def test_parameter_at_bound_and_low_r2_flagged():
    rng = np.random.default_rng(3)
    t = chinchilla_table()
    t = t[t["group"] == "high"].copy()
    t["loss"] = 3.0 + 300 / t["D"] ** 0.28 + rng.normal(0, 0.002, len(t))  # nothing depends on N
    flat = laws.fit_law(t, "chinchilla", n_boot=10, max_inits=24)
    assert any(f.startswith("at bound:") for f in flat.flags), flat.flags
    assert flat.table()["at_bound"].any()
    t["loss"] = 3.0 + rng.normal(0, 0.05, len(t))  # pure noise: no law at all
    noise = laws.fit_law(t, "chinchilla", n_boot=10, max_inits=24)
    assert any(f.startswith("R² = ") for f in noise.flags)


def test_fixed_design_alone_is_collinear(table):
    fixed = table[(table["design"] == "fixed") & (table["lang"] == "en")]
    fit = laws.fit_law(fixed, "atlas", n_boot=5, max_inits=16)
    assert any("K and D_t are collinear" in f for f in fit.flags)


# ---------------------------------------------------------------- prediction


def test_prediction_errors_known_case():
    t = chinchilla_table(noise=0.0)
    t = t[t["group"] == "high"]
    fit = laws.fit_law(t[t["N"] < 1e7], "chinchilla", n_boot=10, max_inits=24)
    held = t[t["N"] == 1e7].copy()
    held["loss"] *= 1.1  # every observation 10 % above the law
    points, r2, r2_ci, mae, _ = laws.prediction_errors(fit, held)
    assert len(points) == 5 and (points["n"] == 2).all()
    np.testing.assert_allclose(points["rel_error"], 1 / 1.1 - 1, rtol=1e-3)
    assert mae == pytest.approx(1 - 1 / 1.1, rel=1e-3)
    obs, pred = points["observed"].to_numpy(), points["predicted"].to_numpy()
    assert r2 == pytest.approx(1 - ((obs - pred) ** 2).sum() / ((obs - obs.mean()) ** 2).sum())
    assert (points["predicted_lo"] <= points["predicted_hi"]).all()


def test_extrapolate_fits_small_predicts_large(table):
    ext = laws.extrapolate(table, "atlas", by="N", **FAST)
    assert ext.threshold == 3e6 and ext.fit.data["N"].max() == 1e6 and (ext.points["N"] == 3e6).all()
    assert len(ext.points) == table.loc[table["N"] == 3e6].groupby(["K", "D_t", "lang"]).ngroups
    assert ext.ok, ext.flags
    assert ext.mean_abs_rel_error < 0.01 and ext.r2 > 0.95
    assert "held-out R² = " in repr(ext) and "relative error" in repr(ext)
    fewer_k = laws.extrapolate(table, "atlas", by="K", n_holdout=1, n_boot=5, max_inits=16)
    assert (fewer_k.points["K"] == 8).all() and fewer_k.fit.data["K"].max() == 4


def test_extrapolation_is_scored_against_carrying_the_last_fitted_point_forward():
    t = chinchilla_table(noise=0.0)
    t = t[t["group"] == "high"]
    ext = laws.extrapolate(t, "chinchilla", by="N", n_boot=5, max_inits=24)
    pts = ext.points.set_index("D")
    prev = t[t["N"] == 3e6].groupby("D")["loss"].mean()  # the largest fitted N, same D and group
    np.testing.assert_allclose(pts["baseline"], prev.loc[pts.index])
    np.testing.assert_allclose(pts["baseline_rel_error"], (prev.loc[pts.index] - pts["observed"]) / pts["observed"])
    assert ext.baseline_mean_abs_rel_error == pytest.approx(np.abs(pts["baseline_rel_error"]).mean())
    assert ext.law_mean_abs_rel_error_on_baseline == pytest.approx(ext.mean_abs_rel_error)
    # the law holds exactly here, so it beats "nothing changes beyond N = 3e6" by far
    assert ext.mean_abs_rel_error < 1e-3 < 0.01 < ext.baseline_mean_abs_rel_error
    assert "carried forward" in ext.summary() and "baseline" in repr(ext)


LANG_OFFSET = {"en": 0.0, "sl": 1.4, "fr": -0.6, "hr": 0.9, "de": 2.0, "sr": -0.3, "ru": 0.5, "bg": 1.1}


def test_a_constant_per_language_recovers_the_shared_exponents(table):
    """Languages with their own L∞ (entropy per byte) and shared A, B, exponents: the pooled law cannot fit them,
    the law with ``constant_by="lang"`` recovers the exponents and each language's L∞."""
    t = table.copy()
    t["loss"] = t["loss"] + t["lang"].map(LANG_OFFSET)
    pooled = laws.fit_law(t, "atlas", **FAST)
    assert not pooled.ok and any(f.startswith("R² = ") for f in pooled.flags)
    fit = laws.fit_law(t, "atlas", constant_by="lang", **FAST)
    assert fit.ok, fit.flags
    _within(fit, ATLAS_TRUE, ["phi", "psi", "alpha", "beta"])
    assert fit.levels == tuple(sorted(LANG_OFFSET)) and fit.n_params == 8 + 2 + 4
    for lang, off in LANG_OFFSET.items():
        lo, hi = fit.ci[f"L_inf[{lang}]"]
        assert lo <= ATLAS_TRUE["L_inf"] + off <= hi, (lang, fit.params[f"L_inf[{lang}]"], lo, hi)
    assert fit.r2_within > 0.95 and fit.r2 > fit.r2_within  # the constants alone explain the between-language part
    assert 0.9 < fit.r2_within_ci[0] <= fit.r2_within_ci[1] <= 1
    assert "L∞[de]" in repr(fit) and "within lang R²" in fit.r2_text()
    assert {"L_inf[en]", "r2_within"} <= set(fit.table()["param"])
    at = {"K": [4, 4], "N": [1e6, 1e6], "D_t": [1e7, 1e7], "lang": ["de", "xx"]}
    pred = fit.predict(at)
    assert pred[0] == pytest.approx(atlas_loss(4, 1e6, 1e7) + LANG_OFFSET["de"], rel=0.02) and np.isnan(pred[1])
    with pytest.raises(XlmrError, match="give the lang column"):
        fit.predict({"K": [4], "N": [1e6], "D_t": [1e7]})
    ext = laws.extrapolate(t, "atlas", by="N", constant_by="lang", **FAST)
    assert ext.mean_abs_rel_error < 0.01 and ext.fit.constant_by == "lang"
    pts = ext.points
    dev = pts["observed"] - pts.groupby("lang")["observed"].transform("mean")
    assert ext.r2_within == pytest.approx(1 - ((pts["observed"] - pts["predicted"]) ** 2).sum() / (dev ** 2).sum())
    assert 0.9 < ext.r2_within < ext.r2 and "within lang" in ext.summary()
    fig = plots.law_fit({"pooled": pooled, "per language": fit}, x="N", hue="K", at={"D_t": 1e7})
    curve = fig.plotted_data[(fig.plotted_data["panel"] == "per language: curve")]
    en = t[(t["lang"] == "en") & (t["K"] == 8) & (t["N"] == 1e5) & (t["D_t"] == 1e7)]
    got = curve[(curve["series"] == "K=8") & (curve["x"] == 1e5)]  # the curves of one language, en by default
    assert got["y"].iloc[0] == pytest.approx(en["loss"].mean()) and got["n"].iloc[0] == len(en)


# ---------------------------------------------------------------- derived answers


def test_multipliers_closed_form(atlas_fit):
    # ATLAS's K → 2K: 1.18× parameters, 1.66× total tokens, from φ = 0.11, ψ = −0.04 with α ≈ 0.46, β ≈ 0.149
    m = laws.atlas_multipliers(0.11, -0.04, 0.4607, 0.1488, r=2)
    assert m["params"] == pytest.approx(1.18, abs=0.005) and m["total_tokens"] == pytest.approx(1.66, abs=0.005)
    assert m["total_tokens"] == pytest.approx(2 * m["target_tokens"])
    # equal loss: the law at (2K, N·m, D_t·m) equals the law at (K, N, D_t)
    p = ATLAS_TRUE
    m = laws.atlas_multipliers(p["phi"], p["psi"], p["alpha"], p["beta"], r=2)
    assert atlas_loss(16, 1e6 * m["params"], 1e7 * m["target_tokens"]) == pytest.approx(atlas_loss(8, 1e6, 1e7))
    df = laws.language_multipliers(atlas_fit, r=3).set_index("quantity")
    q = atlas_fit.params
    assert df.loc["params ×", "value"] == pytest.approx(3 ** (q["phi"] / q["alpha"]))
    assert df.loc["total_tokens ×", "value"] == pytest.approx(3 ** (1 + q["psi"] / q["beta"]))
    lo, hi = df.loc["params ×", ["lo", "hi"]]
    assert lo <= 3 ** (p["phi"] / p["alpha"]) <= hi
    assert laws.language_multipliers(atlas_fit)["published"].iloc[0] == 1.18


def test_turning_point_closed_form(atlas_fit):
    q = atlas_fit.params
    tp = laws.turning_point(atlas_fit, [1e5, 1e7], tokens=1e6)
    k = tp["value"].to_numpy()
    expect = ((-q["psi"] / q["phi"]) * (q["B"] / q["A"]) * np.array([1e5, 1e7]) ** q["alpha"] / 1e6 ** q["beta"]) ** (
        1 / (q["phi"] - q["psi"]))
    np.testing.assert_allclose(k, np.maximum(expect, 1))
    assert k[1] > k[0]  # more capacity: more languages before the curse
    # at K*, dL/dK = 0 with D_t fixed, and the loss is lowest there
    P = dict(q)
    for kk in (k[1] * 0.9, k[1] * 1.1):
        assert atlas_loss(kk, 1e7, 1e6, P) > atlas_loss(k[1], 1e7, 1e6, P)
    assert (tp["lo"] <= tp["value"]).all() and (tp["value"] <= tp["hi"]).all()
    # a fixed budget (D_t = D/K): the data term grows as K^(ψ+β), ψ + β > 0, so every language hurts
    fixed = laws.turning_point(atlas_fit, [1e6], budget="fixed", tokens=1e7)
    assert fixed["value"].iloc[0] == 1.0 and "fixed budget" in fixed["note"].iloc[0]
    # signs: both exponents positive → 1, both negative → ∞
    assert laws._turning_k(0.1, 0.2, 1, 1, 1e6, 1e6, 0.3, 0.3) == 1.0
    assert laws._turning_k(-0.1, -0.2, 1, 1, 1e6, 1e6, 0.3, 0.3) == np.inf


# ---------------------------------------------------------------- figures


def test_law_figures(atlas_fit, table, tmp_path):
    fig = plots.law_fit(atlas_fit, x="N", hue="K", at={"D_t": 1e7})
    curve = fig.plotted_data[fig.plotted_data["panel"] == "curve"]
    en8 = table[(table["K"] == 8) & (table["N"] == 1e5) & (table["D_t"] == 1e7)]
    got = curve[(curve["series"] == "K=8") & (curve["x"] == 1e5)]
    assert got["y"].iloc[0] == pytest.approx(en8["loss"].mean()) and got["n"].iloc[0] == len(en8)
    assert set(fig.fits["param"]) >= {"phi", "psi", "r2"}
    assert len(plots.save(fig, tmp_path, "atlas")) == 3
    ext = laws.extrapolate(table, "atlas", by="N", n_boot=5, max_inits=16)
    fig = plots.law_extrapolation(ext, hue="K")
    assert (fig.plotted_data["series"] == "held out").sum() == len(ext.points)
    fits = laws.fit_groups(chinchilla_table(), "chinchilla", n_boot=5, max_inits=16)
    fig = plots.law_fit(fits, x="N", hue="D")
    assert {"high: curve", "low: parity"} <= set(fig.plotted_data["panel"])


def test_weighting_by_standard_errors_is_counting_precise_points_more():
    """Rows weighted by 1 / standard error: a row with half the error counts as that row twice. The weighted fit
    equals the unweighted fit of the table with those rows duplicated, and differs from the plain fit."""
    table = chinchilla_table(noise=0.02)
    table = table[table["group"] == "high"].reset_index(drop=True)
    precise = (np.arange(len(table)) % 3) == 0
    table["loss_se"] = np.where(precise, 0.5, 1.0) * 0.02 * table["loss"]  # log-space s.e. 0.01 or 0.02
    kw = dict(n_boot=0, max_inits=48)
    weighted = laws.fit_law(table, "chinchilla", weight_by="loss_se", **kw)
    doubled = laws.fit_law(pd.concat([table, table[precise]], ignore_index=True), "chinchilla", **kw)
    plain = laws.fit_law(table, "chinchilla", **kw)
    assert weighted.weight_by == "loss_se" and plain.weight_by is None
    for name in ("E", "alpha", "beta"):
        assert weighted.params[name] == pytest.approx(doubled.params[name], rel=2e-3), name
    assert max(abs(weighted.params[n] / plain.params[n] - 1) for n in ("alpha", "beta")) > 2e-3
    effect = laws.weighting_effect(plain, weighted)
    assert list(effect["exponent"]) == ["α", "β"] and effect["moved"].dtype == bool
    # no standard errors at all: a flagged, unfitted law, not an exception
    none = laws.fit_law(table.assign(loss_se=np.nan), "chinchilla", weight_by="loss_se", **kw)
    assert not none.fitted and any("standard error" in f for f in none.flags)


def test_extrapolation_errors_are_compared_with_the_evaluation_error(table):
    """Held-out points carry their evaluation s.e.; the share of prediction errors within two of them is
    reported (a prediction that good cannot be told from a perfect one)."""
    t = table.assign(loss_se=0.5 * table["loss"])  # an absurdly imprecise evaluation: every error is within it
    ext = laws.extrapolate(t, "atlas", by="N", **FAST)
    assert ext.mean_eval_rel_se == pytest.approx(0.5 / math.sqrt(2), rel=0.05)  # two seeds per point
    assert ext.share_within_eval_se == 1.0 and "within 2 s.e." in ext.summary()
    tight = laws.extrapolate(table.assign(loss_se=1e-9 * table["loss"]), "atlas", by="N", **FAST)
    assert tight.share_within_eval_se < 0.5
