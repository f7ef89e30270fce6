"""DDTP topic classification: the builder on synthetic apt indexes (split, labels, leaks, bad input), the real
data set (cached), and the transfer suite end to end on a debug run."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from xlmr_core.democorpus import ddtp
from xlmr_core.democorpus.ddtp import EXCLUDED_SECTIONS, LABELS, build_ddtp, ensure_ddtp, find_indexes, read_meta
from xlmr_core.errors import XlmrError
from xlmr_core.evaluate import finetune as FT

# ---------------------------------------------------------------------------------------------
# synthetic indexes: every label, a dominating one, sources with two binaries, and the traps

FR = {"admin": "administration", "editors": "éditeur", "fonts": "police", "games": "jeu", "graphics": "dessin",
      "mail": "courriel", "math": "calcul", "net": "réseau", "science": "physique", "sound": "musique",
      "text": "texte", "web": "toile"}
LEAK = "A paragraph that the demo corpus also holds as one of its training lines, word for word."


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _packages() -> list[dict]:
    """name, source, section, English synopsis + long description, French or None."""
    out = []
    for lab in LABELS:
        for i in range(60 if lab == "net" else 15):  # net dominates: 60 of 225 sources
            for suffix in ("", "-data"):
                name = f"{lab}{i}{suffix}"
                en = (f"{lab} program {i}{suffix}", f"Handles {lab} jobs number {i}{suffix} quickly.")
                fr = (f"programme {FR[lab]} {i}{suffix}", f"Gère le {FR[lab]} numéro {i}{suffix}.")
                out.append(dict(name=name, source=f"{lab}{i}", section=lab, en=en, fr=fr))
    for i in range(20):  # sections that are no labels
        out.append(dict(name=f"libthing{i}", source=f"libthing{i}", section="libs", en=(f"library {i}", "Code."),
                        fr=(f"bibliothèque {i}", "Code.")))
        out.append(dict(name=f"python3-mod{i}", source=f"mod{i}", section="python", en=(f"module {i}", "Py."),
                        fr=(f"module {i}", "Py.")))
    out.append(dict(name="oldgame", source="oldgame", section="games", en=("transitional dummy package", "Gone."),
                    fr=("paquet de transition", "Parti.")))
    out.append(dict(name="leaky", source="leaky", section="games", en=("leaky game", LEAK), fr=("jeu", "Fuite.")))
    # an untranslated "translation" and the same English text under two packages of different sources
    out.append(dict(name="lazy", source="lazy", section="text", en=("lazy editor", "Edits."),
                    fr=("the editor", "This is the text editor that you can use with the files of your system.")))
    for name in ("twin-a", "twin-b"):
        out.append(dict(name=name, source=name, section="math", en=("twin calculator", "Same text."),
                        fr=(f"calculatrice {name}", "Même texte.")))
    return out


def _stanzas(rows: list[dict]) -> bytes:
    return gzip.compress("\n".join("".join(f"{k}: {v}\n" for k, v in r.items()) for r in rows).encode(), mtime=0)


def write_lists(root: Path, *, mirror_names: bool = False, sv_count: int = 3) -> Path:
    """Packages, Translation-en/-fr and a nearly empty Translation-sv, named as apt (or a mirror) names them."""
    root.mkdir(parents=True, exist_ok=True)
    pkgs, en, fr, sv = [], [], [], []
    for p in _packages():
        long_en = p["en"][0] + "\n " + p["en"][1].replace("\n", "\n ")
        md5 = _md5(long_en if not p["name"].startswith("twin") else "twin")
        pkgs.append({"Package": p["name"], **({"Source": p["source"]} if p["source"] != p["name"] else {}),
                     "Description": p["en"][0], "Description-md5": md5, "Section": p["section"]})
        en.append({"Package": p["name"], "Description-md5": md5, "Description-en": long_en})
        # one translation of an older English text: its checksum does not match
        fr.append({"Package": p["name"], "Description-md5": md5 if p["name"] != "games3" else "0" * 32,
                   "Description-fr": p["fr"][0] + "\n " + p["fr"][1]})
        if len(sv) < sv_count and p["section"] in LABELS:
            sv.append({"Package": p["name"], "Description-md5": md5, "Description-sv": "program " + p["fr"][0]})
    prefix = "" if mirror_names else "deb.example.org_debian_dists_bookworm_main_"
    names = ({"p": "Packages.gz", "t": "Translation-{}.gz"} if mirror_names else
             {"p": "binary-amd64_Packages.gz", "t": "i18n_Translation-{}.gz"})
    (root / (prefix + names["p"])).write_bytes(_stanzas(pkgs))
    for code, rows in (("en", en), ("fr", fr), ("sv", sv)):
        (root / (prefix + names["t"].format(code))).write_bytes(_stanzas(rows))
    return root


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """(lists dir, corpus dir, built data set dir, meta) from the synthetic indexes (min_test=20)."""
    root = tmp_path_factory.mktemp("ddtp")
    lists = write_lists(root / "lists")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "en.txt").write_text(f"some training line\n{LEAK}\n", encoding="utf-8")
    (corpus / "fr.txt").write_text("une ligne\n", encoding="utf-8")
    out = root / "ddtp"
    meta = build_ddtp(out, lists_dir=lists, corpus=corpus, min_test=20, progress=False)
    return lists, corpus, out, meta


def _rows(path: Path) -> list[list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id\tsentence\tlabel", path
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(r) == 3 for r in rows), path
    return rows


def _source(name: str) -> str:
    return name.removesuffix("-data")


def test_synthetic_split_is_by_source_package(synthetic):
    _, _, out, meta = synthetic
    train = {r[0] for name in ("train", "dev") for r in _rows(out / "en" / f"{name}.tsv")}
    for lang in ("en", "fr"):
        test = {r[0] for r in _rows(out / lang / "test.tsv")}
        assert test and not test & train, lang
        assert not {_source(p) for p in test} & {_source(p) for p in train}, lang  # -data binaries follow
    # translate-train-all: translations of training packages only
    assert {r[0] for r in _rows(out / "fr" / "train.tsv")} <= {r[0] for r in _rows(out / "en" / "train.tsv")}
    assert meta["split"]["unit"] == "source package" and meta["settings"]["test_percent"] == 80


def test_synthetic_labels_filters_and_balance(synthetic):
    _, _, out, meta = synthetic
    assert meta["labels"] == list(LABELS) and not set(LABELS) & {s for v in EXCLUDED_SECTIONS.values() for s in v}
    assert FT.get_task("ddtp").labels == LABELS and meta["chance"] == pytest.approx(1 / 12)
    ids = {lang: {r[0]: r for r in _rows(out / lang / "test.tsv")} for lang in ("en", "fr")}
    every = {r[0]: r for name in ("train", "dev", "test") for r in _rows(out / "en" / f"{name}.tsv")}
    assert {r[2] for r in every.values()} <= set(LABELS)
    assert not any(p.startswith(("libthing", "python3-", "oldgame")) for p in every)  # not labels; transitional
    assert "leaky" not in every and meta["dedup"]["dropped_packages"] == 1  # its paragraph is a corpus line
    assert "lazy" in every and "lazy" not in ids["fr"] and meta["filtered"]["fr"]["english"] == 1
    assert len({"twin-a", "twin-b"} & set(every)) == 1 and meta["filtered"]["en"]["duplicate"] == 1
    assert "games3" not in ids["fr"] and meta["filtered"]["fr"]["outdated"] == 1
    # net held 4x the packages of every other label; no label keeps more than twice its uniform share
    for name in ("train", "test"):
        rows = _rows(out / "en" / f"{name}.tsv")
        assert sum(r[2] == "net" for r in rows) / len(rows) < 2.2 / len(LABELS), name
    train = _rows(out / "en" / "train.tsv")  # the training file cycles through the labels
    present = {r[2] for r in train}
    assert len(present) >= 8 and {r[2] for r in train[:len(present)]} == present
    # the French text is French, the English English, the same package under the same id
    p = next(iter(ids["fr"]))
    assert ids["fr"][p][2] == ids["en"].get(p, every[p])[2] and "programme" in ids["fr"][p][1]


def test_synthetic_left_out_language_and_parallel_set(synthetic):
    _, _, out, meta = synthetic
    assert set(meta["languages"]) == {"en", "fr"} and not (out / "sv").exists()
    assert meta["left_out"]["sv"]["test"] < 20 and "fewer than 20 test descriptions" in meta["left_out"]["sv"]["why"]
    from xlmr_core.evaluate.suites import read_tsv, set_languages

    assert set_languages(out, "ddtp") == ["en", "fr"]
    en, fr = read_tsv(out / "eval" / "ddtp" / "en.tsv"), read_tsv(out / "eval" / "ddtp" / "fr.tsv")
    assert set(fr) <= set(en) and list(fr) == [r[0] for r in _rows(out / "fr" / "test.tsv")]
    assert meta["retrieval"]["items"] == {"en": len(en), "fr": len(fr)}


def test_synthetic_build_is_deterministic_and_atomic(synthetic, tmp_path, monkeypatch):
    lists, corpus, out, meta = synthetic
    again = tmp_path / "again"
    meta2 = build_ddtp(again, lists_dir=lists, corpus=corpus, min_test=20, progress=False)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and p.name != "meta.json")
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file() and p.name != "meta.json")
    assert all((out / f).read_bytes() == (again / f).read_bytes() for f in files)
    drop = ("timings_s", "build_seconds")
    assert {k: v for k, v in meta.items() if k not in drop} == {k: v for k, v in meta2.items() if k not in drop}

    # a build that fails half way leaves the finished one in place, and a fresh directory without meta.json
    calls = []

    def failing(path, rows, header=ddtp.COLUMNS):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(path, rows, header)

    real = ddtp._write_tsv
    monkeypatch.setattr(ddtp, "_write_tsv", failing)
    with pytest.raises(OSError, match="disk full"):
        build_ddtp(again, lists_dir=lists, corpus=corpus, min_test=20, progress=False)
    assert read_meta(again) == meta2 and (again / "fr" / "test.tsv").exists()
    calls.clear()
    with pytest.raises(OSError, match="disk full"):
        build_ddtp(tmp_path / "fresh", lists_dir=lists, corpus=corpus, min_test=20, progress=False)
    assert not (tmp_path / "fresh").exists() and not list(tmp_path.glob(".fresh*"))


def test_find_indexes_reads_mirror_names(tmp_path):
    lists = write_lists(tmp_path / "mirror", mirror_names=True)
    idx = find_indexes(lists)
    assert idx["packages"].name == "Packages.gz" and set(idx["translations"]) == {"en", "fr", "sv"}
    with pytest.raises(XlmrError, match="holds no Packages index and Translation-en file.*XLMR_DDTP"):
        find_indexes(tmp_path)
    assert ddtp.key_of("pt_BR") == "pt" and ddtp.key_of("pt") == "pt-PT" and ddtp.key_of("zh_CN") == "zh"


def test_description_paragraphs():
    assert ddtp.description_paragraphs("synopsis\n first line\n second\n .\n  * item\n .\n last") == [
        "synopsis", "first line second", "* item", "last"]


# ---------------------------------------------------------------------------------------------
# bad input: no apt, no network, a wrong $XLMR_DDTP


def test_no_apt_names_the_ways_out(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # neither apt-get nor apt-config
    with pytest.raises(XlmrError, match=r"needs `apt-config`.*XLMR_DDTP.*--lists DIR"):
        ddtp.fetch_indexes(tmp_path / "apt")


def test_failed_apt_update_is_one_error_and_marks_nothing_complete(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "apt-get").write_text("#!/bin/sh\necho 'E: Failed to fetch http://deb.debian.org/ Temporary failure "
                                  "resolving' >&2\nexit 100\n")
    (fake / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    apt = tmp_path / "apt"
    with pytest.raises(XlmrError, match=r"got no Packages and Translation-en index \(E: Failed to fetch.*XLMR_DDTP"):
        ddtp.fetch_indexes(apt)
    assert not (apt / "lists").exists() and not list(apt.glob(".lists*"))
    assert "none" not in (apt / "apt.conf").read_text() and '"fr";' in (apt / "apt.conf").read_text()


def test_env_var_must_point_at_a_built_copy(tmp_path, monkeypatch):
    monkeypatch.setenv(ddtp.ENV_VAR, str(tmp_path / "nothing"))
    with pytest.raises(XlmrError, match=r"XLMR_DDTP=.*nothing is not a DDTP data set.*xlmr corpus ddtp --out"):
        ensure_ddtp()


# ---------------------------------------------------------------------------------------------
# the real data set (built once from the archive, cached under ~/.cache/xlmr/ddtp)


@pytest.fixture(scope="module")
def real(demo_corpus):
    out = ensure_ddtp(progress=False)
    return out, read_meta(out)


@pytest.mark.timeout(600)
def test_real_languages_and_sizes(real):
    out, meta = real
    kept = {lang: v["test"] for lang, v in meta["languages"].items()}
    assert {"en", "fr", "de", "ja", "ru", "es", "pl"} <= set(kept) and len(kept) >= 12
    assert min(kept.values()) >= meta["settings"]["min_test"] == 500
    assert all(v["test"] < 500 for v in meta["left_out"].values()) and "zh" in meta["left_out"]
    assert meta["en"]["train"] >= 1200 and meta["archive"]["suite"]  # DDTP_CONFIG trains on 1,200
    for lang, v in meta["languages"].items():
        rows = _rows(out / lang / "test.tsv")
        assert len(rows) == v["test"] and {r[2] for r in rows} <= set(LABELS)
        first = [r[2] for r in rows[:FT.DDTP_CONFIG.max_eval_examples]]  # what the suite evaluates: balanced
        assert max(first.count(lab) for lab in LABELS) / len(first) < 0.12, lang


@pytest.mark.timeout(600)
def test_real_split_no_package_in_train_and_test(real):
    out, meta = real
    train = {r[0] for name in ("train", "dev") for r in _rows(out / "en" / f"{name}.tsv")}
    for lang in meta["languages"]:
        assert not {r[0] for r in _rows(out / lang / "test.tsv")} & train, lang
        if lang != "en":
            assert {r[0] for r in _rows(out / lang / "train.tsv")} <= train, lang
    # the first test items are mostly the same packages in every language (as XNLI's)
    n = FT.DDTP_CONFIG.max_eval_examples
    firsts = [{r[0] for r in _rows(out / lang / "test.tsv")[:n]} for lang in meta["languages"]]
    assert len(set.intersection(*firsts)) > n // 4


@pytest.mark.timeout(600)
def test_real_no_description_in_demo_corpus_training_text(real, demo_corpus):
    out, _ = real
    lines = ddtp.corpus_lines(demo_corpus)
    texts = [r[1] for p in sorted(out.glob("*/*.tsv")) if p.parent.name != "eval" for r in _rows(p)]
    texts += [line.split("\t", 1)[1] for p in sorted((out / "eval" / "ddtp").glob("*.tsv"))
              for line in p.read_text(encoding="utf-8").splitlines()]
    assert len(texts) > 20000
    leaked = [t for t in texts if t in lines]
    assert not leaked, leaked[:3]


# ---------------------------------------------------------------------------------------------
# the suite end to end on a debug run


@pytest.fixture(scope="module")
def debug_run(demo_corpus, tmp_path_factory) -> Path:
    """A debug model trained for 30 steps on four demo languages (the evaluation tests' tokenizer)."""
    from xlmr_core.config import load_config
    from xlmr_core.train.trainer import train

    run_dir = tmp_path_factory.mktemp("ddtp-run") / "run"
    cfg = load_config(None, [
        f"run_dir={run_dir}", "model.size=debug", f"data.corpus={demo_corpus}", "data.langs=en,de,fr,ru",
        "data.vocab_size=2000", "data.seq_len=64", "data.batch_tokens=1024", "schedule.steps=30",
        "schedule.warmup_steps=3", "optim.lr=2e-3", "checkpoint.interval=30", "eval.max_blocks=4", "eval.draws=1",
        "precision.device=cpu"])
    train(cfg)
    return run_dir


SMALL = dataclasses.replace(FT.DDTP_CONFIG, max_train_examples=48, max_eval_examples=12, epochs=1, max_len=32,
                            seeds=(0, 1))


@pytest.fixture
def one_thread():
    """One torch thread for the fine-tuning below, restored after: later tests in this process (the trainer's
    in-process reference runs) must compute with the thread count they started with."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.timeout(600)
def test_suite_end_to_end_on_a_debug_run(real, debug_run, one_thread):
    from xlmr_core.evaluate.suites import evaluate_run, format_results
    from xlmr_core.study import plots, results

    out, meta = real
    res = evaluate_run(debug_run, ["ddtp"], ddtp_cfg=SMALL, ddtp_retrieval=10, quiet=True)
    r = res["ddtp"]
    assert r["mode"] == "zero-shot" and r["train_langs"] == ["en"] and r["n_train"] == 48 and r["n_seeds"] == 2
    assert set(r["per_lang"]) == set(meta["languages"]) and r["chance"] == pytest.approx(1 / 12)
    for lang, v in r["per_lang"].items():
        assert 0 <= v["accuracy"] <= 1 and v["n"] == 12 and v["seen"] == (lang in ("en", "de", "fr", "ru"))
        assert 1 / 12 <= v["majority"] <= 0.25
    ret = res["retrieval-ddtp"]["sets"]["ddtp"]
    assert "en" not in ret and set(ret) == set(meta["languages"]) - {"en"} and all(v["n"] == 10 for v in ret.values())
    assert "DDTP topic accuracy, zero-shot from en" in format_results(res)
    # results exposes the accuracy per language, plots draw it
    final = json.loads((debug_run / "final.json").read_text())
    assert {"ddtp", "retrieval-ddtp"} <= set(final["eval"])
    long = results.load_long(debug_run.parent)
    acc = long.set_index("lang")["eval.ddtp.accuracy"]
    assert acc["ja"] == pytest.approx(r["per_lang"]["ja"]["accuracy"]) and long["eval.ddtp.chance"].notna().all()
    fig = plots.transfer_accuracy(long, groups=("seen", "unseen", "all"))
    assert set(fig.plotted_data["panel"]) == {"transfer:seen", "transfer:unseen", "transfer:all"}


@pytest.mark.timeout(600)
def test_translate_train_all_takes_every_language(real, debug_run, one_thread):
    from xlmr_core.train.rundir import load_run

    model, tok, _ = load_run(debug_run)
    cfg = dataclasses.replace(SMALL, translate_train_all=True, seeds=(0,))
    r = FT.ddtp_transfer(model, tok, real[0], cfg)
    assert r["mode"] == "translate-train-all" and r["train_langs"][0] == "en" and len(r["train_langs"]) > 10
    assert r["n_train"] == 48  # an equal share of every language, not the first 48 English ones


def test_transfer_plot_marks_chance_majority_and_the_paper():
    from xlmr_core.study import plots

    rng = np.random.default_rng(0)
    rows = []
    for n in (5, 10, 20):
        for s in (0, 1, 2):
            for lang in ("en", "fr", "de", "ja", "bg"):
                ddtp_lang = lang != "bg"  # a low-resource training language without a DDTP test set
                rows.append({"run": f"L{n}-s{s}", "status": "done", "seed": s, "n_langs": n, "lang": lang,
                             "group": "high" if lang in ("en", "fr", "de") else "low" if lang == "bg" else "other",
                             "eval.ddtp.accuracy": 0.5 - 0.02 * np.log2(n) + rng.normal(0, 0.01) if ddtp_lang
                             else np.nan, "eval.ddtp.majority": 0.09 if ddtp_lang else np.nan,
                             "eval.ddtp.chance": 1 / 12 if ddtp_lang else np.nan,
                             "eval.ddtp.seen": lang != "ja"})
    fig = plots.transfer_accuracy(pd.DataFrame(rows))
    d = fig.plotted_data
    hi = d[(d["panel"] == "transfer:high") & (d["series"] == "all runs")]
    assert list(hi["x"]) == [5, 10, 20] and (hi["n"] == 3).all() and (hi["err"] > 0).all()
    assert set(d[d["panel"] == "transfer:low"]["series"]) == {"chance"}  # no DDTP language: an empty panel
    assert d[(d["series"] == "chance")]["y"].iloc[0] == pytest.approx(1 / 12)
    assert d[(d["series"] == "majority class") & (d["panel"] == "transfer:all")]["y"].iloc[0] == pytest.approx(0.09)
    assert (d["series"] == "paper (XNLI acc.)").sum() == 2
    assert fig.fits.set_index("panel").loc["transfer:high", "slope"] == pytest.approx(-0.02, abs=0.01)
    with pytest.raises(XlmrError, match="evaluate the runs with the ddtp suite"):
        plots.transfer_accuracy(pd.DataFrame(rows).assign(**{"eval.ddtp.accuracy": np.nan}))


def test_transfer_by_design_splits_english_targets_and_the_rest():
    from xlmr_core.study import plots

    rng = np.random.default_rng(1)
    sets = {"none": ["en", "fr", "gl"], "related": ["en", "fr", "gl", "es", "pt"], "unrelated": ["en", "fr", "gl",
                                                                                             "ar", "ta"]}
    rows = []
    for w in (64, 128):
        for rel, langs in sets.items():
            for s in (0, 1, 2):
                for lang in ("en", "fr", "es", "ja", "gl"):
                    ddtp = lang != "gl"
                    acc = 0.2 + w / 1000 + (0.05 if lang == "es" and rel == "related" else 0) + rng.normal(0, 0.005)
                    rows.append({"run": f"{rel}-h{w}-s{s}", "status": "done", "seed": s, "width": w,
                                 "design": "matched", "relation": rel, "n_langs": len(langs), "lang": lang,
                                 "group": "high" if lang in ("en", "fr") else "low" if lang == "gl" else "other",
                                 "eval.ddtp.accuracy": acc if ddtp else np.nan,
                                 "eval.ddtp.majority": 0.1 if ddtp else np.nan,
                                 "eval.ddtp.chance": 1 / 12 if ddtp else np.nan})
    df = pd.DataFrame(rows)
    fig = plots.transfer_designs(df)
    d = fig.plotted_data
    en = d[(d["panel"] == "matched:transfer:en") & (d["series"] == "width=128, related")]
    assert list(en["x"]) == [3, 5] and (en["n"] == 3).all()
    expect = df[(df["lang"] == "en") & (df["width"] == 128) & (df["relation"] == "related")]["eval.ddtp.accuracy"]
    assert en["y"].iloc[1] == pytest.approx(expect.mean()) and en["err"].iloc[1] == pytest.approx(expect.std())
    # the "others" panel averages es and ja per run: the related set's trained es lifts it by 0.025
    oth = d[d["panel"] == "matched:transfer:others"].set_index("series")
    rel, unrel = oth.loc["width=64, related"], oth.loc["width=64, unrelated"]
    assert rel["y"].iloc[1] - unrel["y"].iloc[1] == pytest.approx(0.025, abs=0.01)
    chance = d[(d["series"] == "chance") & (d["panel"] == "matched:transfer:targets")]["y"]
    assert chance.iloc[0] == pytest.approx(1 / 12)
    with pytest.raises(XlmrError, match="evaluate the runs with the ddtp suite"):
        plots.transfer_designs(df.assign(**{"eval.ddtp.accuracy": np.nan}))


def test_mean_pooling_head_ignores_padding_and_bad_values_are_refused():
    head = FT.ClassificationHead(8, 3, 0.0, pooling="mean").eval()
    h = torch.randn(1, 5, 8)
    padded = torch.cat([h, torch.randn(1, 3, 8)], dim=1)  # (1, 8, 8): three padding positions of noise
    mask = torch.tensor([[1] * 5 + [0] * 3], dtype=torch.bool)
    assert torch.allclose(head(h, torch.ones(1, 5, dtype=torch.bool)), head(padded, mask), atol=1e-6)
    with pytest.raises(XlmrError, match="pooling must be 'cls' or 'mean'"):
        FT.FinetuneConfig(pooling="max")
    assert FT.DDTP_CONFIG.pooling == "mean" and FT.FinetuneConfig().pooling == "cls"  # XLM-R's own default kept
