"""DDTP topic classification: Debian package descriptions, their human translations, archive sections as labels.

The Debian Description Translation Project publishes ``main/i18n/Translation-<lang>`` indexes beside the
Packages index, and apt fetches them once their languages are enabled. The builder runs ``apt-get update``
under a private configuration (``APT_CONFIG``): the system's sources copied into its own ``Dir::Etc``, its own
lists, cache, state and log directories, ``Acquire::Languages`` set to the DDTP languages. The system's apt
state is never read or written (only its sources, keyrings and network settings are reused). Each
translation is joined to its English original by (package, Description-md5) and labelled with the package's
``Section``, the topic the archive gives it.

Fetching and reading the archive's indexes is :mod:`.debian_index`; this module selects, splits and writes.

Output directory (default ``<cache root>/ddtp``; ``$XLMR_DDTP`` points at a copy built elsewhere)::

    en/train.tsv, en/dev.tsv   id<TAB>sentence<TAB>label (with that header): English descriptions of the
                               training packages; train.tsv cycles through the labels, so every prefix is balanced
    <lang>/test.tsv            the same columns: descriptions of the *test* packages, English included; the
                               file cycles through the labels, widely translated packages first, so the first N
                               items of every language are balanced and mostly the same packages
    <lang>/train.tsv           (not en) translations of the training packages, for translate-train-all
    eval/ddtp/<lang>.tsv       id<TAB>text: the test descriptions as a parallel set (id = package), for retrieval
    meta.json                  written last: labels, counts per language and label, languages left out and why,
                               the archive and index files used, the deduplication against the demo corpus

Split by source package (all binaries of one source on one side, a hash of its name decides): English train
and dev come from ``100 - test_percent`` % of the sources, every language's test set from the others, so a
test item's English original is never trained on. Identical English descriptions are kept once. A package
any of whose descriptions (or paragraphs of one) is a line of the demo corpus's training text is dropped in
every language. A label holding more than ``max_class_share`` times its uniform share of a set is cut to it.

Languages keep their demo-corpus keys (``pt_BR`` -> ``pt``, ``pt`` -> ``pt-PT``, ``zh_CN`` -> ``zh``); a language
with fewer than ``min_test`` test descriptions is left out with a note in meta.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from xlmr_core import __version__
from xlmr_core.data import cache
from xlmr_core.democorpus.build import BUILDER_VERSION as CORPUS_BUILDER_VERSION
from xlmr_core.democorpus.build import ensure_demo_corpus, read_meta

# the archive's indexes (apt-get update, reading them): importable from here as before
from xlmr_core.democorpus.debian_index import _PACKAGES_RE as _PACKAGES_RE
from xlmr_core.democorpus.debian_index import _TRANSLATION_RE as _TRANSLATION_RE
from xlmr_core.democorpus.debian_index import (
    DEBIAN_LANGS,
    ENV_VAR,
    MANIFEST,
    _release_info,
    default_apt_dir,
    description_paragraphs,
    fetch_indexes,
    find_indexes,
    read_index,
    stanzas,
)
from xlmr_core.democorpus.debian_index import _apt as _apt
from xlmr_core.democorpus.debian_index import _apt_conf as _apt_conf
from xlmr_core.democorpus.debian_index import _copy_sources as _copy_sources
from xlmr_core.democorpus.debian_index import _elsewhere as _elsewhere
from xlmr_core.democorpus.debian_index import _suite_of as _suite_of
from xlmr_core.democorpus.debian_index import _system_apt as _system_apt
from xlmr_core.democorpus.text import looks_english, script_ok, stable_hash
from xlmr_core.errors import XlmrError
from xlmr_core.fsutil import atomic_dir, atomic_write_json, file_lock

# bump when a change to the selection, the split or the files changes the output: ensure_ddtp rebuilds then
BUILDER_VERSION = 1

LABELS = ("admin", "editors", "fonts", "games", "graphics", "mail", "math", "net", "science", "sound", "text",
          "web")
"""The archive sections used as topics, in label-id order: topical, and each with tens of translated
packages in the smallest kept languages (bookworm: cs, es, pt-PT)."""
EXCLUDED_SECTIONS = {
    "ecosystem": ("python", "perl", "golang", "rust", "ruby", "java", "javascript", "haskell", "ocaml", "lisp",
                  "php", "gnu-r", "cli-mono", "gnustep", "zope", "interpreters", "tex", "gnome", "kde", "xfce"),
    "no topic": ("libs", "libdevel", "oldlibs", "doc", "misc", "utils", "x11", "devel", "debug", "metapackages",
                 "tasks", "localization", "introspection", "kernel", "otherosfs", "shells", "embedded"),
    "too few translations": ("video", "database", "electronics", "hamradio", "comm", "vcs", "httpd", "news",
                             "education"),
}
"""Sections not used as labels, and why: they name a language or desktop ecosystem, describe no topic
(libraries, documentation, catch-alls), or have under ~20 translated packages in most languages."""

_KEYS = {"pt_BR": "pt", "pt": "pt-PT", "zh_CN": "zh", "zh_TW": "zh-Hant"}

DEFAULT_SETTINGS = {"test_percent": 80, "dev_percent": 20, "min_test": 500, "max_class_share": 2.0}
"""What ensure_ddtp builds (the defaults of build_ddtp)."""
COLUMNS = ("id", "sentence", "label")
_NOT_TOPICAL = re.compile(r"\b(transitional|dummy|meta-?package|virtual package)\b", re.IGNORECASE)
_MIN_PARAGRAPH = 20  # characters: a shorter paragraph ('Features:') says nothing about a leak


def key_of(code: str) -> str:
    """The language key of a DDTP code (``pt_BR`` -> ``pt``, ``pt`` -> ``pt-PT``, ``zh_CN`` -> ``zh``)."""
    return _KEYS.get(code, code)


def default_out_dir() -> Path:
    """Where ensure_ddtp keeps the data set: ``<cache root>/ddtp``."""
    return cache.default_root() / "ddtp"



# ---------------------------------------------------------------- selection


def _order(pkg: str) -> int:
    return stable_hash(f"ddtp:{pkg}")


def _balance(pkgs: Iterable[str], label: dict[str, str], max_share: float) -> list[str]:
    """``pkgs`` with every label cut to ``max_share`` × its uniform share of the set, in hash order.

    Which items of a label stay is decided by a second hash, independent of the order of the result (else the
    kept items of a capped label would crowd the front of the file).
    """
    pkgs = sorted(pkgs, key=lambda p: (stable_hash(f"ddtp-keep:{p}"), p))
    sizes = collections.Counter(label[p] for p in pkgs).values()
    cap = max(sizes, default=0)
    # the largest cap under which no label exceeds max_share / K of the set that remains
    while cap > 1 and cap > max_share / len(LABELS) * sum(min(n, cap) for n in sizes):
        cap -= 1
    taken: collections.Counter = collections.Counter()
    out = []
    for p in pkgs:
        if taken[label[p]] < cap:
            taken[label[p]] += 1
            out.append(p)
    return sorted(out, key=lambda p: (_order(p), p))


def _round_robin(pkgs: list[str], label: dict[str, str], key=None) -> list[str]:
    """Cycle through the labels, each in ``key`` order (default: as given): every prefix is as balanced as it can be."""
    by = {lab: sorted((p for p in pkgs if label[p] == lab), key=key) if key else [p for p in pkgs if label[p] == lab]
          for lab in LABELS}
    out = []
    for i in range(max((len(v) for v in by.values()), default=0)):
        out.extend(v[i] for v in by.values() if i < len(v))
    return out


def corpus_lines(corpus_dir: str | os.PathLike) -> set[str]:
    """Every line of every ``<lang>.txt`` training file of a corpus directory."""
    lines: set[str] = set()
    for f in sorted(Path(corpus_dir).glob("*.txt")):
        with open(f, encoding="utf-8") as fh:
            lines.update(line.rstrip("\n") for line in fh)
    return lines


def _label_counts(pkgs: Iterable[str], label: dict[str, str]) -> dict[str, int]:
    c = collections.Counter(label[p] for p in pkgs)
    return {lab: c[lab] for lab in LABELS}


def _write_tsv(path: Path, rows: Iterable[tuple[str, ...]], header: tuple[str, ...] | None = COLUMNS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        if header:
            f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join(row) + "\n")


def build_ddtp(out_dir: str | os.PathLike | None = None, *, lists_dir: str | os.PathLike | None = None,
               apt_dir: str | os.PathLike | None = None, corpus: str | os.PathLike | None = None,
               test_percent: int = 80, dev_percent: int = 20, min_test: int = 500, max_class_share: float = 2.0,
               progress: bool = True) -> dict:
    """Build the DDTP data set into ``out_dir`` (replaced atomically); returns its meta.json.

    lists_dir: index files to read (default: a private ``apt-get update``, cached under ``apt_dir``);
    corpus: the training text to keep test descriptions out of (default: the demo corpus, built if missing).
    """
    for name, v, lo, hi in (("test_percent", test_percent, 1, 99), ("dev_percent", dev_percent, 1, 99)):
        if type(v) is not int or not lo <= v <= hi:
            raise XlmrError(f"ddtp {name} must be an integer in [{lo}, {hi}], not {v!r}")
    if type(min_test) is not int or min_test < 1:
        raise XlmrError(f"ddtp min_test must be a positive integer, not {min_test!r}")
    if not max_class_share >= 1:
        raise XlmrError(f"ddtp max_class_share must be >= 1 (1: every label at most its uniform share), "
                        f"not {max_class_share!r}")
    out = Path(out_dir).expanduser() if out_dir is not None else default_out_dir()

    def log(msg: str) -> None:
        if progress:
            print(f"ddtp: {msg}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    timings = {}
    if lists_dir is None:
        lists_dir = fetch_indexes(apt_dir, DEBIAN_LANGS, log)
    idx = find_indexes(lists_dir)
    timings["fetch"] = round(time.perf_counter() - t0, 2)
    corpus_version = CORPUS_BUILDER_VERSION if corpus is None else None  # None: not the demo corpus
    corpus = ensure_demo_corpus(progress=progress) if corpus is None else Path(corpus)

    # the Packages index: section, source and description checksum of every binary package
    t = time.perf_counter()
    section, source, md5 = {}, {}, {}
    for s in stanzas(read_index(idx["packages"])):
        sec = s.get("Section", "")
        if sec in LABELS and s.get("Description-md5") and not _NOT_TOPICAL.search(s.get("Description", "")):
            p = s["Package"]
            section[p], md5[p] = sec, s["Description-md5"]
            source[p] = (s.get("Source") or p).split()[0]  # 'Source: foo (1.2-1)' when versions differ
    # English originals; one package per identical description (the same text on both sides would leak)
    texts: dict[str, dict[str, list[str]]] = collections.defaultdict(dict)  # lang -> package -> paragraphs
    filtered: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    seen_md5: dict[str, str] = {}
    for s in sorted(stanzas(read_index(idx["translations"]["en"])), key=lambda s: s.get("Package", "")):
        p = s.get("Package")
        if p in section and s.get("Description-md5") == md5[p] and "Description-en" in s:
            if md5[p] in seen_md5:
                filtered["en"]["duplicate"] += 1
                continue
            seen_md5[md5[p]] = p
            texts["en"][p] = description_paragraphs(s["Description-en"])
    label = {p: section[p] for p in texts["en"]}
    languages = {}  # key -> DDTP code
    for code, path in idx["translations"].items():
        key = key_of(code)
        if code == "en" or code not in DEBIAN_LANGS:
            continue
        languages[key] = code
        seen_text: set[str] = set()
        for s in sorted(stanzas(read_index(path)), key=lambda s: s.get("Package", "")):
            p, field = s.get("Package"), f"Description-{code}"
            if p not in label or field not in s:
                continue
            if s.get("Description-md5") != md5[p]:
                filtered[key]["outdated"] += 1  # translates an older English text
                continue
            paras = description_paragraphs(s[field])
            joined = " ".join(paras)
            why = ("english" if looks_english(joined) else "script" if not script_ok(key, joined)
                   else "duplicate" if joined in seen_text else None)
            if why:
                filtered[key][why] += 1
                continue
            seen_text.add(joined)
            texts[key][p] = paras
    timings["read_indexes"] = round(time.perf_counter() - t, 2)

    # no description, nor a paragraph of one, may be a line of the corpus's training text
    t = time.perf_counter()
    train_lines = corpus_lines(corpus)
    leaked = sorted({p for paras_by_pkg in texts.values() for p, paras in paras_by_pkg.items()
                     if " ".join(paras) in train_lines
                     or any(len(x) >= _MIN_PARAGRAPH and x in train_lines for x in paras)})
    for by_pkg in texts.values():
        for p in leaked:
            by_pkg.pop(p, None)
    timings["dedup"] = round(time.perf_counter() - t, 2)

    # the split: by source package, so that all binaries of one source (similar texts) fall on one side
    def side(p: str) -> str:
        src = source[p]
        if stable_hash(f"ddtp-split:{src}") % 100 < test_percent:
            return "test"
        return "dev" if stable_hash(f"ddtp-dev:{src}") % 100 < dev_percent else "train"

    split = {p: side(p) for p in texts["en"]}
    en = {name: _balance([p for p, s in split.items() if s == name], label, max_class_share)
          for name in ("train", "dev", "test")}
    en["train"] = _round_robin(en["train"], label)
    train_set = set(en["train"])
    kept, left_out = {}, {}
    for key in sorted(languages):
        test = _balance([p for p in texts[key] if split.get(p) == "test"], label, max_class_share)
        if len(test) < min_test:
            left_out[key] = {"debian": languages[key], "test": len(test), "translations": len(texts[key]),
                             "why": f"fewer than {min_test} test descriptions in the {len(LABELS)} labels"}
            continue
        train = _round_robin(_balance([p for p in texts[key] if p in train_set], label, max_class_share), label)
        kept[key] = {"test": test, "train": train}
    # test files cycle through the labels, each label's packages translated into the most languages first:
    # the first N items of every language are balanced and mostly the same packages (parallel, as XNLI)
    coverage = collections.Counter(p for v in kept.values() for p in v["test"])

    def widest(p: str) -> tuple:
        return -coverage[p], _order(p), p

    en["test"] = _round_robin(en["test"], label, widest)
    for v in kept.values():
        v["test"] = _round_robin(v["test"], label, widest)

    def row(lang: str, p: str) -> tuple[str, str, str]:
        return p, " ".join(texts[lang][p]), label[p]

    with atomic_dir(out) as tmp:
        t = time.perf_counter()
        for name in ("train", "dev", "test"):
            _write_tsv(tmp / "en" / f"{name}.tsv", (row("en", p) for p in en[name]))
        for key, sets in kept.items():
            _write_tsv(tmp / key / "test.tsv", (row(key, p) for p in sets["test"]))
            _write_tsv(tmp / key / "train.tsv", (row(key, p) for p in sets["train"]))
        # the parallel set: each language's test descriptions, English for every id any language has
        pivot = sorted(coverage, key=widest)
        _write_tsv(tmp / "eval" / "ddtp" / "en.tsv", (row("en", p)[:2] for p in pivot), header=None)
        for key, sets in kept.items():
            _write_tsv(tmp / "eval" / "ddtp" / f"{key}.tsv", (row(key, p)[:2] for p in sets["test"]), header=None)
        timings["write"] = round(time.perf_counter() - t, 2)
        manifest = Path(lists_dir) / MANIFEST
        release = _release_info(idx["release"])
        meta = {
            "builder_version": BUILDER_VERSION,
            "xlmr_core_version": __version__,
            "settings": {"test_percent": test_percent, "dev_percent": dev_percent, "min_test": min_test,
                         "max_class_share": max_class_share},
            "labels": list(LABELS),
            "chance": 1 / len(LABELS),
            "archive": {"suite": idx["suite"], **release,
                        "lists_dir": str(lists_dir),
                        "packages": idx["packages"].name,
                        "translations": {c: p.name for c, p in idx["translations"].items()},
                        "fetch": json.loads(manifest.read_text(encoding="utf-8")) if manifest.exists() else None},
            "dedup": {"corpus": str(corpus), "corpus_builder_version": corpus_version, "lines": len(train_lines),
                      "dropped_packages": len(leaked), "examples": leaked[:10]},
            "split": {"unit": "source package",
                      "sources": {s: len({source[p] for p, x in split.items() if x == s})
                                  for s in ("train", "dev", "test")}},
            "en": {name: len(en[name]) for name in ("train", "dev", "test")}
            | {"labels": {name: _label_counts(en[name], label) for name in ("train", "dev", "test")}},
            "languages": {
                "en": {"debian": "en", "test": len(en["test"]), "train": len(en["train"]),
                       "majority": _majority(en["test"], label), "labels": _label_counts(en["test"], label)},
                **{k: {"debian": languages[k], "test": len(v["test"]), "train": len(v["train"]),
                       "majority": _majority(v["test"], label), "labels": _label_counts(v["test"], label)}
                   for k, v in kept.items()}},
            "left_out": left_out,
            "filtered": {k: dict(sorted(v.items())) for k, v in sorted(filtered.items())},
            "retrieval": {"set": "ddtp", "pivot": "en", "items": {"en": len(pivot)}
                          | {k: len(v["test"]) for k, v in kept.items()}},
            "timings_s": timings,
        }
        meta["build_seconds"] = round(time.perf_counter() - t0, 2)
        atomic_write_json(tmp / "meta.json", meta)  # last: its presence marks a finished build
    log(f"{len(kept) + 1} languages (en + {', '.join(kept)}), {len(left_out)} left out; "
        f"en train {len(en['train'])} / dev {len(en['dev'])} / test {len(en['test'])}; "
        f"{meta['build_seconds']:.1f} s -> {out}")
    return meta


def _majority(pkgs: list[str], label: dict[str, str]) -> float:
    c = collections.Counter(label[p] for p in pkgs)
    return max(c.values()) / len(pkgs) if pkgs else float("nan")



# ---------------------------------------------------------------- the cached copy


def _is_current(meta: dict | None) -> bool:
    return (meta is not None and meta.get("builder_version") == BUILDER_VERSION
            and meta.get("settings") == DEFAULT_SETTINGS
            and (meta.get("dedup") or {}).get("corpus_builder_version") == CORPUS_BUILDER_VERSION)


def ensure_ddtp(out_dir: str | os.PathLike | None = None, *, progress: bool = True) -> Path:
    """The directory of a finished DDTP data set: ``out_dir``, else ``$XLMR_DDTP``, else the default build
    under the cache root (built on first use: a private apt-get update, then about 20 s)."""
    if out_dir is None and os.environ.get(ENV_VAR):
        out = Path(os.environ[ENV_VAR]).expanduser()
        meta = read_meta(out)
        if meta is None or meta.get("builder_version") != BUILDER_VERSION:
            raise XlmrError(f"{ENV_VAR}={out} is not a DDTP data set of builder version {BUILDER_VERSION} (no "
                            f"readable meta.json, or another version): build one with `xlmr corpus ddtp --out "
                            f"{out}` or unset {ENV_VAR}")
        return out
    out = Path(out_dir).expanduser() if out_dir is not None else default_out_dir()
    if _is_current(read_meta(out)):
        return out
    with file_lock(out.parent / f".{out.name}.lock"):  # a second process waits, then finds the first's build
        if not _is_current(read_meta(out)):
            build_ddtp(out, progress=progress)
    return out


# ---------------------------------------------------------------- command line


def summary(meta: dict, out_dir: Path) -> str:
    """A few lines describing a built data set (from its meta.json)."""
    langs = meta["languages"]
    arch = meta["archive"]
    return "\n".join([
        f"DDTP topic classification in {out_dir} (Debian {arch.get('codename') or arch['suite']} "
        f"{arch.get('version', '')}, {len(meta['labels'])} labels: {' '.join(meta['labels'])})",
        f"  English: train {meta['en']['train']}, dev {meta['en']['dev']}, test {meta['en']['test']}",
        "  test descriptions: " + ", ".join(f"{k} {v['test']}" for k, v in sorted(langs.items(),
                                                                                key=lambda kv: -kv[1]["test"])),
        "  left out: " + (", ".join(f"{k} ({v['test']})" for k, v in meta["left_out"].items()) or "none"),
        f"  deduplicated against {meta['dedup']['corpus']}: {meta['dedup']['dropped_packages']} package(s) dropped",
        f"  built in {meta['build_seconds']:.1f} s",
    ])


def _cmd_ddtp(args: argparse.Namespace) -> int:
    out = args.out if args.out is not None else default_out_dir()
    meta = build_ddtp(out, lists_dir=args.lists, apt_dir=args.apt_dir, corpus=args.corpus,
                      test_percent=args.test_percent, min_test=args.min_test, progress=not args.quiet)
    print(summary(meta, out))
    return 0


def add_ddtp_cli(corpus_subparsers) -> argparse.ArgumentParser:
    """Add ``ddtp`` to the subcommands of ``xlmr corpus``."""
    p = corpus_subparsers.add_parser(
        "ddtp", help="build the DDTP topic-classification set (Debian package descriptions in ~15 languages)",
        description="Build the zero-shot transfer data set from Debian's package-description translations "
                    "(a private apt-get update with Acquire::Languages set): <lang>/{train,dev,test}.tsv, "
                    "eval/ddtp/<lang>.tsv, meta.json.")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help=f"output directory, replaced atomically (default {default_out_dir()})")
    p.add_argument("--lists", type=Path, default=None, metavar="DIR",
                   help="read Packages and Translation-<lang> index files from DIR instead of running apt-get "
                        "update (apt's lists directory, or files copied from a mirror's dists/<release>/main/)")
    p.add_argument("--apt-dir", type=Path, default=None, metavar="DIR",
                   help=f"private apt configuration, lists and cache (default {default_apt_dir()})")
    p.add_argument("--corpus", type=Path, default=None, metavar="DIR",
                   help="training corpus whose lines no description may equal (default: the demo corpus)")
    p.add_argument("--test-percent", type=int, default=DEFAULT_SETTINGS["test_percent"],
                   help=f"percent of source packages whose descriptions are test items "
                        f"(default {DEFAULT_SETTINGS['test_percent']})")
    p.add_argument("--min-test", type=int, default=DEFAULT_SETTINGS["min_test"],
                   help=f"leave out languages with fewer test descriptions (default {DEFAULT_SETTINGS['min_test']})")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=_cmd_ddtp)
    return p
