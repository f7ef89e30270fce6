"""xlmr_core.study.plots on small results frames with the columns of ``results.per_lang`` (the tidy table, one row
per run and language): the numbers drawn on the Axes are the frame's seed means and standard deviations, the trend is
numpy's least squares, files are written."""

from __future__ import annotations

import matplotlib
import matplotlib.figure
import matplotlib.image
import matplotlib.pyplot
import numpy as np
import pandas as pd
import pytest

from xlmr_core import units
from xlmr_core.errors import XlmrError
from xlmr_core.study import plots

HIGH, LOW, MID = ["en", "fr", "de"], ["sw", "ur"], ["it", "pt", "nl", "ja", "ko", "pl", "id"]


def _capacity_frame(seeds=(0, 1, 2), widths=(128, 192), counts=(5, 7, 10)) -> pd.DataFrame:
    """One row per run and language, as results.per_lang: bpb grows with log2(languages), shrinks with width."""
    rng = np.random.default_rng(0)
    rows = []
    sizes = {lang: 10 ** (7 - i * 0.3) for i, lang in enumerate(HIGH + MID + LOW)}
    for w in widths:
        for n in counts:
            langs = (HIGH + LOW + MID)[:n]
            for s in seeds:
                run = f"L{n:03d}-h{w}-s{s}"
                for lang in langs + ["eu"]:  # eu: evaluated, not trained on
                    group = "high" if lang in HIGH else "low" if lang in LOW else "other"
                    base = 1.0 + (0.5 if group == "low" else 0.0) + 0.08 * np.log2(n) - w / 2000
                    rows.append({
                        "run": run, "status": "done", "seed": s, "n_langs": n, "width": w, "point": run[:-3],
                        "steps": 100.0, "tokens": 51200.0, "lang": lang, "group": group,
                        "seen": lang != "eu", "train_bytes": sizes.get(lang, 1e4),
                        "prob": 1.0 / n if lang != "eu" else np.nan,
                        "bpb": base + rng.normal(0, 0.02), "acc": 0.3 - 0.02 * np.log2(n) + rng.normal(0, 0.01),
                        "retrieval.udhr_para.to_pivot": np.nan if lang == "en" else rng.uniform(0.2, 0.6),
                        "retrieval.udhr_para.from_pivot": np.nan if lang == "en" else rng.uniform(0.2, 0.6),
                        "retrieval.instguide.to_pivot": np.nan if lang == "en" else rng.uniform(0.2, 0.6),
                    })
    return pd.DataFrame(rows)


def _expected(df: pd.DataFrame, group: str, metric: str, width: int) -> pd.DataFrame:
    """Seed mean and std (ddof=1) per n_langs of the per-run mean over the group's trained languages."""
    sub = df[(df["group"] == group) & df["seen"] & (df["width"] == width)]
    per_run = sub.groupby(["run", "n_langs"])[metric].mean().reset_index()
    return per_run.groupby("n_langs")[metric].agg(["mean", "std", "count"]), per_run


def _container_xy_err(container) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of an errorbar container's data line and the half-length of its vertical bars."""
    data_line, _, barcols = container.lines
    xy = data_line.get_xydata()
    seg = np.array(barcols[0].get_segments())  # (points, 2, 2): [(x, y - err), (x, y + err)]
    return xy, (seg[:, 1, 1] - seg[:, 0, 1]) / 2


