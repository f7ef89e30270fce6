"""Downstream metrics as each benchmark defines them, in plain Python, numpy and scipy.stats.

- classification: accuracy, binary and macro F1, Matthews correlation (CoLA);
- regression: Pearson and Spearman correlation (STS-B; Spearman with average ranks for ties);
- tagging: entity-level precision / recall / F1 with seqeval's default (lenient, conlleval-like)
  chunking for IOB1, IOB2 and IOBES tags;
- extractive QA: SQuAD v1.1 F1 / exact match, and MLQA's per-language answer normalisation
  (facebookresearch/MLQA ``mlqa_evaluation_v1.py``).

All scores are fractions (accuracy 0.83, not 83.0); the official scripts print percentages.
"""

from __future__ import annotations

import functools
import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Sequence

import numpy as np
import scipy.stats

from xlmr_core.errors import XlmrError

# ---------------------------------------------------------------------------------------------
# classification and regression


def _check_lengths(a: Sequence, b: Sequence, what: str) -> None:
    if len(a) != len(b):
        raise XlmrError(f"{what}: {len(a)} predictions but {len(b)} references; pass one prediction each")
    if len(a) == 0:
        raise XlmrError(f"{what}: no examples to score")


def accuracy(preds: Sequence, labels: Sequence) -> float:
    """Fraction of predictions equal to their label."""
    _check_lengths(preds, labels, "accuracy")
    return float(np.mean([p == y for p, y in zip(preds, labels)]))


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts; 0 where a denominator is 0 (as sklearn/seqeval with a warning)."""
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def binary_f1(preds: Sequence, labels: Sequence, positive=1) -> float:
    """F1 of the positive class (GLUE MRPC / QQP: positive = 1, 'paraphrase' / 'duplicate')."""
    _check_lengths(preds, labels, "binary_f1")
    tp = sum(p == positive and y == positive for p, y in zip(preds, labels))
    n_pred = sum(p == positive for p in preds)
    n_gold = sum(y == positive for y in labels)
    return _prf(tp, n_pred, n_gold)[2]


def macro_f1(preds: Sequence, labels: Sequence) -> float:
    """Unweighted mean of per-class F1 over the classes present in labels or predictions."""
    _check_lengths(preds, labels, "macro_f1")
    classes = sorted(set(labels) | set(preds), key=str)
    return float(np.mean([binary_f1(preds, labels, positive=c) for c in classes]))


def matthews_corr(preds: Sequence, labels: Sequence) -> float:
    """Matthews correlation coefficient (multi-class form, Gorodkin 2004; binary for CoLA); 0 if undefined."""
    _check_lengths(preds, labels, "matthews_corr")
    classes = sorted(set(labels) | set(preds), key=str)
    index = {c: i for i, c in enumerate(classes)}
    C = np.zeros((len(classes), len(classes)), dtype=np.float64)  # C[true, pred]
    for p, y in zip(preds, labels):
        C[index[y], index[p]] += 1
    t, p = C.sum(axis=1), C.sum(axis=0)  # true / predicted count per class
    n, correct = C.sum(), np.trace(C)
    cov_yp = correct * n - t @ p
    cov_pp = n * n - p @ p
    cov_yy = n * n - t @ t
    if cov_pp == 0 or cov_yy == 0:
        return 0.0
    return float(cov_yp / np.sqrt(cov_pp * cov_yy))


def _as_float_array(x: Sequence, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise XlmrError(f"{what}: values must be finite numbers")
    return a


def _correlation(kind: str, x: Sequence[float], y: Sequence[float]) -> float:
    _check_lengths(x, y, kind)
    a, b = _as_float_array(x, kind), _as_float_array(y, kind)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0  # undefined for a constant side: 0, as GLUE's scripts report it (scipy gives NaN and warns)
    test = scipy.stats.pearsonr if kind == "pearson" else scipy.stats.spearmanr
    return float(test(a, b)[0])


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation (``scipy.stats.pearsonr``); 0 when either side is constant (undefined)."""
    return _correlation("pearson", x, y)


def rankdata(x: Sequence[float]) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (``scipy.stats.rankdata``, method 'average')."""
    return scipy.stats.rankdata(_as_float_array(x, "rankdata"), method="average").astype(np.float64)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation with average ranks for ties (``scipy.stats.spearmanr``); 0 when undefined."""
    return _correlation("spearman", x, y)


# ---------------------------------------------------------------------------------------------
# entity-level F1 (seqeval default mode)
#
# Chunks follow seqeval.metrics.sequence_labeling.get_entities: a chunk ends before a B/S tag, after
# an E/S tag, at O, or where the type changes; a chunk starts at B/S, at I/E after O/E/S, or where
# the type changes. So an I- after O (IOB1, or a tagger's mistake) starts an entity, and IOB1, IOB2
# and IOBES tags all decode with the same rules.


def _split_tag(tag: str) -> tuple[str, str]:
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', '_'); a bare 'B' -> ('B', '_') as seqeval."""
    if tag in ("O", ""):
        return "O", "_"
    prefix, _, type_ = tag.partition("-")
    if prefix not in ("B", "I", "E", "S") or len(prefix) != 1:
        raise XlmrError(f"entity tag {tag!r} is not O or B-/I-/E-/S-TYPE (IOB1, IOB2 or IOBES)")
    return prefix, type_ or "_"


def _chunk_ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag != "O" and prev_type != type_


def _chunk_starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if tag in ("I", "E") and prev_tag in ("O", "E", "S"):
        return True
    return tag != "O" and prev_type != type_


