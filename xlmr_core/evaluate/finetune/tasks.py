"""One object per task kind (classification, regression, tagging, extractive QA), each with its reader, features,
head, loss and scorer, and the registry of benchmark tasks by suite name.

A new kind of task is one new subclass of ``Task``; a new benchmark of a known kind is one entry in ``TASKS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from xlmr_core.democorpus.ddtp import LABELS as DDTP_LABELS
from xlmr_core.errors import XlmrError
from xlmr_core.evaluate import metrics as M
from xlmr_core.evaluate.finetune import layout
from xlmr_core.evaluate.finetune.config import FinetuneConfig
from xlmr_core.evaluate.finetune.features import encode_qa, encode_tagged, encode_text, qa_predictions
from xlmr_core.evaluate.finetune.heads import ClassificationHead, TaskModel, TokenHead, batch_inputs, predict
from xlmr_core.evaluate.finetune.readers import (
    NLI_LABELS,
    RTE_LABELS,
    PathLike,
    TextExample,
    glue_examples,
    read_conll,
    read_nli_train,
    read_squad,
    read_xnli,
    topic_examples,
)
from xlmr_core.model.device import pad_rows


@dataclass(frozen=True, kw_only=True)
class Task:
    """What a benchmark task predicts, how its files are read and found, and how it is scored."""

    name: str
    """Suite name, e.g. 'xnli', 'glue-sts-b', 'ner', 'mlqa'."""
    labels: tuple[str, ...] = ()
    """Class names in output order (classification); tagging labels come from the training data."""
    metrics: tuple[str, ...] = ("accuracy",)
    """Reported metrics; the first is the headline number."""
    files: Callable[[str, Path, FinetuneConfig], tuple] = field(default=layout.glue_files, compare=False)
    """The benchmark directory's layout: (task name, data_dir, cfg) → (train, evals), see ``layout``."""

    kind = ""
    per_token = False
    """Whether the head scores every token (tagging, QA) or the sentence."""

    # reading
    def read_train(self, path: PathLike) -> list:
        """The training examples of one file."""
        raise NotImplementedError

    def read_eval(self, name: str | None, path: PathLike) -> dict[str, list]:
        """{set name: examples} of one evaluation file (``name``: the caller's, None to infer it)."""
        return {name or Path(path).stem: self.read_train(path)}

    # model
    def label_set(self, train_examples: Sequence) -> list[str]:
        """Output labels in order, given the training examples."""
        return list(self.labels)

    def head(self, hidden: int, labels: Sequence[str], cfg: FinetuneConfig) -> nn.Module:
        raise NotImplementedError

    def model(self, encoder: nn.Module, labels: Sequence[str], cfg: FinetuneConfig) -> TaskModel:
        return TaskModel(encoder, self.head(encoder.config.hidden_size, labels, cfg), self.per_token)

    # training
    def items(self, tok, cfg: FinetuneConfig, labels: Sequence[str], examples: Sequence) -> list[dict]:
        """Training items: {'ids', 'y'} or {'ids', 'start', 'end'}."""
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, batch: list[dict], dev) -> torch.Tensor:
        raise NotImplementedError

    def batch_loss(self, model: TaskModel, batch: list[dict], pad_id: int, dev, precision) -> torch.Tensor:
        x, mask = batch_inputs([b["ids"] for b in batch], pad_id, dev)
        with precision:
            logits = model(x, mask)
        return self.loss(logits.float(), batch, dev)

    # scoring
    def evaluate(self, model: TaskModel, tok, cfg: FinetuneConfig, labels: Sequence[str], examples: Sequence,
                 lang: str, dev) -> dict[str, float]:
        """Predict ``examples`` and score them with the task's metrics."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class SentenceTask(Task):
    """A sentence (pair) read by one of the text readers: (name, path) → TextExamples."""

    reader: Callable[[Task, PathLike], list[TextExample]] = field(default=None, compare=False)

    def read_train(self, path: PathLike) -> list:
        return self.reader(self, path)

    def n_out(self, labels: Sequence[str]) -> int:
        return len(labels)

    def head(self, hidden: int, labels: Sequence[str], cfg: FinetuneConfig) -> nn.Module:
        return ClassificationHead(hidden, self.n_out(labels), cfg.dropout, cfg.pooling)

    def outputs(self, model: TaskModel, tok, cfg: FinetuneConfig, examples: Sequence, dev) -> list[np.ndarray]:
        return predict(model, encode_text(tok, examples, cfg.max_len), tok.pad_id, cfg, dev)


@dataclass(frozen=True, kw_only=True)
class Classification(SentenceTask):
    """Sentence(-pair) classification on <s> (or the mean of the tokens)."""

    kind = "classification"

    def __post_init__(self):
        if len(self.labels) < 2:
            raise XlmrError(f"task {self.name}: a classification task needs at least two labels")

    def items(self, tok, cfg, labels, examples):
        ids = {y: i for i, y in enumerate(labels)}
        return [{"ids": i, "y": ids[e.label]} for i, e in zip(encode_text(tok, examples, cfg.max_len), examples)]

    def loss(self, logits, batch, dev):
        return F.cross_entropy(logits, torch.tensor([b["y"] for b in batch], device=dev))

    def evaluate(self, model, tok, cfg, labels, examples, lang, dev):
        pred = [labels[int(np.argmax(o))] for o in self.outputs(model, tok, cfg, examples, dev)]
        gold = [e.label for e in examples]
        scores = {"accuracy": M.accuracy(pred, gold)}
        if "f1" in self.metrics:
            scores["f1"] = M.binary_f1(pred, gold, positive="1")
        if "mcc" in self.metrics:
            scores["mcc"] = M.matthews_corr(pred, gold)
        return scores


@dataclass(frozen=True, kw_only=True)
class Regression(SentenceTask):
    """A sentence-pair score (STS-B) from the sentence head's one output."""

    kind = "regression"

    def n_out(self, labels):
        return 1

    def items(self, tok, cfg, labels, examples):
        return [{"ids": i, "y": float(e.label)} for i, e in zip(encode_text(tok, examples, cfg.max_len), examples)]

    def loss(self, logits, batch, dev):
        return F.mse_loss(logits[:, 0], torch.tensor([b["y"] for b in batch], dtype=torch.float32, device=dev))

    def evaluate(self, model, tok, cfg, labels, examples, lang, dev):
        pred = [float(o[0]) for o in self.outputs(model, tok, cfg, examples, dev)]
        gold = [float(e.label) for e in examples]
        return {"pearson": M.pearson(pred, gold), "spearman": M.spearman(pred, gold)}


