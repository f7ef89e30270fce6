"""Readers of the benchmarks' own formats, each failing with one XlmrError naming the file and line:
XNLI-1.0 TSV, MultiNLI / XNLI-MT train TSV, GLUE TSVs, topic TSVs (DDTP), CoNLL-2002/2003 and WikiANN columns,
SQuAD-format JSON (SQuAD v1.1, MLQA, XQuAD)."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from xlmr_core.errors import XlmrError
from xlmr_core.evaluate import metrics as M

PathLike = str | os.PathLike
NLI_LABELS = ("entailment", "neutral", "contradiction")
RTE_LABELS = ("entailment", "not_entailment")


@dataclass(frozen=True)
class TextExample:
    """A sentence or sentence pair with a class name (classification) or a score (regression)."""

    text_a: str
    text_b: str | None
    label: str | float


@dataclass(frozen=True)
class TaggedSentence:
    """Words of one sentence and their tags (IOB1, IOB2 or IOBES)."""

    words: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True)
class QAExample:
    """A SQuAD-style question; ``answers`` are (text, character start in context) pairs."""

    qid: str
    question: str
    context: str
    answers: tuple[tuple[str, int], ...]


def need_file(path: PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise XlmrError(f"{what} file {path} not found: download the benchmark and pass its path")
    return path


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its newline); strict UTF-8 with the failing line named."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise XlmrError(f"{path}:{n}: not valid UTF-8 ({e.reason} at byte {e.start}); "
                                "convert the file to UTF-8") from None
            if n == 1:
                line = line.removeprefix("\ufeff")
            yield n, line.rstrip("\r\n")


def _tsv_rows(path: Path, columns: Sequence[str], *, what: str,
              alternatives: Sequence[Sequence[str]] = ()) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a TSV with a header line as {column: value} for ``columns`` (or the first matching alternative).

    Fields are split on tabs with no quoting (GLUE and XNLI quote nothing, and sentences contain '"').
    """
    rows = _lines(need_file(path, what))
    try:
        _, header_line = next(rows)
    except StopIteration:
        raise XlmrError(f"{path}: empty {what} file (expected a header line)") from None
    header = header_line.split("\t")
    for cols in (columns, *alternatives):
        if all(c in header for c in cols):
            break
    else:
        raise XlmrError(f"{path}:1: {what} header lacks column(s) "
                        f"{', '.join(c for c in columns if c not in header)}; found {', '.join(header)}")
    index = {c: header.index(c) for c in cols}
    need = max(index.values()) + 1
    for n, line in rows:
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < need:
            raise XlmrError(f"{path}:{n}: expected at least {need} tab-separated fields "
                            f"({', '.join(cols)}), found {len(fields)}")
        yield n, {c: fields[i] for c, i in index.items()}


def _check_label(path: Path, n: int, label: str, labels: Sequence[str]) -> str:
    if label not in labels:
        raise XlmrError(f"{path}:{n}: label {label!r} is not one of {', '.join(labels)}")
    return label


def read_xnli(path: PathLike) -> dict[str, list[TextExample]]:
    """XNLI-1.0 ``xnli.dev.tsv`` / ``xnli.test.tsv``: examples per language (columns by header name)."""
    path = Path(path)
    out: dict[str, list[TextExample]] = {}
    for n, row in _tsv_rows(path, ("language", "gold_label", "sentence1", "sentence2"), what="XNLI"):
        label = _check_label(path, n, row["gold_label"], NLI_LABELS)
        out.setdefault(row["language"], []).append(TextExample(row["sentence1"], row["sentence2"], label))
    if not out:
        raise XlmrError(f"{path}: no XNLI examples")
    return dict(sorted(out.items()))