def get_entities(tags: Sequence[str] | Sequence[Sequence[str]]) -> list[tuple[str, int, int]]:
    """Entity chunks (type, first, last) (inclusive indices) from one tag sequence or a list of them.

    A list of sentences is joined with an 'O' between them, as seqeval does, so indices run over
    the concatenation and no entity crosses a sentence boundary.
    """
    if len(tags) and not isinstance(tags[0], str):
        flat: list[str] = []
        for sent in tags:
            flat.extend(sent)
            flat.append("O")
        tags = flat
    chunks = []
    prev_tag, prev_type, begin = "O", "_", 0
    for i, tag in enumerate([*tags, "O"]):  # the sentinel closes an entity at the end
        t, ty = _split_tag(tag)
        if _chunk_ends(prev_tag, t, prev_type, ty):
            chunks.append((prev_type, begin, i - 1))
        if _chunk_starts(prev_tag, t, prev_type, ty):
            begin = i
        prev_tag, prev_type = t, ty
    return chunks


def entity_prf(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro precision / recall / F1 over exact entity matches (type and span), seqeval default mode."""
    if len(gold) != len(pred):
        raise XlmrError(f"entity F1: {len(pred)} predicted sentences but {len(gold)} gold sentences")
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise XlmrError(f"entity F1: sentence {i} has {len(g)} gold tags but {len(p)} predicted tags")
    true_set, pred_set = set(get_entities(gold)), set(get_entities(pred))
    p, r, f = _prf(len(true_set & pred_set), len(pred_set), len(true_set))
    return {"precision": p, "recall": r, "f1": f, "n_gold": len(true_set), "n_pred": len(pred_set)}


def entity_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """Micro entity-level F1 (seqeval ``f1_score`` default mode)."""
    return entity_prf(gold, pred)["f1"]


# ---------------------------------------------------------------------------------------------
# extractive QA: SQuAD v1.1 and MLQA



@functools.cache
def mlqa_punct() -> frozenset[str]:
    """MLQA's punctuation: every Unicode character of category P* plus ASCII punctuation (built once)."""
    uni = (chr(i) for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)).startswith("P"))
    return frozenset(uni) | frozenset(string.punctuation)


_SQUAD_PUNCT = frozenset(string.punctuation)

# article patterns of mlqa_evaluation_v1.py (re's \b is Unicode-aware); hi and zh have none
_MLQA_ARTICLES = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    # the reference pattern '\sال^|ال' reduces to: every 'ال' (the definite prefix), anywhere
    "ar": re.compile("ال"),
    "hi": None,
    "zh": None,
}
MLQA_LANGS = tuple(sorted(_MLQA_ARTICLES))
_CJK = re.compile(r"[\u4e00-\u9fa5]")  # the range mlqa_evaluation_v1.py segments into characters


def mixed_segmentation(text: str) -> list[str]:
    """MLQA's zh tokenisation: each CJK ideograph and punctuation mark alone, other runs split on spaces."""
    out, run, punct = [], [], mlqa_punct()
    for ch in text:
        if _CJK.match(ch) or ch in punct:
            out.extend("".join(run).split())
            run = []
            out.append(ch)
        else:
            run.append(ch)
    out.extend("".join(run).split())
    return out


def normalize_answer(s: str, lang: str | None = None) -> str:
    """Lowercase, drop punctuation and articles, fix whitespace: SQuAD v1.1 (lang None) or MLQA's rules for lang."""
    s = s.lower()
    if lang is None:  # SQuAD v1.1 evaluate-v1.1.py
        s = "".join(ch for ch in s if ch not in _SQUAD_PUNCT)
        s = re.sub(r"\b(a|an|the)\b", " ", s)
        return " ".join(s.split())
    if lang not in _MLQA_ARTICLES:
        raise XlmrError(
            f"MLQA answer normalisation has no rules for language {lang!r} (it has {', '.join(MLQA_LANGS)}); "
            "score with lang=None for SQuAD v1.1 normalisation"
        )
    punct = mlqa_punct()
    s = "".join(ch for ch in s if ch not in punct)
    if _MLQA_ARTICLES[lang] is not None:
        s = _MLQA_ARTICLES[lang].sub(" ", s)
    tokens = mixed_segmentation(s) if lang == "zh" else s.split()
    return " ".join(t for t in tokens if t.strip())


def qa_f1(prediction: str, gold: str, lang: str | None = None) -> float:
    """Bag-of-tokens F1 between normalised answers (0 when nothing is shared, also for two empty answers)."""
    p_toks = normalize_answer(prediction, lang).split()
    g_toks = normalize_answer(gold, lang).split()
    same = sum((Counter(p_toks) & Counter(g_toks)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p_toks), same / len(g_toks)
    return 2 * precision * recall / (precision + recall)


def qa_exact(prediction: str, gold: str, lang: str | None = None) -> float:
    """1.0 if the normalised answers are identical."""
    return float(normalize_answer(prediction, lang) == normalize_answer(gold, lang))


def qa_scores(predictions: dict[str, str], golds: dict[str, Sequence[str]], lang: str | None = None
              ) -> dict[str, float]:
    """Mean F1 and exact match over questions, each the max over its gold answers; unanswered questions score 0."""
    if not golds:
        raise XlmrError("QA scoring: no gold questions")
    f1 = em = 0.0
    for qid, answers in golds.items():
        if not answers:
            raise XlmrError(f"QA scoring: question {qid!r} has no gold answer")
        if qid not in predictions:
            continue
        pred = predictions[qid]
        f1 += max(qa_f1(pred, a, lang) for a in answers)
        em += max(qa_exact(pred, a, lang) for a in answers)
    return {"f1": f1 / len(golds), "exact_match": em / len(golds)}