def test_capacity_dilution_draws_seed_means_and_std():
    df = _capacity_frame()
    before = matplotlib.pyplot.get_fignums()
    fig = plots.capacity_dilution(df, metric="bpb")
    assert isinstance(fig, matplotlib.figure.Figure)
    assert matplotlib.pyplot.get_fignums() == before  # no pyplot state
    ax_high, ax_low = fig.axes[0], fig.axes[1]
    for ax, group in ((ax_high, "high"), (ax_low, "low")):
        assert ax.get_xscale() == "log" and "bits per byte" in ax.get_ylabel()
        for container, width in zip(ax.containers, (128, 192)):
            want, _ = _expected(df, group, "bpb", width)
            xy, err = _container_xy_err(container)
            np.testing.assert_allclose(xy[:, 0], want.index.to_numpy(float))
            np.testing.assert_allclose(xy[:, 1], want["mean"].to_numpy(), rtol=1e-12)
            np.testing.assert_allclose(err, want["std"].to_numpy(), rtol=1e-9)
    # plotted_data holds the same numbers
    pd_ = fig.plotted_data
    got = pd_[(pd_["panel"] == "bpb:low") & (pd_["series"] == "width=192")].sort_values("x")
    want, _ = _expected(df, "low", "bpb", 192)
    np.testing.assert_allclose(got["y"], want["mean"])
    assert (got["n"] == 3).all()


def test_capacity_trend_is_least_squares_on_log2_languages():
    df = _capacity_frame()
    fig = plots.capacity_dilution(df, metric="bpb")
    for group in ("high", "low"):
        for width in (128, 192):
            _, per_run = _expected(df, group, "bpb", width)
            x, y = np.log2(per_run["n_langs"].to_numpy(float)), per_run["bpb"].to_numpy()
            (slope, intercept), cov = np.polyfit(x, y, 1, cov="unscaled")
            rss = ((y - (intercept + slope * x)) ** 2).sum()
            se = np.sqrt(cov[0, 0] * rss / (len(x) - 2))
            fit = fig.fits[(fig.fits["panel"] == f"bpb:{group}") & (fig.fits["series"] == f"width={width}")]
            assert len(fit) == 1
            assert fit["slope"].iloc[0] == pytest.approx(slope, rel=1e-9)
            assert fit["intercept"].iloc[0] == pytest.approx(intercept, rel=1e-9)
            assert fit["slope_se"].iloc[0] == pytest.approx(se, rel=1e-9)
            assert fit["n"].iloc[0] == len(per_run)
    # the synthetic dilution (+0.08 per doubling) is recovered within a few standard errors
    f = fig.fits[fig.fits["panel"] == "bpb:high"]
    assert ((f["slope"] - 0.08).abs() < 4 * f["slope_se"] + 1e-3).all()


def test_capacity_retrieval_and_matched_tokens_panels():
    df = _capacity_frame()
    fig = plots.capacity_dilution(df, metric="bpb")
    data = fig.plotted_data
    # retrieval: mean over sets and directions per language, then over the group's languages, then seeds
    sub = df[(df["group"] == "low") & (df["width"] == 128)].copy()
    sub["r"] = sub[[c for c in df.columns if c.startswith("retrieval.")]].mean(axis=1)
    want = sub.groupby(["run", "n_langs"])["r"].mean().groupby("n_langs").mean()
    got = data[(data["panel"] == "retrieval:low") & (data["series"] == "width=128")].set_index("x")["y"]
    np.testing.assert_allclose(got.sort_index().to_numpy(), want.to_numpy())
    # matched tokens: x = tokens × sampling probability of each language
    got = data[(data["panel"] == "bpb:tokens:high") & (data["series"] == "width=128")].sort_values("n_langs")
    np.testing.assert_allclose(got["x"], 51200.0 / got["n_langs"])
    # the paper's stated endpoints are drawn, labelled
    paper = data[data["series"] == "paper (XNLI acc.)"]
    assert list(paper["x"]) == [7, 100] and list(paper["y"]) == [71.8, 67.7]
    assert any("paper (XNLI acc" in (t.get_ylabel() or "") for t in fig.axes)


def test_load_long_frames_draw_the_same():
    # results.load_long names the suites' columns eval.<suite>.…; the figures read them under the tidy names
    df = _capacity_frame()
    legacy = df.rename(columns={c: f"eval.{c}" for c in df.columns if c.startswith("retrieval.")})
    a, b = plots.capacity_dilution(df), plots.capacity_dilution(legacy)
    pd.testing.assert_frame_equal(a.plotted_data, b.plotted_data)
    pd.testing.assert_series_equal(plots.retrieval_accuracy(df), plots.retrieval_accuracy(legacy))


