"""Downstream transfer: fine-tune the encoder on a benchmark and evaluate every language (XLM-R §5).

Cross-lingual transfer as in Conneau et al. 2019 (arXiv 1911.02116): fine-tune on the English
training set and evaluate zero-shot on every language of the evaluation data, or fine-tune on the
training sets of all languages together (translate-train-all) when per-language files are given.

- readers for the official formats, each failing with one XlmrError naming the file and line:
  XNLI-1.0 TSV, MultiNLI / XNLI-MT train TSV, GLUE TSVs, CoNLL-2002/2003 and WikiANN columns,
  SQuAD-format JSON (SQuAD v1.1, MLQA, XQuAD);
- task heads on ``XLMRForMaskedLM.encode`` (B, T, H), as fairseq / transformers RoBERTa:
  sentence(-pair) classification and STS-B regression on <s>, token classification on the first
  sub-token of each word, an extractive span head with a sliding window over long contexts;
- a training loop (AdamW, linear warmup and decay, gradient clipping) run once per seed, reporting
  the mean and standard deviation over seeds;
- ``finetune_task`` (explicit files) and ``run_downstream`` (a benchmark directory, used by ``xlmr eval``).

Inputs follow RoBERTa: ``<s> A </s>`` and ``<s> A </s></s> B </s>`` (QA: ``<s> question </s></s> context </s>``).

Word-to-character offsets for QA: the Tokenizer gives ids, not offsets, so a context is split into
words (whitespace-separated runs; each CJK ideograph or kana its own word, since Chinese and Japanese
use no spaces) and each word is encoded alone. Every sub-token then knows its word, a predicted span
maps to whole words and from them to the exact characters of the context. A span can therefore not
start or end inside a word ("Paris," is returned for "Paris"); the SQuAD/MLQA normalisation removes
such punctuation before scoring. Scripts without spaces and outside CJK (Thai, Khmer) become one long
"word" per run and score poorly with this choice.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import logging
import math
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import metrics as M
from .democorpus.ddtp import LABELS as _DDTP_LABELS
from .errors import XlmrError

log = logging.getLogger(__name__)

PathLike = str | os.PathLike

# ---------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    """Settings of one fine-tuning experiment (the same for every seed and language)."""

    lr: float = 2e-5
    """Peak learning rate. XLM-R base on XNLI: ~1e-5..3e-5; tiny or barely trained models need ~1e-4..1e-3."""
    epochs: int = 3
    """Passes over the training set."""
    batch_size: int = 32
    """Training examples (QA: windows) per optimiser step."""
    eval_batch_size: int = 64
    """Examples per forward pass at evaluation."""
    max_len: int = 128
    """Tokens per input, <s> and </s> included (QA: 384 is usual); longer inputs are truncated or windowed."""
    warmup_ratio: float = 0.1
    """Fraction of the steps with a linear warmup from 0 to ``lr``; linear decay to 0 afterwards."""
    weight_decay: float = 0.01
    """AdamW weight decay (not on biases and LayerNorm weights)."""
    adam_betas: tuple[float, float] = (0.9, 0.98)
    """AdamW betas (fairseq's RoBERTa fine-tuning settings)."""
    adam_eps: float = 1e-6
    """AdamW epsilon."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value; 0 disables clipping."""
    dropout: float = 0.1
    """Dropout inside the task head (the encoder keeps its own configured dropout)."""
    seeds: tuple[int, ...] = (0,)
    """One fine-tuning run per seed (head init, data order, dropout); results report mean and std."""
    device: str = "auto"
    """'cpu', 'cuda', 'cuda:1', ... or 'auto' (CUDA when available)."""
    bf16: bool = True
    """bf16 autocast on CUDA (ignored on CPU)."""
    max_train_examples: int | None = None
    """Use only the first N training examples (quick runs); None uses all."""
    max_eval_examples: int | None = None
    """Evaluate only the first N examples of each language; None uses all."""
    doc_stride: int = 128
    """QA: tokens between the starts of two consecutive context windows."""
    max_query_len: int = 64
    """QA: question tokens kept (at most max_len // 2)."""
    max_answer_len: int = 30
    """QA: longest predicted answer, in tokens."""
    eval_split: str = "test"
    """``run_downstream``: evaluate on 'test' or 'dev' files."""
    translate_train_all: bool = False
    """``run_downstream``: fine-tune on every language's training file together instead of English only."""
    pooling: str = "cls"
    """Sentence-level heads: 'cls' reads <s> (fairseq / XLM-R); 'mean' averages the non-padding tokens, for
    briefly pre-trained models whose <s> vector is still the same for every input (nothing trains it in MLM)."""

    def __post_init__(self):
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise XlmrError(f"finetune lr must be a positive number, got {self.lr!r}")
        for name in ("epochs", "batch_size", "eval_batch_size", "max_len", "doc_stride", "max_query_len",
                     "max_answer_len"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise XlmrError(f"finetune {name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.max_len < 8:
            raise XlmrError(f"finetune max_len must be >= 8 tokens, got {self.max_len}")
        if not 0 <= self.warmup_ratio < 1:
            raise XlmrError(f"finetune warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise XlmrError("finetune weight_decay and grad_clip must be >= 0")
        if not 0 <= self.dropout < 1:
            raise XlmrError(f"finetune dropout must be in [0, 1), got {self.dropout!r}")
        if not self.seeds or not all(isinstance(s, int) for s in self.seeds):
            raise XlmrError(f"finetune seeds must be a non-empty tuple of integers, got {self.seeds!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise XlmrError(f"finetune seeds repeat: {self.seeds!r}")
        for name in ("max_train_examples", "max_eval_examples"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int) and v >= 1):
                raise XlmrError(f"finetune {name} must be None or an integer >= 1, got {v!r}")
        if self.eval_split not in ("dev", "test"):
            raise XlmrError(f"finetune eval_split must be 'dev' or 'test', got {self.eval_split!r}")
        if self.pooling not in ("cls", "mean"):
            raise XlmrError(f"finetune pooling must be 'cls' or 'mean', got {self.pooling!r}")


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """What a benchmark task predicts and how it is scored."""

    name: str
    """Suite name, e.g. 'xnli', 'glue-sts-b', 'ner', 'mlqa'."""
    kind: str
    """'classification', 'regression', 'tagging' or 'qa'."""
    labels: tuple[str, ...] = ()
    """Class names in output order (classification); tagging labels come from the training data."""
    metrics: tuple[str, ...] = ("accuracy",)
    """Reported metrics; the first is the headline number."""

    def __post_init__(self):
        if self.kind not in ("classification", "regression", "tagging", "qa"):
            raise XlmrError(f"task {self.name}: unknown kind {self.kind!r}")
        if self.kind == "classification" and len(self.labels) < 2:
            raise XlmrError(f"task {self.name}: a classification task needs at least two labels")


_NLI = ("entailment", "neutral", "contradiction")
_RTE = ("entailment", "not_entailment")
TASKS: dict[str, TaskSpec] = {
    "xnli": TaskSpec(name="xnli", kind="classification", labels=_NLI),
    "glue-mnli": TaskSpec(name="glue-mnli", kind="classification", labels=_NLI),
    "glue-qnli": TaskSpec(name="glue-qnli", kind="classification", labels=_RTE),
    "glue-rte": TaskSpec(name="glue-rte", kind="classification", labels=_RTE),
    "glue-sst-2": TaskSpec(name="glue-sst-2", kind="classification", labels=("0", "1")),
    "glue-wnli": TaskSpec(name="glue-wnli", kind="classification", labels=("0", "1")),
    # GLUE scores MRPC and QQP by F1 of the positive class and accuracy, CoLA by Matthews correlation
    "glue-mrpc": TaskSpec(name="glue-mrpc", kind="classification", labels=("0", "1"), metrics=("f1", "accuracy")),
    "glue-qqp": TaskSpec(name="glue-qqp", kind="classification", labels=("0", "1"), metrics=("f1", "accuracy")),
    "glue-cola": TaskSpec(name="glue-cola", kind="classification", labels=("0", "1"), metrics=("mcc", "accuracy")),
    "glue-sts-b": TaskSpec(name="glue-sts-b", kind="regression", metrics=("pearson", "spearman")),
    "ner": TaskSpec(name="ner", kind="tagging", metrics=("f1", "precision", "recall")),
    "mlqa": TaskSpec(name="mlqa", kind="qa", metrics=("f1", "exact_match")),
    # topic classification of Debian package descriptions (labels: archive sections), see democorpus.ddtp
    "ddtp": TaskSpec(name="ddtp", kind="classification", labels=_DDTP_LABELS),
}
SUITES = tuple(TASKS)
_ALIASES = {"glue-sst2": "glue-sst-2", "glue-stsb": "glue-sts-b", "glue-sts": "glue-sts-b", "sst-2": "glue-sst-2",
            "wikiann": "ner", "panx": "ner", "conll": "ner"}


def get_task(task: str | TaskSpec) -> TaskSpec:
    """The TaskSpec of a suite name (e.g. 'xnli', 'glue-sst-2', 'ner', 'mlqa'), or ``task`` itself."""
    if isinstance(task, TaskSpec):
        return task
    name = str(task).lower()
    name = _ALIASES.get(name, name)
    if name not in TASKS and f"glue-{name}" in TASKS:
        name = f"glue-{name}"
    if name not in TASKS:
        raise XlmrError(f"unknown downstream suite {task!r}; choose one of {', '.join(SUITES)}")
    return TASKS[name]


# ---------------------------------------------------------------------------------------------
# examples and readers


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


def _need_file(path: PathLike, what: str) -> Path:
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
    rows = _lines(_need_file(path, what))
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
        label = _check_label(path, n, row["gold_label"], _NLI)
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
        label = _check_label(path, n, label, _NLI)
        a = row.get("sentence1", row.get("premise"))
        b = row.get("sentence2", row.get("hypo"))
        out.append(TextExample(a, b, label))
    if not out:
        raise XlmrError(f"{path}: no NLI training examples")
    return out


# GLUE column conventions (glue_data/<Task>/{train,dev}.tsv as written by download_glue_data.py)
_GLUE_FORMAT = {
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


def read_glue(task: str | TaskSpec, path: PathLike) -> list[TextExample]:
    """A GLUE ``train.tsv`` / ``dev.tsv`` (or MNLI ``dev_matched.tsv``) with its task's column conventions."""
    spec = get_task(task)
    if spec.name not in _GLUE_FORMAT:
        raise XlmrError(f"{spec.name} is not a GLUE task; GLUE tasks: {', '.join(_GLUE_FORMAT)}")
    path = Path(path)
    _, a_col, b_col, y_col, header = _GLUE_FORMAT[spec.name]
    out = []
    if header:
        cols = [c for c in (a_col, b_col, y_col) if c is not None]
        rows = _tsv_rows(path, cols, what=f"GLUE {spec.name}")
    else:
        def headerless():
            for n, line in _lines(_need_file(path, f"GLUE {spec.name}")):
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
        if spec.kind == "regression":
            try:
                label: str | float = float(y)
            except ValueError:
                raise XlmrError(f"{path}:{n}: score {y!r} is not a number") from None
            if not math.isfinite(label):
                raise XlmrError(f"{path}:{n}: score {y!r} is not a finite number")
        else:
            label = _check_label(path, n, y, spec.labels)
        out.append(TextExample(a, b, label))
    if not out:
        raise XlmrError(f"{path}: no {spec.name} examples")
    return out


def read_topics(task: str | TaskSpec, path: PathLike) -> list[TextExample]:
    """A single-sentence classification TSV with a header naming ``sentence`` and ``label`` (DDTP's
    ``<lang>/{train,dev,test}.tsv``; other columns such as ``id`` are ignored)."""
    spec = get_task(task)
    path = Path(path)
    out = [TextExample(row["sentence"], None, _check_label(path, n, row["label"], spec.labels))
           for n, row in _tsv_rows(path, ("sentence", "label"), what=f"{spec.name}")]
    if not out:
        raise XlmrError(f"{path}: no {spec.name} examples")
    return out


_WIKIANN_PREFIX = re.compile(r"^([a-z]{2,3}(?:-[a-z]+)?):(.+)$")


def read_conll(path: PathLike) -> tuple[list[TaggedSentence], str | None]:
    """CoNLL-2002/2003 columns (token first, tag last, blank line between sentences, -DOCSTART- skipped)
    or WikiANN / XTREME PAN-X (``lang:token<TAB>TAG``): (sentences, language of the prefix or None)."""
    path = _need_file(path, "CoNLL/WikiANN")
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
    path = _need_file(path, "SQuAD-format")
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


# ---------------------------------------------------------------------------------------------
# heads (fairseq RobertaClassificationHead; transformers RobertaForTokenClassification / ...QuestionAnswering)


class ClassificationHead(nn.Module):
    """Sentence-level head on <s> (or the mean of the tokens): dropout -> dense -> tanh -> dropout -> out_proj."""

    def __init__(self, hidden: int, n_out: int, dropout: float, pooling: str = "cls"):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden, n_out)
        self.pooling = pooling

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.pooling == "mean" and mask is not None:
            w = mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
            x = (h * w).sum(1) / w.sum(1).clamp(min=1)  # (B, H): mean over the real tokens
        else:
            x = h[:, 0]  # (B, H): <s>
        x = self.dropout(x)
        x = torch.tanh(self.dense(x))
        return self.out_proj(self.dropout(x))  # (B, n_out)


class TaskModel(nn.Module):
    """The pre-trained encoder with one task head; forward returns the head's logits."""

    def __init__(self, encoder: nn.Module, kind: str, n_out: int, dropout: float, pooling: str = "cls"):
        super().__init__()
        self.encoder, self.kind = encoder, kind
        H = encoder.config.hidden_size
        if kind in ("classification", "regression"):
            self.head: nn.Module = ClassificationHead(H, n_out, dropout, pooling)
        elif kind == "tagging":
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(H, n_out))
        else:  # qa: start and end logits per token
            self.head = nn.Linear(H, 2)
        std = getattr(encoder.config, "init_std", 0.02)
        for m in self.head.modules():  # BERT/fairseq init: N(0, 0.02) weights, zero biases
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=std)
                nn.init.zeros_(m.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.encoder.encode(input_ids, attention_mask=attention_mask)  # (B, T, H)
        if isinstance(self.head, ClassificationHead):
            return self.head(h, attention_mask)  # (B, n_out)
        return self.head(h)  # (B, T, n_out)


# ---------------------------------------------------------------------------------------------
# featurisation: examples -> token ids and targets


def _truncate_pair(a: list[int], b: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Longest-first truncation (transformers' default) of two id lists to ``budget`` tokens in total."""
    if len(a) + len(b) <= budget:
        return a, b
    short = min(len(a), len(b))
    keep_short = min(short, budget // 2)
    keep_long = budget - keep_short
    return (a[:keep_long], b[:keep_short]) if len(a) >= len(b) else (a[:keep_short], b[:keep_long])


def _encode_text(tok, examples: Sequence[TextExample], max_len: int) -> list[list[int]]:
    """RoBERTa inputs ``<s> A </s>`` or ``<s> A </s></s> B </s>`` of at most max_len tokens."""
    a_ids = tok.encode_batch([e.text_a for e in examples])
    pairs = [e.text_b is not None for e in examples]
    b_ids = iter(tok.encode_batch([e.text_b for e in examples if e.text_b is not None]))
    out = []
    for a, is_pair in zip(a_ids, pairs):
        if is_pair:
            a, b = _truncate_pair(a, next(b_ids), max_len - 4)
            out.append([tok.bos_id, *a, tok.eos_id, tok.eos_id, *b, tok.eos_id])
        else:
            out.append([tok.bos_id, *a[:max_len - 2], tok.eos_id])
    return out


def _word_ids(tok, words: Sequence[str]) -> list[list[int]]:
    """Sub-token ids of each word encoded alone (so each word starts with SentencePiece's '▁'); never empty."""
    return [ids or [tok.unk_id] for ids in tok.encode_batch(list(words))]


def _encode_tagged(tok, sentences: Sequence[TaggedSentence], label_ids: Mapping[str, int], max_len: int
                   ) -> tuple[list[list[int]], list[list[int]], list[tuple[int, int, list[int]]]]:
    """Token classification inputs per chunk: ids, labels, (sentence, first word, first-token positions).

    Labels sit on the first sub-token of each word and are -100 on the others (they carry no loss).
    A sentence longer than max_len - 2 tokens is cut at word boundaries into several chunks.
    Gold tags unknown to ``label_ids`` (tags never seen in training) train nothing and are scored as gold.
    """
    flat_words = [w for s in sentences for w in s.words]
    flat_ids = _word_ids(tok, flat_words)
    ids_out, labels_out, where = [], [], []
    k = 0
    budget = max_len - 2
    for si, s in enumerate(sentences):
        w = 0
        while w < len(s.words):
            ids, labels, firsts, w0 = [tok.bos_id], [-100], [], w
            while w < len(s.words):
                piece = flat_ids[k + w][:budget]  # a single over-long word keeps its first tokens
                if len(ids) - 1 + len(piece) > budget and w > w0:
                    break
                firsts.append(len(ids))
                ids.extend(piece)
                labels.extend([label_ids.get(s.tags[w], -100)] + [-100] * (len(piece) - 1))
                w += 1
            ids.append(tok.eos_id)
            labels.append(-100)
            ids_out.append(ids)
            labels_out.append(labels)
            where.append((si, w0, firsts))
        k += len(s.words)
    return ids_out, labels_out, where


# each CJK ideograph / kana is a word of its own; everything else is split on whitespace
_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\s\u3040-\u30ff\u3400-\u4dbf"
                   r"\u4e00-\u9fff\uf900-\ufaff]+")


def context_words(context: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of the words of a QA context (see the module docstring)."""
    return [m.span() for m in _WORD.finditer(context)]


@dataclass
class _QAFeature:
    """One window of one question: input ids, where the context starts, the word of each context token."""

    example: int
    ids: list[int]
    ctx_start: int  # index in ids of the first context token
    tok_word: list[int]  # (n context tokens,) word index of each context token in this window
    start: int = 0  # training target positions in ids (0 = <s>: the answer is not in this window)
    end: int = 0


def _encode_qa(tok, examples: Sequence[QAExample], cfg: FinetuneConfig, train: bool
               ) -> tuple[list[_QAFeature], list[list[tuple[int, int]]]]:
    """Sliding windows ``<s> question </s></s> context[window] </s>`` with stride cfg.doc_stride (BERT's
    run_squad). Training windows that do not hold the answer point at <s>, as BERT does for SQuAD."""
    questions = tok.encode_batch([e.question for e in examples])
    feats, all_spans = [], []
    for ei, (ex, q) in enumerate(zip(examples, questions)):
        q = q[:min(cfg.max_query_len, cfg.max_len // 2)]  # leave at least half of each window to the context
        spans = context_words(ex.context)
        all_spans.append(spans)
        words = [ex.context[s:e] for s, e in spans]
        ctx_ids, tok_word, first_tok, last_tok = [], [], [], []
        for wi, ids in enumerate(_word_ids(tok, words) if words else []):
            first_tok.append(len(ctx_ids))
            ctx_ids.extend(ids)
            tok_word.extend([wi] * len(ids))
            last_tok.append(len(ctx_ids) - 1)
        target = None
        if train and spans:
            text, a0 = ex.answers[0]
            a1 = a0 + len(text)
            inside = [wi for wi, (s, e) in enumerate(spans) if s < a1 and e > a0]  # words overlapping the answer
            if inside:
                target = (first_tok[inside[0]], last_tok[inside[-1]])
        room = cfg.max_len - len(q) - 4
        ctx_start = len(q) + 3
        w0 = 0
        while True:
            w1 = min(w0 + room, len(ctx_ids))
            f = _QAFeature(ei, [tok.bos_id, *q, tok.eos_id, tok.eos_id, *ctx_ids[w0:w1], tok.eos_id],
                           ctx_start, tok_word[w0:w1])
            if target is not None and w0 <= target[0] and target[1] < w1:
                f.start, f.end = target[0] - w0 + ctx_start, target[1] - w0 + ctx_start
            feats.append(f)
            if w1 >= len(ctx_ids):
                break
            w0 += min(cfg.doc_stride, room)
    return feats, all_spans


def best_span(start_logits: np.ndarray, end_logits: np.ndarray, max_answer_len: int) -> tuple[float, int, int]:
    """(score, i, j) maximising start[i] + end[j] with i <= j < i + max_answer_len."""
    n = len(start_logits)
    score = start_logits[:, None] + end_logits[None, :]  # (n, n)
    i, j = np.indices((n, n))
    score = np.where((j >= i) & (j < i + max_answer_len), score, -np.inf)
    flat = int(np.argmax(score))
    return float(score.flat[flat]), flat // n, flat % n


def qa_predictions(examples: Sequence[QAExample], feats: Sequence[_QAFeature], spans: Sequence[list],
                   logits: Sequence[np.ndarray], max_answer_len: int) -> dict[str, str]:
    """{qid: answer text}: the best span over all windows of a question, mapped through words to characters.

    logits[k] is (len(feats[k].ids), 2) start/end scores. As transformers' run_qa post-processing, the
    highest start + end score over every window wins (no "maximum context" re-weighting).
    """
    best: dict[int, tuple[float, str]] = {}
    for f, logit in zip(feats, logits):
        n = len(f.tok_word)
        if n == 0:
            continue
        ctx = np.asarray(logit, dtype=np.float64)[f.ctx_start:f.ctx_start + n]  # (n, 2): context tokens only
        score, i, j = best_span(ctx[:, 0], ctx[:, 1], max_answer_len)
        if f.example not in best or score > best[f.example][0]:
            ex, sp = examples[f.example], spans[f.example]
            best[f.example] = (score, ex.context[sp[f.tok_word[i]][0]:sp[f.tok_word[j]][1]])
    return {examples[k].qid: text for k, (_, text) in best.items()}


# ---------------------------------------------------------------------------------------------
# training and prediction


def _device(cfg: FinetuneConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(cfg.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise XlmrError(f"finetune device {cfg.device!r} requested but CUDA is not available; use device='cpu'")
    return dev


def _pad(seqs: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    T = max(len(s) for s in seqs)
    out = torch.full((len(seqs), T), value, dtype=torch.long)
    for r, s in enumerate(seqs):
        out[r, :len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


def _batch_inputs(ids: Sequence[Sequence[int]], pad_id: int, dev) -> tuple[torch.Tensor, torch.Tensor]:
    x = _pad(ids, pad_id)  # (B, T) padded to the longest in the batch
    return x.to(dev), (x != pad_id).to(dev)


def _autocast(dev: torch.device, cfg: FinetuneConfig):
    enabled = dev.type == "cuda" and cfg.bf16
    return torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=enabled)


def _loss(model: TaskModel, batch: list[dict], pad_id: int, dev, cfg) -> torch.Tensor:
    x, mask = _batch_inputs([b["ids"] for b in batch], pad_id, dev)
    with _autocast(dev, cfg):
        logits = model(x, mask)
    logits = logits.float()
    if model.kind == "classification":
        return F.cross_entropy(logits, torch.tensor([b["y"] for b in batch], device=dev))
    if model.kind == "regression":
        return F.mse_loss(logits[:, 0], torch.tensor([b["y"] for b in batch], dtype=torch.float32, device=dev))
    if model.kind == "tagging":
        y = _pad([b["y"] for b in batch], -100).to(dev)  # (B, T)
        return F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100)
    start, end = logits.unbind(-1)  # (B, T) each
    ys = torch.tensor([b["start"] for b in batch], device=dev)
    ye = torch.tensor([b["end"] for b in batch], device=dev)
    return (F.cross_entropy(start, ys) + F.cross_entropy(end, ye)) / 2


def _train(model: TaskModel, items: list[dict], pad_id: int, cfg: FinetuneConfig, seed: int, dev) -> float:
    """Fine-tune in place; returns the mean training loss of the last epoch."""
    rng = np.random.default_rng(seed)
    steps_per_epoch = math.ceil(len(items) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warmup = int(cfg.warmup_ratio * total)
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]  # biases, LayerNorm
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps)

    def lr_factor(step: int) -> float:  # linear warmup, then linear decay to 0 (BERT / RoBERTa fine-tuning)
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    model.train()
    last = 0.0
    for epoch in range(cfg.epochs):
        order = rng.permutation(len(items))
        losses = []
        for s in range(steps_per_epoch):
            batch = [items[i] for i in order[s * cfg.batch_size:(s + 1) * cfg.batch_size]]
            loss = _loss(model, batch, pad_id, dev, cfg)
            if not torch.isfinite(loss):
                raise XlmrError(f"fine-tuning loss became {float(loss)} at epoch {epoch}, step {s}: "
                                f"lower the learning rate (lr={cfg.lr})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        last = float(np.mean(losses))
        log.info("epoch %d/%d: train loss %.4f", epoch + 1, cfg.epochs, last)
    return last


@torch.no_grad()
def _logits(model: TaskModel, ids: list[list[int]], pad_id: int, cfg: FinetuneConfig, dev) -> list[np.ndarray]:
    """Head outputs per input (unpadded: (n_out,) per sentence, (T_i, n_out) per token), in input order."""
    model.eval()
    out: list[np.ndarray] = [None] * len(ids)  # type: ignore[list-item]
    order = np.argsort([len(x) for x in ids], kind="stable")  # length-sorted batches pad little
    for s in range(0, len(ids), cfg.eval_batch_size):
        idx = order[s:s + cfg.eval_batch_size]
        x, mask = _batch_inputs([ids[i] for i in idx], pad_id, dev)
        with _autocast(dev, cfg):
            logits = model(x, mask).float().cpu().numpy()
        for r, i in enumerate(idx):
            out[i] = logits[r] if model.kind in ("classification", "regression") else logits[r, :len(ids[i])]
    return out


# ---------------------------------------------------------------------------------------------
# tasks: training items, prediction and scoring per kind


class _Task:
    """Binds a TaskSpec to a tokenizer and the label set, and turns examples into items / scores."""

    def __init__(self, spec: TaskSpec, tok, cfg: FinetuneConfig, train_examples: Sequence):
        self.spec, self.tok, self.cfg = spec, tok, cfg
        if spec.kind == "classification":
            self.labels = list(spec.labels)
        elif spec.kind == "tagging":
            tags = {t for s in train_examples for t in s.tags}
            self.labels = ["O", *sorted(tags - {"O"})]
        else:
            self.labels = []
        self.label_ids = {y: i for i, y in enumerate(self.labels)}

    @property
    def n_out(self) -> int:
        return {"classification": len(self.labels), "regression": 1, "tagging": len(self.labels), "qa": 2}[
            self.spec.kind]

    def items(self, examples: Sequence) -> list[dict]:
        """Training items: {'ids', 'y'} or {'ids', 'start', 'end'}."""
        kind = self.spec.kind
        if kind in ("classification", "regression"):
            ids = _encode_text(self.tok, examples, self.cfg.max_len)
            ys = [self.label_ids[e.label] if kind == "classification" else float(e.label) for e in examples]
            return [{"ids": i, "y": y} for i, y in zip(ids, ys)]
        if kind == "tagging":
            ids, labels, _ = _encode_tagged(self.tok, examples, self.label_ids, self.cfg.max_len)
            return [{"ids": i, "y": y} for i, y in zip(ids, labels)]
        feats, _ = _encode_qa(self.tok, examples, self.cfg, train=True)
        return [{"ids": f.ids, "start": f.start, "end": f.end} for f in feats]

    def evaluate(self, model: TaskModel, examples: Sequence, lang: str, dev) -> dict[str, float]:
        """Predict ``examples`` and score them with the task's metrics."""
        kind, pad = self.spec.kind, self.tok.pad_id
        if kind in ("classification", "regression"):
            out = _logits(model, _encode_text(self.tok, examples, self.cfg.max_len), pad, self.cfg, dev)
            if kind == "regression":
                pred = [float(o[0]) for o in out]
                gold = [float(e.label) for e in examples]
                return {"pearson": M.pearson(pred, gold), "spearman": M.spearman(pred, gold)}
            pred = [self.labels[int(np.argmax(o))] for o in out]
            gold = [e.label for e in examples]
            scores = {"accuracy": M.accuracy(pred, gold)}
            if "f1" in self.spec.metrics:
                scores["f1"] = M.binary_f1(pred, gold, positive="1")
            if "mcc" in self.spec.metrics:
                scores["mcc"] = M.matthews_corr(pred, gold)
            return scores
        if kind == "tagging":
            ids, _, where = _encode_tagged(self.tok, examples, self.label_ids, self.cfg.max_len)
            out = _logits(model, ids, pad, self.cfg, dev)
            pred = [["O"] * len(s.words) for s in examples]
            for logit, (si, w0, firsts) in zip(out, where):
                for w, pos in enumerate(firsts, w0):  # each word's tag is read at its first sub-token
                    pred[si][w] = self.labels[int(np.argmax(logit[pos]))]
            return {k: v for k, v in M.entity_prf([s.tags for s in examples], pred).items()
                    if k in ("precision", "recall", "f1")}
        feats, spans = _encode_qa(self.tok, examples, self.cfg, train=False)
        out = _logits(model, [f.ids for f in feats], pad, self.cfg, dev)
        preds = qa_predictions(examples, feats, spans, out, self.cfg.max_answer_len)
        golds = {e.qid: [a for a, _ in e.answers] for e in examples}
        return M.qa_scores(preds, golds, lang if lang in M.MLQA_LANGS else None)


# ---------------------------------------------------------------------------------------------
# entry points


def load_encoder(model_or_path, tokenizer=None):
    """(encoder, tokenizer) from an ``XLMRForMaskedLM``, a run directory (``xlmr train``) or a
    transformers-format directory / checkpoint file (``xlmr import-hf``)."""
    if isinstance(model_or_path, nn.Module):
        if tokenizer is None:
            raise XlmrError("finetune: pass the tokenizer together with a model object")
        return model_or_path, tokenizer
    path = Path(model_or_path)
    if not path.exists():
        raise XlmrError(f"model {path} not found: pass a run directory, a checkpoint or an exported model")
    if path.is_dir() and (path / "checkpoints").is_dir():
        from .train import load_run

        model, run_tok, _ = load_run(path, device="cpu")
        return model, tokenizer or run_tok
    from .hf import load

    model, tok_path = load(path)
    if tokenizer is None:
        if tok_path is None:
            raise XlmrError(f"{path} has no tokenizer model: pass tokenizer=Tokenizer('spm.model')")
        from .tokenizer import Tokenizer

        tokenizer = Tokenizer(tok_path)
    return model, tokenizer


def _read_train(spec: TaskSpec, path: PathLike) -> list:
    if spec.name == "xnli":
        return read_nli_train(path)
    if spec.name.startswith("glue-"):
        return read_glue(spec, path)
    if spec.name == "ddtp":
        return read_topics(spec, path)
    if spec.kind == "tagging":
        return read_conll(path)[0]
    return read_squad(path)


def _read_eval(spec: TaskSpec, evals) -> dict[str, list]:
    """{language or set name: examples}. One XNLI file holds every language; other files are one set each,
    named by the mapping key (or, for a single path, by the WikiANN prefix, else 'en' for GLUE, else the stem)."""
    items = evals.items() if isinstance(evals, Mapping) else [(None, evals)]
    out: dict[str, list] = {}
    for name, path in items:
        if spec.name == "xnli":
            parts = read_xnli(path)
            if name is not None and len(parts) == 1:
                parts = {name: next(iter(parts.values()))}
        elif spec.name.startswith("glue-"):
            parts = {name or "en": read_glue(spec, path)}
        elif spec.name == "ddtp":  # <lang>/test.tsv: named by its directory
            parts = {name or Path(path).parent.name: read_topics(spec, path)}
        elif spec.kind == "tagging":
            sents, prefix = read_conll(path)
            parts = {name or prefix or Path(path).stem: sents}
        else:
            parts = {name or Path(path).stem: read_squad(path)}
        for k, v in parts.items():
            if k in out:
                raise XlmrError(f"evaluation set {k!r} given twice (last in {path})")
            out[k] = v
    return dict(sorted(out.items()))


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def finetune_task(model_or_path, tokenizer, task: str | TaskSpec, train: PathLike | Sequence[PathLike]
                  | Mapping[str, PathLike], evals: PathLike | Mapping[str, PathLike],
                  cfg: FinetuneConfig | None = None) -> dict:
    """Fine-tune once per seed on ``train`` and evaluate on every language of ``evals``.

    train: one file or several (English: zero-shot transfer to the other languages), or {lang: file}
    (translate-train-all: every language's training set, shuffled together). evals: one file (XNLI:
    all its languages) or {lang: file}. Returns dict(task, metric, train_langs, per_lang{lang: {metric, metric_std}},
    mean{metric, metric_std} (average over languages, spread over seeds), seeds[...], n_train, n_eval,
    config); scores are fractions.
    """
    cfg = cfg or FinetuneConfig()
    spec = get_task(task)
    dev = _device(cfg)
    if isinstance(train, Mapping):
        train_langs, train_paths = list(train), list(train.values())
    elif isinstance(train, (str, os.PathLike)):
        train_langs, train_paths = ["en"], [train]
    else:
        train_langs, train_paths = ["en"], list(train)
    if not train_paths:
        raise XlmrError(f"{spec.name}: no training file given")
    # read every input before loading the model or training, so bad files fail fast
    per_file = [_read_train(spec, p) for p in train_paths]
    if isinstance(train, Mapping) and cfg.max_train_examples is not None:
        # translate-train-all under a cap: interleave the languages so that each gets an equal share
        per_file = [[ex for group in itertools.zip_longest(*per_file) for ex in group if ex is not None]]
    train_examples = [ex for exs in per_file for ex in exs]
    if cfg.max_train_examples is not None:
        train_examples = train_examples[:cfg.max_train_examples]
    eval_sets = _read_eval(spec, evals)
    if cfg.max_eval_examples is not None:
        eval_sets = {k: v[:cfg.max_eval_examples] for k, v in eval_sets.items()}

    encoder, tok = load_encoder(model_or_path, tokenizer)
    vocab = encoder.config.vocab_size
    if tok.vocab_size > vocab:
        raise XlmrError(f"tokenizer {tok.model_file} has {tok.vocab_size} ids but the model only {vocab} "
                        "embeddings: use the tokenizer the model was trained with")
    if cfg.max_len > encoder.config.max_positions:
        raise XlmrError(f"finetune max_len {cfg.max_len} exceeds the model's max_positions "
                        f"{encoder.config.max_positions}; lower max_len")
    base_state = {k: v.detach().to("cpu").clone() for k, v in encoder.state_dict().items()}
    task_ = _Task(spec, tok, cfg, train_examples)
    items = task_.items(train_examples)

    seeds_out = []
    for seed in cfg.seeds:
        torch.manual_seed(seed)
        enc = copy.deepcopy(encoder).to("cpu")
        enc.load_state_dict(base_state)  # every seed starts from the same pre-trained weights
        model = TaskModel(enc, spec.kind, task_.n_out, cfg.dropout, cfg.pooling).to(dev)
        t0 = time.perf_counter()
        train_loss = _train(model, items, tok.pad_id, cfg, seed, dev)
        train_s = time.perf_counter() - t0
        per_lang = {}
        for lang, examples in eval_sets.items():
            per_lang[lang] = task_.evaluate(model, examples, lang, dev)
        mean = {m: float(np.mean([s[m] for s in per_lang.values()])) for m in spec.metrics}
        seeds_out.append(dict(seed=seed, per_lang=per_lang, mean=mean, train_loss=train_loss, train_s=train_s))
        log.info("%s seed %d: %s", spec.name, seed, {m: round(v, 4) for m, v in mean.items()})
        del model, enc

    def summary(get) -> dict[str, float]:
        out = {}
        for m in spec.metrics:
            mu, sd = _mean_std([get(s)[m] for s in seeds_out])
            out[m], out[f"{m}_std"] = mu, sd
        return out

    return dict(
        task=spec.name,
        metric=spec.metrics[0],
        mode="translate-train-all" if isinstance(train, Mapping) else "zero-shot",
        train_langs=train_langs,
        per_lang={lang: summary(lambda s, lang=lang: s["per_lang"][lang]) for lang in eval_sets},
        mean=summary(lambda s: s["mean"]),
        n_seeds=len(seeds_out),
        seeds=seeds_out,
        n_train=len(train_examples),
        n_eval={k: len(v) for k, v in eval_sets.items()},
        config=dataclasses.asdict(cfg),
    )


# ---------------------------------------------------------------------------------------------
# benchmark directories


def _find(data_dir: Path, name: str) -> Path | None:
    """The one file called ``name`` anywhere under data_dir (None if absent; an error if ambiguous)."""
    hits = sorted(p for p in data_dir.rglob(name) if p.is_file())
    if len(hits) > 1:
        raise XlmrError(f"{data_dir}: several files named {name} ({', '.join(map(str, hits[:4]))}); "
                        "keep one or pass the files to finetune_task")
    return hits[0] if hits else None


def _find_glob(data_dir: Path, pattern: str, regex: str) -> dict[str, Path]:
    """{language: file} for files matching ``pattern`` whose name's ``regex`` group 1 is the language."""
    out: dict[str, Path] = {}
    for p in sorted(data_dir.rglob(pattern)):
        m = re.fullmatch(regex, p.name)
        if m and p.is_file():
            if m.group(1) in out:
                raise XlmrError(f"{data_dir}: two files for language {m.group(1)}: {out[m.group(1)]} and {p}")
            out[m.group(1)] = p
    return out


_CONLL_LANGS = {"eng": "en", "deu": "de", "esp": "es", "ned": "nl"}  # CoNLL-2002/2003 file prefixes
_CONLL_SPLITS = {"train": "train", "dev": "testa", "test": "testb"}
_NER_SUFFIXES = ("", ".txt", ".tsv", ".conll", ".iob", ".iob2", ".bio")


def downstream_files(suite: str, data_dir: PathLike, cfg: FinetuneConfig | None = None
                     ) -> tuple[PathLike | dict[str, Path], PathLike | dict[str, Path]]:
    """(train, evals) for ``finetune_task`` found in a benchmark directory (layouts: see ``run_downstream``)."""
    cfg = cfg or FinetuneConfig()
    spec = get_task(suite)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise XlmrError(f"benchmark directory {data_dir} not found")
    split = cfg.eval_split

    def missing(what: str) -> XlmrError:
        return XlmrError(f"{data_dir}: no {what} for {spec.name} (see finetune.run_downstream for the layout)")

    if spec.name == "xnli":
        evals = _find(data_dir, f"xnli.{split}.tsv")
        if evals is None:
            raise missing(f"xnli.{split}.tsv (XNLI-1.0)")
        en = _find(data_dir, "multinli_1.0_train.txt") or _find(data_dir, "multinli_1.0_train.tsv")
        if cfg.translate_train_all:
            train = _find_glob(data_dir, "multinli.train.*.tsv", r"multinli\.train\.([\w-]+)\.tsv")
            if not train:
                raise missing("XNLI-MT-1.0 multinli.train.<lang>.tsv files (translate-train-all)")
            if "en" not in train and en is not None:
                train = {"en": en, **train}
            return train, evals
        if en is None:
            raise missing("multinli_1.0_train.txt (MultiNLI 1.0)")
        return en, evals

    if spec.name == "ddtp":  # <lang>/{train,dev,test}.tsv (democorpus.ddtp); only English has dev
        langs = {d.name: d for d in sorted(data_dir.iterdir()) if d.is_dir() and d.name != "eval"}
        evals = {lang: d / f"{split}.tsv" for lang, d in langs.items() if (d / f"{split}.tsv").is_file()}
        if not evals:
            raise missing(f"<lang>/{split}.tsv files (build the data set with `xlmr corpus ddtp`)")
        if "en" not in langs or not (langs["en"] / "train.tsv").is_file():
            raise missing("English training file en/train.tsv")
        if cfg.translate_train_all:
            train = {lang: d / "train.tsv" for lang, d in langs.items() if (d / "train.tsv").is_file()}
            return {"en": train.pop("en"), **train}, evals
        return langs["en"] / "train.tsv", evals

    if spec.name.startswith("glue-"):
        sub = data_dir / _GLUE_FORMAT[spec.name][0]
        root = sub if sub.is_dir() else data_dir
        train_file = _need_file(root / "train.tsv", f"GLUE {spec.name} train")
        # GLUE's test labels are hidden: always score the dev set
        if spec.name == "glue-mnli":
            evals = {"en": root / "dev_matched.tsv", "en-mismatched": root / "dev_mismatched.tsv"}
            evals = {k: v for k, v in evals.items() if v.is_file()}
            if not evals:
                raise missing(f"dev_matched.tsv in {root}")
        else:
            evals = {"en": _need_file(root / "dev.tsv", f"GLUE {spec.name} dev")}
        return train_file, evals

    if spec.kind == "tagging":
        per_lang: dict[str, dict[str, Path]] = {}
        for lang_dir in sorted(p for p in data_dir.iterdir() if p.is_dir()):  # <lang>/{train,dev,test}
            for key in ("train", "dev", "test"):
                for suffix in _NER_SUFFIXES:
                    if (lang_dir / f"{key}{suffix}").is_file():
                        per_lang.setdefault(lang_dir.name, {})[key] = lang_dir / f"{key}{suffix}"
                        break
        for prefix, lang in _CONLL_LANGS.items():  # eng.train, eng.testa, eng.testb, ...
            for key, name in _CONLL_SPLITS.items():
                if (data_dir / f"{prefix}.{name}").is_file():
                    per_lang.setdefault(lang, {}).setdefault(key, data_dir / f"{prefix}.{name}")
        evals = {lang: f[split] for lang, f in per_lang.items() if split in f}
        if not evals:
            raise missing(f"{split} files (<lang>/{split} or eng.{_CONLL_SPLITS[split]})")
        if cfg.translate_train_all:
            train = {lang: f["train"] for lang, f in per_lang.items() if "train" in f}
            if len(train) < 2:
                raise missing("training files in two or more languages (translate-train-all)")
            return train, evals
        if "train" not in per_lang.get("en", {}):
            raise missing("English training file (en/train or eng.train)")
        return per_lang["en"]["train"], evals

    # mlqa: SQuAD v1.1 train, MLQA_V1/{dev,test}/<split>-context-<l>-question-<l>.json (same-language pairs)
    evals = _find_glob(data_dir, f"{split}-context-*-question-*.json",
                       rf"{split}-context-([\w-]+)-question-\1\.json")
    if not evals:
        raise missing(f"MLQA {split}-context-<lang>-question-<lang>.json files")
    if cfg.translate_train_all:
        raise XlmrError("mlqa translate-train-all: pass {lang: SQuAD-format training file} to finetune_task")
    train = _find(data_dir, "train-v1.1.json")
    if train is None:
        raise missing("SQuAD v1.1 train-v1.1.json")
    return train, evals


def run_downstream(run_dir_or_model, tokenizer, suite: str, data_dir: PathLike,
                   cfg: FinetuneConfig | None = None) -> dict:
    """Fine-tune a run's model on a benchmark found in ``data_dir`` and evaluate every language.

    suite and layout (files are found anywhere below data_dir unless a path is shown):
    - 'xnli': ``multinli_1.0_train.txt`` (MultiNLI 1.0) and ``xnli.test.tsv`` / ``xnli.dev.tsv``
      (XNLI-1.0); translate-train-all: XNLI-MT-1.0 ``multinli.train.<lang>.tsv``;
    - 'glue-<task>' (sst-2, mrpc, qnli, rte, wnli, qqp, mnli, cola, sts-b): ``data_dir/<Task>/`` or
      ``data_dir/`` holding GLUE's ``train.tsv`` and ``dev.tsv`` (MNLI: ``dev_matched.tsv``,
      ``dev_mismatched.tsv``); always scored on dev;
    - 'ner': ``data_dir/<lang>/{train,dev,test}`` (XTREME PAN-X / WikiANN, optional suffix .txt/.tsv/
      .conll/.iob/.bio) or CoNLL's ``eng|deu|esp|ned.{train,testa,testb}``; English trains;
    - 'mlqa': ``train-v1.1.json`` (SQuAD v1.1) and MLQA_V1 ``<split>-context-<l>-question-<l>.json``;
    - 'ddtp': ``data_dir/<lang>/{train,dev,test}.tsv`` as ``democorpus.ddtp`` writes them (see ``ddtp_transfer``).
    cfg.eval_split picks dev or test; cfg.translate_train_all trains on every language's file.
    Returns ``finetune_task``'s dict plus suite and data_dir.
    """
    cfg = cfg or FinetuneConfig()
    train, evals = downstream_files(suite, data_dir, cfg)
    out = finetune_task(run_dir_or_model, tokenizer, suite, train, evals, cfg)
    return dict(suite=get_task(suite).name, data_dir=str(data_dir), **out)


# ---------------------------------------------------------------------------------------------
# DDTP: zero-shot transfer on Debian's package-description translations, built offline


DDTP_CONFIG = FinetuneConfig(lr=1e-3, epochs=4, batch_size=16, max_len=48, warmup_ratio=0.1, pooling="mean",
                             max_train_examples=1200, max_eval_examples=200, seeds=(0,))
"""The fixed settings of the ``ddtp`` suite, the same for every run so that runs compare: 300 steps (4 epochs × 75)
of 16 English descriptions (1,200 examples cycling through the 12 labels), the first 48 tokens of each, mean-pooled
(a briefly pre-trained <s> carries nothing), 200 test descriptions per language (balanced, mostly the same packages
in every language), one seed. A demo-size model (4 × 128, 4K vocabulary) takes about 35 s on one CPU thread.
Other settings through ``dataclasses.replace`` (e.g. ``seeds=(0, 1, 2)``, ``translate_train_all=True``)."""


def ddtp_transfer(run_dir_or_model, tokenizer=None, data_dir: PathLike | None = None,
                  cfg: FinetuneConfig | None = None, *, train_langs: Sequence[str] = ()) -> dict:
    """Zero-shot transfer on DDTP topic classification: fine-tune on English, accuracy in every language.

    data_dir: a built data set (default: ``democorpus.ddtp.ensure_ddtp()``, which honours ``$XLMR_DDTP`` and
    builds it on first use); cfg: ``DDTP_CONFIG`` unless given (``translate_train_all=True``: train on every
    language's translations of the training packages, an equal share each). Returns ``run_downstream``'s dict
    plus ``chance`` (1 / labels), ``data_builder_version``, and in ``per_lang[lang]``: ``majority`` (the
    majority-class rate of the evaluated items), ``n`` (items) and ``seen`` (lang in ``train_langs``).
    """
    from .democorpus.ddtp import ensure_ddtp, read_meta

    cfg = cfg or DDTP_CONFIG
    data = ensure_ddtp(data_dir)
    _, evals = downstream_files("ddtp", data, cfg)
    majority = {}
    for lang, path in evals.items():
        gold = [e.label for e in read_topics("ddtp", path)[:cfg.max_eval_examples]]
        majority[lang] = max(gold.count(y) for y in set(gold)) / len(gold)
    out = run_downstream(run_dir_or_model, tokenizer, "ddtp", data, cfg)
    for lang, v in out["per_lang"].items():
        v.update(majority=majority[lang], n=out["n_eval"][lang], seen=lang in train_langs)
    meta = read_meta(data) or {}
    return dict(out, chance=1 / len(get_task("ddtp").labels), data_builder_version=meta.get("builder_version"))
