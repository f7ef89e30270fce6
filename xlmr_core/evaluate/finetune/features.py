"""Featurisation: examples → token ids and targets, and QA spans back to answer text.

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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from xlmr_core.evaluate.finetune.config import FinetuneConfig
from xlmr_core.evaluate.finetune.readers import QAExample, TaggedSentence, TextExample


def _truncate_pair(a: list[int], b: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Longest-first truncation (transformers' default) of two id lists to ``budget`` tokens in total."""
    if len(a) + len(b) <= budget:
        return a, b
    short = min(len(a), len(b))
    keep_short = min(short, budget // 2)
    keep_long = budget - keep_short
    return (a[:keep_long], b[:keep_short]) if len(a) >= len(b) else (a[:keep_short], b[:keep_long])


def encode_text(tok, examples: Sequence[TextExample], max_len: int) -> list[list[int]]:
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


def word_ids(tok, words: Sequence[str]) -> list[list[int]]:
    """Sub-token ids of each word encoded alone (so each word starts with SentencePiece's '▁'); never empty."""
    return [ids or [tok.unk_id] for ids in tok.encode_batch(list(words))]


def encode_tagged(tok, sentences: Sequence[TaggedSentence], label_ids: Mapping[str, int], max_len: int
                   ) -> tuple[list[list[int]], list[list[int]], list[tuple[int, int, list[int]]]]:
    """Token classification inputs per chunk: ids, labels, (sentence, first word, first-token positions).

    Labels sit on the first sub-token of each word and are -100 on the others (they carry no loss).
    A sentence longer than max_len - 2 tokens is cut at word boundaries into several chunks.
    Gold tags unknown to ``label_ids`` (tags never seen in training) train nothing and are scored as gold.
    """
    flat_words = [w for s in sentences for w in s.words]
    flat_ids = word_ids(tok, flat_words)
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
class QAFeature:
    """One window of one question: input ids, where the context starts, the word of each context token."""

    example: int
    ids: list[int]
    ctx_start: int  # index in ids of the first context token
    tok_word: list[int]  # (n context tokens,) word index of each context token in this window
    start: int = 0  # training target positions in ids (0 = <s>: the answer is not in this window)
    end: int = 0


def encode_qa(tok, examples: Sequence[QAExample], cfg: FinetuneConfig, train: bool
               ) -> tuple[list[QAFeature], list[list[tuple[int, int]]]]:
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
        for wi, ids in enumerate(word_ids(tok, words) if words else []):
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
            f = QAFeature(ei, [tok.bos_id, *q, tok.eos_id, tok.eos_id, *ctx_ids[w0:w1], tok.eos_id],
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


def qa_predictions(examples: Sequence[QAExample], feats: Sequence[QAFeature], spans: Sequence[list],
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