@dataclass(frozen=True, kw_only=True)
class Tagging(Task):
    """Token classification on the first sub-token of each word (CoNLL / WikiANN NER)."""

    kind = "tagging"
    per_token = True

    def read_train(self, path):
        return read_conll(path)[0]

    def read_eval(self, name, path):
        sents, prefix = read_conll(path)
        return {name or prefix or Path(path).stem: sents}

    def label_set(self, train_examples):
        tags = {t for s in train_examples for t in s.tags}
        return ["O", *sorted(tags - {"O"})]

    def head(self, hidden, labels, cfg):
        return TokenHead(hidden, len(labels), cfg.dropout)

    def items(self, tok, cfg, labels, examples):
        ids, ys, _ = encode_tagged(tok, examples, {y: i for i, y in enumerate(labels)}, cfg.max_len)
        return [{"ids": i, "y": y} for i, y in zip(ids, ys)]

    def loss(self, logits, batch, dev):
        y = pad_rows([b["y"] for b in batch], -100).to(dev)  # (B, T)
        return F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100)

    def evaluate(self, model, tok, cfg, labels, examples, lang, dev):
        ids, _, where = encode_tagged(tok, examples, {y: i for i, y in enumerate(labels)}, cfg.max_len)
        out = predict(model, ids, tok.pad_id, cfg, dev)
        pred = [["O"] * len(s.words) for s in examples]
        for logit, (si, w0, firsts) in zip(out, where):
            for w, pos in enumerate(firsts, w0):  # each word's tag is read at its first sub-token
                pred[si][w] = labels[int(np.argmax(logit[pos]))]
        return {k: v for k, v in M.entity_prf([s.tags for s in examples], pred).items()
                if k in ("precision", "recall", "f1")}


@dataclass(frozen=True, kw_only=True)
class ExtractiveQA(Task):
    """A span of the context: start and end logits per token, with a sliding window over long contexts."""

    kind = "qa"
    per_token = True

    def read_train(self, path):
        return read_squad(path)

    def head(self, hidden, labels, cfg):
        return TokenHead(hidden, 2, None)

    def items(self, tok, cfg, labels, examples):
        feats, _ = encode_qa(tok, examples, cfg, train=True)
        return [{"ids": f.ids, "start": f.start, "end": f.end} for f in feats]

    def loss(self, logits, batch, dev):
        start, end = logits.unbind(-1)  # (B, T) each
        ys = torch.tensor([b["start"] for b in batch], device=dev)
        ye = torch.tensor([b["end"] for b in batch], device=dev)
        return (F.cross_entropy(start, ys) + F.cross_entropy(end, ye)) / 2

    def evaluate(self, model, tok, cfg, labels, examples, lang, dev):
        feats, spans = encode_qa(tok, examples, cfg, train=False)
        out = predict(model, [f.ids for f in feats], tok.pad_id, cfg, dev)
        preds = qa_predictions(examples, feats, spans, out, cfg.max_answer_len)
        golds = {e.qid: [a for a, _ in e.answers] for e in examples}
        return M.qa_scores(preds, golds, lang if lang in M.MLQA_LANGS else None)


# ---------------------------------------------------------------------------------------------
# readers bound to a task


