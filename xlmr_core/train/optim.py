"""AdamW with RoBERTa's parameter groups and the linear warm-up / linear decay schedule, for pretraining and
fine-tuning alike."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def adamw(model: torch.nn.Module, *, lr: float, betas: Sequence[float], eps: float, weight_decay: float,
          fused: bool = False) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases and LayerNorm weights (1-D parameters).

    ``fused``: the one-launch kernel where this torch has it for the parameters' device, else the default.
    """
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    kwargs = dict(lr=lr, betas=tuple(betas), eps=eps)
    if fused:
        try:  # the fused kernel exists for CUDA and, in recent torch, CPU
            return torch.optim.AdamW(groups, fused=True, **kwargs)
        except (RuntimeError, TypeError, ValueError):
            pass
    return torch.optim.AdamW(groups, **kwargs)


def warmup_decay(step: int, *, warmup: int, total: int, end_ratio: float = 0.0, warmup_from_zero: bool = False
                 ) -> float:
    """Linear warm-up to 1, then linear decay to ``end_ratio`` at step ``total``.

    Pretraining (fairseq's polynomial_decay, power 1) warms up as (step + 1) / warmup; fine-tuning (BERT /
    RoBERTa, ``warmup_from_zero``) as (step + 1) / (warmup + 1) and decays as (total - step) / (total - warmup),
    clipped at 0.
    """
    span = max(1, total - warmup)
    if warmup_from_zero:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / span)
    if step < warmup:
        return (step + 1) / warmup
    frac = min(1.0, (step - warmup) / span)
    return 1.0 - (1.0 - end_ratio) * frac


def linear_schedule(optimizer: torch.optim.Optimizer, **kwargs) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR of ``warmup_decay(step, **kwargs)``."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_decay(s, **kwargs))