def read_nli_train(path: PathLike) -> list[TextExample]:
    """MultiNLI ``multinli_1.0_train.txt`` (gold_label, sentence1, sentence2) or XNLI-MT's
    ``multinli.train.<lang>.tsv`` (premise, hypo, label with 'contradictory')."""
    path = Path(path)
    out = []
    rows = _tsv_rows(path, ("gold_label", "sentence1", "sentence2"), what="NLI training",
                     alternatives=[("label", "premise", "hypo")])
    for n, row in rows:
        label = row.get("gold_label", row.get("label"))
        if label == "-":
            continue  # MultiNLI: annotators reached no consensus; excluded from the benchmark
        label = "contradiction" if label == "contradictory" else label  # XNLI-MT's spelling
        label = _check_label(path, n, label, NLI_LABELS)
        a = row.get("sentence1", row.get("premise"))
        b = row.get("sentence2", row.get("hypo"))
        out.append(TextExample(a, b, label))
    if not out:
        raise XlmrError(f"{path}: no NLI training examples")
    return out


# GLUE column conventions (glue_data/<Task>/{train,dev}.tsv as written by download_glue_data.py)
GLUE_FORMAT = {
    #        directory  text_a        text_b        label          header
    "glue-sst-2": ("SST-2", "sentence", None, "label", True),
    "glue-mrpc": ("MRPC", "#1 String", "#2 String", "Quality", True),
    "glue-qnli": ("QNLI", "question", "sentence", "label", True),
    "glue-rte": ("RTE", "sentence1", "sentence2", "label", True),
    "glue-wnli": ("WNLI", "sentence1", "sentence2", "label", True),
    "glue-qqp": ("QQP", "question1", "question2", "is_duplicate", True),
    "glue-mnli": ("MNLI", "sentence1", "sentence2", "gold_label", True),
    "glue-sts-b": ("STS-B", "sentence1", "sentence2", "score", True),
    # CoLA has no header: source, label, original annotation, sentence
    "glue-cola": ("CoLA", 3, None, 1, False),
}


def glue_examples(name: str, path: PathLike, *, labels: Sequence[str], regression: bool) -> list[TextExample]:
    """A GLUE ``train.tsv`` / ``dev.tsv`` (or MNLI ``dev_matched.tsv``) of task ``name`` with its column
    conventions: class names among ``labels``, or scores (``regression``)."""
    if name not in GLUE_FORMAT:
        raise XlmrError(f"{name} is not a GLUE task; GLUE tasks: {', '.join(GLUE_FORMAT)}")
    path = Path(path)
    _, a_col, b_col, y_col, header = GLUE_FORMAT[name]
    out = []
    if header:
        cols = [c for c in (a_col, b_col, y_col) if c is not None]
        rows = _tsv_rows(path, cols, what=f"GLUE {name}")
    else:
        def headerless():
            for n, line in _lines(need_file(path, f"GLUE {name}")):
                if not line.strip():
                    continue
                fields = line.split("\t")
                if len(fields) != 4:
                    raise XlmrError(f"{path}:{n}: expected 4 tab-separated fields (source, label, original "
                                    f"label, sentence) as CoLA's {path.name}, found {len(fields)}")
                yield n, dict(enumerate(fields))
        rows = headerless()
    for n, row in rows:
        a = row[a_col]
        b = row[b_col] if b_col is not None else None
        y = row[y_col].strip()
        if regression:
            try:
                label: str | float = float(y)
            except ValueError:
                raise XlmrError(f"{path}:{n}: score {y!r} is not a number") from None
            if not math.isfinite(label):
                raise XlmrError(f"{path}:{n}: score {y!r} is not a finite number")
        else:
            label = _check_label(path, n, y, labels)
        out.append(TextExample(a, b, label))
    if not out:
        raise XlmrError(f"{path}: no {name} examples")
    return out


def topic_examples(name: str, path: PathLike, *, labels: Sequence[str]) -> list[TextExample]:
    """A single-sentence classification TSV with a header naming ``sentence`` and ``label`` among ``labels``
    (DDTP's ``<lang>/{train,dev,test}.tsv``; other columns such as ``id`` are ignored)."""
    path = Path(path)
    out = [TextExample(row["sentence"], None, _check_label(path, n, row["label"], labels))
           for n, row in _tsv_rows(path, ("sentence", "label"), what=f"{name}")]
    if not out:
        raise XlmrError(f"{path}: no {name} examples")
    return out