def test_si_is_the_launchers_format():
    assert plots.si is units.si
    assert [units.si(x) for x in (1_234_567, 4e9, 12, 999.4, 1500, 2.5e12, -3e6)] == \
        ["1.23M", "4.00B", "12", "999", "1.50K", "2.50T", "-3.00M"]


def test_groups_from_training_bytes_without_tags():
    df = _capacity_frame(counts=(6, 9)).drop(columns=["group"])
    groups = plots.resource_groups(df)
    # languages in every run: en fr de sw ur it; by training bytes en > fr > de > it > sw > ur
    by_lang = dict(zip(df["lang"], groups))
    assert {k for k, v in by_lang.items() if v == "high"} == {"en", "fr"}
    assert {k for k, v in by_lang.items() if v == "low"} == {"sw", "ur"}
    fig = plots.capacity_dilution(df, metric="acc", retrieval=False, paper=False)
    assert len(fig.axes) == 4


def test_vocab_scaling_panels():
    rows = []
    for mode in ("fixed_transformer", "fixed_total"):
        for v in (1000, 2000, 4000):
            emb = v * 128
            total = 500_000 + emb if mode == "fixed_transformer" else 628_000
            for s in (0, 1):
                for lang, bpb, tpc in (("en", 2.0 - v / 1e4 + s / 100, 0.5 - v / 2e4), ("de", 2.2, 0.45)):
                    rows.append({"run": f"v{v}-{mode}-s{s}", "status": "done", "seed": s, "vocab": v, "mode": mode,
                                 "lang": lang, "seen": True, "bpb": bpb, "params_embedding": emb,
                                 "params_total": total, "tokenizer.tokens_per_char": tpc})
    df = pd.DataFrame(rows)
    fig = plots.vocab_scaling(df)
    data = fig.plotted_data
    per_run = df.groupby(["run", "vocab", "mode"])["bpb"].mean().reset_index()
    want = per_run[per_run["mode"] == "fixed_total"].groupby("vocab")["bpb"].agg(["mean", "std"])
    xy, err = _container_xy_err(fig.axes[0].containers[0])  # modes sorted: fixed_total first
    np.testing.assert_allclose(xy[:, 1], want["mean"])
    np.testing.assert_allclose(err, want["std"])
    share = data[(data["panel"] == "embedding_share") & (data["series"] == "fixed_total")].sort_values("x")
    np.testing.assert_allclose(share["y"], np.array([1000, 2000, 4000]) * 128 / 628_000)
    fert = data[(data["panel"] == "tokens_per_char") & (data["series"] == "fixed_transformer")].sort_values("x")
    np.testing.assert_allclose(fert["y"], [(0.5 - v / 2e4 + 0.45) / 2 for v in (1000, 2000, 4000)])
    assert fig.axes[0].get_xscale() == "log"


def test_sampling_alpha_groups_and_tradeoff():
    rng = np.random.default_rng(1)
    rows = []
    for a in (0.01, 0.3, 0.7, 1.0):
        for s in (0, 1):
            for lang, group in (("en", "high"), ("fr", "high"), ("sw", "low"), ("it", "other")):
                rows.append({"run": f"a{a}-s{s}", "status": "done", "seed": s, "alpha": a, "lang": lang,
                             "group": group, "seen": True, "bpb": rng.uniform(1, 2)})
    df = pd.DataFrame(rows)
    fig = plots.sampling_alpha(df)
    data = fig.plotted_data
    for group in ("high", "low"):
        per_run = df[df["group"] == group].groupby(["run", "alpha"])["bpb"].mean().groupby("alpha").mean()
        got = data[(data["panel"] == "bpb") & (data["series"] == group)].set_index("x")["y"]
        np.testing.assert_allclose(got.sort_index(), per_run)
    all_langs = df.groupby(["run", "alpha"])["bpb"].mean().groupby("alpha").mean()
    np.testing.assert_allclose(data[data["series"] == "all"].sort_values("x")["y"], all_langs)
    trade = data[data["panel"] == "tradeoff"].sort_values("alpha")
    np.testing.assert_allclose(trade["x"], data[data["series"] == "high"].sort_values("x")["y"])


