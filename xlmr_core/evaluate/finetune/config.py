"""The settings of one fine-tuning experiment."""

from __future__ import annotations

import math
from dataclasses import dataclass

from xlmr_core.errors import XlmrError


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