def read_glue(task: str | Task, path: PathLike) -> list[TextExample]:
    """A GLUE ``train.tsv`` / ``dev.tsv`` (or MNLI ``dev_matched.tsv``) with its task's column conventions."""
    t = get_task(task)
    return glue_examples(t.name, path, labels=t.labels, regression=isinstance(t, Regression))


def read_topics(task: str | Task, path: PathLike) -> list[TextExample]:
    """A single-sentence classification TSV with a header naming ``sentence`` and ``label`` (DDTP's
    ``<lang>/{train,dev,test}.tsv``; other columns such as ``id`` are ignored)."""
    t = get_task(task)
    return topic_examples(t.name, path, labels=t.labels)


@dataclass(frozen=True, kw_only=True)
class _XNLI(Classification):
    """MultiNLI (or XNLI-MT) to train; one XNLI file holds every language."""

    def read_eval(self, name, path):
        parts = read_xnli(path)
        return {name: next(iter(parts.values()))} if name is not None and len(parts) == 1 else parts


@dataclass(frozen=True, kw_only=True)
class _Glue(Task):
    """A GLUE task scored on English dev."""

    def read_eval(self, name, path):
        return {name or "en": self.read_train(path)}


@dataclass(frozen=True, kw_only=True)
class GlueClassification(_Glue, Classification):
    pass


@dataclass(frozen=True, kw_only=True)
class GlueRegression(_Glue, Regression):
    pass


@dataclass(frozen=True, kw_only=True)
class Topics(Classification):
    """Topic classification of one sentence per language directory (``<lang>/test.tsv``)."""

    def read_eval(self, name, path):
        return {name or Path(path).parent.name: self.read_train(path)}


def _glue(name: str, labels: tuple[str, ...] = ("0", "1"), metrics: tuple[str, ...] = ("accuracy",)) -> Task:
    return GlueClassification(name=name, labels=labels, metrics=metrics, reader=read_glue)


TASKS: dict[str, Task] = {
    "xnli": _XNLI(name="xnli", labels=NLI_LABELS, files=layout.xnli_files, reader=lambda t, p: read_nli_train(p)),
    "glue-mnli": _glue("glue-mnli", NLI_LABELS),
    "glue-qnli": _glue("glue-qnli", RTE_LABELS),
    "glue-rte": _glue("glue-rte", RTE_LABELS),
    "glue-sst-2": _glue("glue-sst-2"),
    "glue-wnli": _glue("glue-wnli"),
    # GLUE scores MRPC and QQP by F1 of the positive class and accuracy, CoLA by Matthews correlation
    "glue-mrpc": _glue("glue-mrpc", metrics=("f1", "accuracy")),
    "glue-qqp": _glue("glue-qqp", metrics=("f1", "accuracy")),
    "glue-cola": _glue("glue-cola", metrics=("mcc", "accuracy")),
    "glue-sts-b": GlueRegression(name="glue-sts-b", metrics=("pearson", "spearman"), reader=read_glue),
    "ner": Tagging(name="ner", metrics=("f1", "precision", "recall"), files=layout.ner_files),
    "mlqa": ExtractiveQA(name="mlqa", metrics=("f1", "exact_match"), files=layout.mlqa_files),
    # topic classification of Debian package descriptions (labels: archive sections), see democorpus.ddtp
    "ddtp": Topics(name="ddtp", labels=DDTP_LABELS, files=layout.topic_files, reader=read_topics),
}
SUITES = tuple(TASKS)
_ALIASES = {"glue-sst2": "glue-sst-2", "glue-stsb": "glue-sts-b", "glue-sts": "glue-sts-b", "sst-2": "glue-sst-2",
            "wikiann": "ner", "panx": "ner", "conll": "ner"}


def get_task(task: str | Task) -> Task:
    """The Task of a suite name (e.g. 'xnli', 'glue-sst-2', 'ner', 'mlqa'), or ``task`` itself."""
    if isinstance(task, Task):
        return task
    name = str(task).lower()
    name = _ALIASES.get(name, name)
    if name not in TASKS and f"glue-{name}" in TASKS:
        name = f"glue-{name}"
    if name not in TASKS:
        raise XlmrError(f"unknown downstream suite {task!r}; choose one of {', '.join(SUITES)}")
    return TASKS[name]


def read_evals(task: Task, evals: PathLike | Mapping[str, PathLike]) -> dict[str, list]:
    """{language or set name: examples}. One XNLI file holds every language; other files are one set each,
    named by the mapping key (or, for a single path, by the WikiANN prefix, else 'en' for GLUE, else the stem)."""
    items = evals.items() if isinstance(evals, Mapping) else [(None, evals)]
    out: dict[str, list] = {}
    for name, path in items:
        for k, v in task.read_eval(name, path).items():
            if k in out:
                raise XlmrError(f"evaluation set {k!r} given twice (last in {path})")
            out[k] = v
    return dict(sorted(out.items()))
