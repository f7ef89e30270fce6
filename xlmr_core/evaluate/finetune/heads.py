"""Task heads on ``XLMRForMaskedLM.encode`` (B, T, H), as fairseq / transformers RoBERTa, and prediction in
length-sorted batches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from xlmr_core.evaluate.finetune.config import FinetuneConfig
from xlmr_core.model.device import autocast, pad_rows


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


class TokenHead(nn.Module):
    """Per-token logits (transformers' RobertaForTokenClassification; QA's start/end with ``dropout=None``)."""

    def __init__(self, hidden: int, n_out: int, dropout: float | None):
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout is not None else nn.Identity()
        self.proj = nn.Linear(hidden, n_out)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.proj(self.dropout(h))  # (B, T, n_out)


class TaskModel(nn.Module):
    """The pre-trained encoder with one task head; forward returns the head's logits."""

    def __init__(self, encoder: nn.Module, head: nn.Module, per_token: bool):
        super().__init__()
        self.encoder, self.head, self.per_token = encoder, head, per_token
        std = getattr(encoder.config, "init_std", 0.02)
        for m in self.head.modules():  # BERT/fairseq init: N(0, 0.02) weights, zero biases
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=std)
                nn.init.zeros_(m.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.encoder.encode(input_ids, attention_mask=attention_mask)  # (B, T, H)
        return self.head(h, attention_mask)  # (B, n_out) or (B, T, n_out)


def batch_inputs(ids: Sequence[Sequence[int]], pad_id: int, dev) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows padded to the longest in the batch (B, T) and their attention mask, on ``dev``."""
    x = pad_rows(ids, pad_id)
    return x.to(dev), (x != pad_id).to(dev)


def precision(cfg: FinetuneConfig) -> str:
    """The autocast setting of ``cfg``: bf16 on CUDA when ``cfg.bf16``, else full precision."""
    return "auto" if cfg.bf16 else "fp32"


@torch.no_grad()
def predict(model: TaskModel, ids: list[list[int]], pad_id: int, cfg: FinetuneConfig, dev) -> list[np.ndarray]:
    """Head outputs per input (unpadded: (n_out,) per sentence, (T_i, n_out) per token), in input order."""
    model.eval()
    out: list[np.ndarray] = [None] * len(ids)  # type: ignore[list-item]
    order = np.argsort([len(x) for x in ids], kind="stable")  # length-sorted batches pad little
    for s in range(0, len(ids), cfg.eval_batch_size):
        idx = order[s:s + cfg.eval_batch_size]
        x, mask = batch_inputs([ids[i] for i in idx], pad_id, dev)
        with autocast(dev, precision(cfg)):
            logits = model(x, mask).float().cpu().numpy()
        for r, i in enumerate(idx):
            out[i] = logits[r, :len(ids[i])] if model.per_token else logits[r]
    return out
