"""Small text predicates shared by the sources and the filters: whitespace, letters, script, English."""

from __future__ import annotations

import collections
import functools
import hashlib
import re
import unicodedata

_SPACE_RE = re.compile(r"\s+")


def norm_space(s: str) -> str:
    """Collapse every run of whitespace (tabs, newlines, U+2028, NBSP ...) to one space and strip."""
    # after this a paragraph is one line of a <lang>.txt or one field of an eval .tsv
    return _SPACE_RE.sub(" ", s).strip()


def stable_hash(s: str) -> int:
    """A 32-bit hash that is the same in every process (``hash()`` is salted per process)."""
    return int(hashlib.sha1(s.encode("utf-8")).hexdigest()[:8], 16)


def has_letters(s: str, n: int = 3) -> bool:
    """True if ``s`` holds at least ``n`` alphabetic characters."""
    c = 0
    for ch in s:
        if ch.isalpha():
            c += 1
            if c >= n:
                return True
    return False


# frequent English function words: an untranslated paragraph left in a translation is full of them
_EN_FUNC = frozenset("the of and that with are this by you from your can which have has when "
                     "should would these those there their been into".split())
_WORD_RE = re.compile(r"[A-Za-z]+")


def looks_english(line: str) -> bool:
    """True for a line of six or more Latin words of which at least 18% are English function words."""
    toks = [t.lower() for t in _WORD_RE.findall(line)]
    if len(toks) < 6:
        return False
    return sum(t in _EN_FUNC for t in toks) / len(toks) >= 0.18


# the Unicode script (first word of the character name) a language's letters must mostly be in
EXPECTED_SCRIPT = {
    "ar": {"ARABIC"}, "fa": {"ARABIC"}, "ur": {"ARABIC"}, "he": {"HEBREW"},
    "ru": {"CYRILLIC"}, "uk": {"CYRILLIC"}, "bg": {"CYRILLIC"}, "mk": {"CYRILLIC"},
    "sr": {"CYRILLIC"}, "be": {"CYRILLIC"}, "kk": {"CYRILLIC"}, "el": {"GREEK"},
    "hi": {"DEVANAGARI"}, "mr": {"DEVANAGARI"}, "ne": {"DEVANAGARI"}, "as": {"BENGALI"},
    "bn": {"BENGALI"}, "gu": {"GUJARATI"}, "pa": {"GURMUKHI"}, "ta": {"TAMIL"},
    "te": {"TELUGU"}, "kn": {"KANNADA"}, "ml": {"MALAYALAM"}, "th": {"THAI"},
    "ko": {"HANGUL"}, "ja": {"CJK", "HIRAGANA", "KATAKANA"}, "zh": {"CJK"},
    "zh-Hant": {"CJK"}, "ka": {"GEORGIAN"}, "hy": {"ARMENIAN"}, "km": {"KHMER"},
}


@functools.lru_cache(maxsize=1 << 16)  # called once per letter of the corpus: a few thousand distinct ones
def _script(ch: str) -> str:
    return unicodedata.name(ch, "?").split(" ")[0]


def script_ok(lang: str, text: str, min_frac: float = 0.3) -> bool:
    """True unless ``lang`` has an expected script and under ``min_frac`` of the letters are in it."""
    exp = EXPECTED_SCRIPT.get(lang)
    if not exp:
        return True
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and sum(_script(ch) in exp for ch in letters) / len(letters) >= min_frac


def main_script(text: str) -> str:
    """The most frequent script among the letters of the first 20,000 characters ('Latin', 'Cjk' ...)."""
    c = collections.Counter(_script(ch) for ch in text[:20000] if ch.isalpha())
    return c.most_common(1)[0][0].title() if c else "?"