_WIKIANN_PREFIX = re.compile(r"^([a-z]{2,3}(?:-[a-z]+)?):(.+)$")


def read_conll(path: PathLike) -> tuple[list[TaggedSentence], str | None]:
    """CoNLL-2002/2003 columns (token first, tag last, blank line between sentences, -DOCSTART- skipped)
    or WikiANN / XTREME PAN-X (``lang:token<TAB>TAG``): (sentences, language of the prefix or None)."""
    path = need_file(path, "CoNLL/WikiANN")
    sentences: list[TaggedSentence] = []
    words: list[str] = []
    tags: list[str] = []
    prefix: str | None = None
    seen_token = False

    def close():
        if words:
            sentences.append(TaggedSentence(tuple(words), tuple(tags)))
            words.clear()
            tags.clear()

    for n, line in _lines(path):
        fields = line.split()
        if not fields:
            close()
            continue
        if fields[0] == "-DOCSTART-":
            close()
            continue
        if len(fields) < 2:
            raise XlmrError(f"{path}:{n}: expected a token and a tag (whitespace-separated), found {line!r}")
        token, tag = fields[0], fields[-1]
        if not seen_token:  # the first token decides whether the file carries WikiANN's 'lang:' prefixes
            m = _WIKIANN_PREFIX.match(token)
            prefix = m.group(1) if m else None
            seen_token = True
        if prefix is not None:
            if not token.startswith(prefix + ":") or len(token) == len(prefix) + 1:
                raise XlmrError(f"{path}:{n}: token {token!r} lacks the '{prefix}:' prefix of the other lines")
            token = token[len(prefix) + 1:]
        try:
            M.get_entities([tag])
        except XlmrError:
            raise XlmrError(f"{path}:{n}: tag {tag!r} is not O or B-/I-/E-/S-TYPE") from None
        words.append(token)
        tags.append(tag)
    close()
    if not sentences:
        raise XlmrError(f"{path}: no tagged sentences")
    return sentences, prefix


def read_squad(path: PathLike) -> list[QAExample]:
    """SQuAD-format JSON (SQuAD v1.1, MLQA, XQuAD): data[].paragraphs[].context / qas[].id/question/answers[]."""
    path = need_file(path, "SQuAD-format")
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise XlmrError(f"{path}: not valid UTF-8 at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise XlmrError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})") from None

    def need(obj, key, where, typ):
        if not isinstance(obj, dict) or key not in obj:
            raise XlmrError(f"{path}: {where} has no {key!r} (SQuAD format: data[].paragraphs[].qas[])")
        if not isinstance(obj[key], typ):
            raise XlmrError(f"{path}: {where}.{key} has the wrong type ({type(obj[key]).__name__})")
        return obj[key]

    out = []
    for i, article in enumerate(need(doc, "data", "the top level", list)):
        for j, para in enumerate(need(article, "paragraphs", f"data[{i}]", list)):
            where = f"data[{i}].paragraphs[{j}]"
            context = need(para, "context", where, str)
            for k, qa in enumerate(need(para, "qas", where, list)):
                w = f"{where}.qas[{k}]"
                qid, question = str(need(qa, "id", w, (str, int))), need(qa, "question", w, str)
                answers = []
                for m, ans in enumerate(need(qa, "answers", w, list)):
                    text, start = need(ans, "text", f"{w}.answers[{m}]", str), ans.get("answer_start")
                    if not isinstance(start, int) or context[start:start + len(text)] != text:
                        raise XlmrError(f"{path}: {w}.answers[{m}]: answer_start {start!r} does not point at "
                                        f"the answer text {text!r} in the context")
                    answers.append((text, start))
                if not answers:
                    raise XlmrError(f"{path}: {w} (id {qid}) has no answer; SQuAD v2 unanswerable questions "
                                    "are not supported")
                out.append(QAExample(qid, question, context, tuple(answers)))
    if not out:
        raise XlmrError(f"{path}: no questions")
    return out