def test_training_curves_mean_over_seeds():
    rows = [{"run": f"p{p}-s{s}", "point": f"p{p}", "seed": s, "tokens": t * 512.0, "loss_bits": 10 - t / 10 + s + p}
            for p in (0, 1) for s in (0, 1) for t in range(1, 11)]
    fig = plots.training_curves(pd.DataFrame(rows))
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2
    np.testing.assert_allclose(lines[0].get_ydata(), [10 - t / 10 + 0.5 for t in range(1, 11)])
    np.testing.assert_allclose(lines[1].get_xdata(), [t * 512.0 for t in range(1, 11)])


def test_save_writes_png_pdf_csv(tmp_path):
    fig = plots.capacity_dilution(_capacity_frame(), metric="bpb")
    paths = plots.save(fig, tmp_path / "figs", "cap")
    assert sorted(p.name for p in paths) == ["cap.csv", "cap.pdf", "cap.png"]
    assert (tmp_path / "figs" / "cap.pdf").read_bytes()[:5] == b"%PDF-"
    png = matplotlib.image.imread(tmp_path / "figs" / "cap.png")
    # 200 dpi: a 6.6 in wide figure (two 3.3 in panels) is about 1300 pixels wide (tight bounding box)
    assert 1000 < png.shape[1] < 1700
    back = pd.read_csv(tmp_path / "figs" / "cap.csv")
    np.testing.assert_allclose(back["y"], fig.plotted_data["y"])
    assert not list((tmp_path / "figs").glob("*.tmp*"))


def test_bad_input_is_one_clear_error():
    df = _capacity_frame()
    with pytest.raises(XlmrError, match="no column.*n_langs"):
        plots.capacity_dilution(df.drop(columns=["n_langs"]))
    with pytest.raises(XlmrError, match="empty"):
        plots.vocab_scaling(df.iloc[:0].assign(vocab=1, mode="x", params_embedding=1, params_total=1))
    mixed = df.copy()
    mixed.loc[mixed["run"].str.startswith("L005"), "steps"] = 50.0
    with pytest.raises(XlmrError, match="differ in steps"):
        plots.capacity_dilution(mixed)


def test_arm_effects_keep_evaluation_error_and_seed_spread_apart():
    """Two seeds, two languages per group: the group mean per seed, then the seed mean; the evaluation's s.e. in
    quadrature over languages and then seeds; the seed spread as the s.d. of the seeds' group means."""
    from xlmr_core.study import results

    rows = []
    for seed, (d1, d2, s1, s2) in enumerate([(0.10, 0.20, 0.01, 0.02), (0.30, 0.00, 0.03, 0.04)]):
        for lang, d, se in (("en", d1, s1), ("fr", d2, s2)):
            rows.append(dict(design="matched", width=64, relation="related", seed=seed, lang=lang, group="high",
                             diff=d, se=se))
    eff = results.arm_effects(pd.DataFrame(rows))
    r = eff.iloc[0]
    seed_means = [0.15, 0.15]
    seed_se = [np.hypot(0.01, 0.02) / 2, np.hypot(0.03, 0.04) / 2]
    assert r["diff"] == pytest.approx(np.mean(seed_means))
    assert r["eval_se"] == pytest.approx(np.hypot(*seed_se) / 2)
    assert r["seed_sd"] == pytest.approx(0.0, abs=1e-12) and r["n_seeds"] == 2
    fig = plots.arm_effects(eff)
    drawn = fig.plotted_data
    assert list(drawn["panel"]) == ["matched:high"] and drawn["eval_se"].iloc[0] == pytest.approx(r["eval_se"])
    with pytest.raises(XlmrError, match="empty"):
        plots.arm_effects(eff.iloc[:0])
