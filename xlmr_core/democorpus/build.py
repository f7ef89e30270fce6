"""Assemble the demo corpus: run the sources, filter and deduplicate, separate evaluation from training, write.

Output directory::

    <lang>.txt                    training text, one paragraph per line, deduplicated
    eval/instguide/<lang>.tsv     id<TAB>text: Debian installation guide paragraphs
    eval/udhr_para/<lang>.tsv     id<TAB>text: UDHR paragraphs
    eval/udhr_article/<lang>.tsv  id<TAB>text: the 31 UDHR units (preamble and 30 articles)
    eval/docs_heldout/<lang>.tsv  id<TAB>text: documentation paragraphs held out of training in every language
    fixture/<lang>.txt            UDHR preamble and articles 1-10 in 16 languages (a tiny corpus for smoke runs)
    meta.json                     written last: a directory without it is not a finished build

An id names the same unit in every language, and every non-English id also occurs in English,
so the sets are parallel. No evaluation text occurs as a line of any training file. The text
files depend only on the downloads and the settings (same inputs, byte-identical files);
meta.json also holds timings.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from xlmr_core import __version__
from xlmr_core.data import cache
from xlmr_core.democorpus.fetch import Fetcher
from xlmr_core.democorpus.sources import DEFAULT_SOURCES, EVAL_SOURCES, PROFILES, SOURCES, TRAIN_SOURCES, Collection
from xlmr_core.democorpus.text import looks_english, main_script, script_ok
from xlmr_core.errors import XlmrError
from xlmr_core.fsutil import atomic_dir, atomic_write_json, file_lock

# bump when a change to the sources, parsers, filters or meta.json changes a build: ensure_demo_corpus rebuilds then
BUILDER_VERSION = 3
EVAL_SETS = ("instguide", "udhr_para", "udhr_article", "docs_heldout")
# what ensure_demo_corpus builds (the defaults of build_demo_corpus)
DEFAULT_SETTINGS = {"holdout_percent": 10, "min_bytes": 20000, "sources": list(DEFAULT_SOURCES)}


def default_out_dir(profile: str = "default") -> Path:
    """Where ensure_demo_corpus keeps the corpus: ``<cache root>/demo-corpus`` (``demo-corpus-<profile>`` for
    another profile)."""
    _check_profile(profile)
    return cache.default_root() / ("demo-corpus" if profile == "default" else f"demo-corpus-{profile}")


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise XlmrError(f"unknown demo corpus profile {profile!r}: choose one of {', '.join(PROFILES)}")


def profile_settings(profile: str = "default") -> dict:
    """The build settings of a profile (``default``: what ``make demo`` and the tests build)."""
    _check_profile(profile)
    return {**DEFAULT_SETTINGS, "sources": list(PROFILES[profile])}


def default_download_dir() -> Path:
    """Where downloaded packages are cached: ``<cache root>/downloads``."""
    return cache.default_root() / "downloads"


def _keep_training_line(lang: str, text: str) -> str | None:
    """None if the line is kept, else why it is dropped."""
    if lang != "en" and looks_english(text):
        return "english"  # untranslated paragraph inside a translation
    if not script_ok(lang, text):
        return "script"  # code, command lines or another language's text
    return None


def select_training(col: Collection, eval_texts: set[str], min_bytes: int) -> dict[str, dict]:
    """Per language: deduplicated lines without evaluation text, English or wrong-script lines, with stats.

    Languages whose kept text is under ``min_bytes`` bytes (UTF-8, newlines included) are left out.
    """
    out = {}
    for lang in sorted(col.train):
        seen, lines = set(), []
        per_src, dropped = collections.Counter(), collections.Counter()
        for src, t in col.train[lang]:
            if t in seen:
                dropped["dup"] += 1
                continue
            seen.add(t)
            if t in eval_texts:
                dropped["in_eval"] += 1
                continue
            why = _keep_training_line(lang, t)
            if why:
                dropped[why] += 1
                continue
            lines.append(t)
            per_src[src] += len(t.encode("utf-8")) + 1
        nbytes = sum(per_src.values())
        if nbytes >= min_bytes and lines:
            out[lang] = {"lines": lines, "bytes": nbytes, "bytes_by_source": dict(sorted(per_src.items())),
                         "dropped": dict(sorted(dropped.items())), "script": main_script("".join(lines[:500]))}
    return out


def select_eval(col: Collection) -> dict[str, dict[str, dict[str, str]]]:
    """Per set and language: the units to write (English-looking or wrong-script units and ids without
    an English counterpart removed; udhr_article is kept whole so that every language has 31 units)."""
    out = {}
    for name in EVAL_SETS:
        langs = col.eval.get(name, {})
        en_ids = set(langs.get("en", {}))
        out[name] = {}
        for lang, items in sorted(langs.items()):
            if lang != "en" and name != "udhr_article":
                items = {i: t for i, t in items.items()
                         if i in en_ids and not looks_english(t) and script_ok(lang, t)}
            if items:
                out[name][lang] = items
    return out


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sizes(col: Collection) -> dict[tuple[str, ...], int]:
    # (lang,) -> training paragraphs, (set, lang) -> evaluation units: to count what a source added
    sizes = {(lang,): len(items) for lang, items in col.train.items()}
    sizes.update({(name, lang): len(items) for name, langs in col.eval.items() for lang, items in langs.items()})
    return sizes


def _check_args(holdout_percent: int, min_bytes: int, sources: tuple[str, ...]) -> None:
    if type(holdout_percent) is not int or not 0 <= holdout_percent < 100:
        raise XlmrError(f"holdout_percent must be an integer in [0, 100), not {holdout_percent!r}")
    if type(min_bytes) is not int or min_bytes < 0:
        raise XlmrError(f"min_bytes must be a non-negative integer, not {min_bytes!r}")
    unknown = [s for s in sources if s not in TRAIN_SOURCES]
    if unknown or not sources:
        raise XlmrError(f"unknown demo corpus source(s) {', '.join(unknown) or '(none given)'}: choose from "
                        f"{', '.join(TRAIN_SOURCES)} (default {','.join(DEFAULT_SOURCES)}; the evaluation "
                        f"sources {', '.join(EVAL_SOURCES)} always run)")


def build_demo_corpus(out_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None, *,
                      holdout_percent: int = 10, min_bytes: int = 20000,
                      sources: Iterable[str] = DEFAULT_SOURCES, progress: bool = True) -> dict:
    """Build the demo corpus into ``out_dir`` (replaced atomically) from cached downloads; returns meta.json."""
    sources = tuple(dict.fromkeys(sources))  # keep order, drop repeats
    _check_args(holdout_percent, min_bytes, sources)
    out_dir = Path(out_dir).expanduser()
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_download_dir()

    def log(msg: str) -> None:
        if progress:
            print(f"demo corpus: {msg}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    fetch = Fetcher(cache_dir, log)
    col = Collection()
    timings = {}
    for name in (*sources, *EVAL_SOURCES):
        t = time.perf_counter()
        before = _sizes(col)
        SOURCES[name].fn(col, fetch, holdout_percent)
        timings[name] = round(time.perf_counter() - t, 2)
        n_langs = len({key[-1] for key, n in _sizes(col).items() if n > before.get(key, 0)})
        log(f"{name:<10} {timings[name]:6.1f} s  {n_langs} languages")

    t = time.perf_counter()
    # every evaluation text, whatever the set and language, is kept out of training text
    eval_texts = {text for langs in col.eval.values() for items in langs.values() for text in items.values()}
    train = select_training(col, eval_texts, min_bytes)
    evals = select_eval(col)
    if not train:
        raise XlmrError(f"no language reached min_bytes={min_bytes} with sources {','.join(sources)}: "
                        f"lower --min-bytes or add sources")

    profile = next((name for name, srcs in PROFILES.items() if srcs == sources), None)
    meta = {
        "builder_version": BUILDER_VERSION,
        "profile": profile,
        "xlmr_core_version": __version__,
        "settings": {"holdout_percent": holdout_percent, "min_bytes": min_bytes, "sources": list(sources)},
        "packages": fetch.provenance(),
        "totals": {"languages": len(train), "bytes": sum(v["bytes"] for v in train.values()),
                   "lines": sum(len(v["lines"]) for v in train.values())},
        "languages": {lang: {k: v for k, v in info.items() if k != "lines"} | {"lines": len(info["lines"])}
                      for lang, info in train.items()},
        "eval": {name: {lang: len(items) for lang, items in langs.items()} for name, langs in evals.items()},
        "udhr": dict(sorted(col.udhr.items())),
        "fixture": sorted(col.fixture),
        "licenses": {name: SOURCES[name].license for name in (*sources, *EVAL_SOURCES)},
    }
    with atomic_dir(out_dir) as tmp:
        os.chmod(tmp, 0o777 & ~_umask())  # a temporary directory is private; the corpus is not
        for lang, info in train.items():
            _write_lines(tmp / f"{lang}.txt", info["lines"])
        for name, langs in evals.items():
            (tmp / "eval" / name).mkdir(parents=True)
            for lang, items in langs.items():
                _write_lines(tmp / "eval" / name / f"{lang}.tsv", (f"{i}\t{t}" for i, t in items.items()))
        (tmp / "fixture").mkdir()
        for lang, lines in sorted(col.fixture.items()):
            _write_lines(tmp / "fixture" / f"{lang}.txt", lines)
        timings["filter_and_write"] = round(time.perf_counter() - t, 2)
        meta["timings_s"] = timings
        meta["build_seconds"] = round(time.perf_counter() - t0, 2)
        atomic_write_json(tmp / "meta.json", meta)  # last: its presence marks a finished build
    log(f"{len(train)} training languages, {meta['totals']['bytes'] / 1e6:.1f} MB, "
        f"{meta['build_seconds']:.1f} s -> {out_dir}")
    return meta


def read_meta(out_dir: str | os.PathLike) -> dict | None:
    """meta.json of a finished build in ``out_dir``, or None if there is none (or it is unreadable)."""
    try:
        return json.loads((Path(out_dir) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_current(meta: dict | None, profile: str = "default") -> bool:
    return (meta is not None and meta.get("builder_version") == BUILDER_VERSION
            and meta.get("settings") == profile_settings(profile))


def ensure_demo_corpus(out_dir: str | os.PathLike | None = None, *, cache_dir: str | os.PathLike | None = None,
                       progress: bool = True, profile: str = "default") -> Path:
    """The directory of a finished build of ``profile`` (default: the demo's) of the current builder version,
    building it if needed."""
    out = Path(out_dir).expanduser() if out_dir is not None else default_out_dir(profile)
    if _is_current(read_meta(out), profile):
        return out
    # a second process waits here and then finds the corpus the first one built
    with file_lock(out.parent / f".{out.name}.lock"):
        if not _is_current(read_meta(out), profile):
            build_demo_corpus(out, cache_dir, sources=PROFILES[profile], progress=progress)
    return out
