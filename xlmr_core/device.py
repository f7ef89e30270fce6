"""Where tensors live and in what precision: device choice, bf16 autocast, padding of token rows."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch

from .errors import XlmrError


def pick_device(want: str, *, what: str = "device", local_rank: int | None = None) -> torch.device:
    """``auto`` (CUDA if visible, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; ``local_rank`` picks this process's GPU.

    ``what`` names the setting in the error a user sees (``precision.device``, ``finetune device``).
    """
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(want)
    except (RuntimeError, TypeError):
        raise XlmrError(f"{what}={want!r}: use cpu, cuda, cuda:N or auto") from None
    if dev.type not in ("cpu", "cuda"):
        raise XlmrError(f"{what}={want!r}: use cpu, cuda, cuda:N or auto")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise XlmrError(f"{what}={want} but no CUDA device is visible: use {what}=cpu")
        if local_rank is not None:
            torch.cuda.set_device(local_rank)
            dev = torch.device("cuda", local_rank)
    return dev


def model_device(model: torch.nn.Module, device=None) -> torch.device:
    """``device`` if given, else the device of the model's parameters."""
    if device is not None:
        return torch.device(device)
    return next(model.parameters()).device


def autocast(device: torch.device, dtype: str = "auto"):
    """bf16 autocast for ``dtype`` bf16, or auto on CUDA; full precision (a null context) otherwise."""
    if dtype == "bf16" or (dtype == "auto" and device.type == "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def pad_rows(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """Right-padded LongTensor (B, T_max) of token rows."""
    x = torch.full((len(rows), max(len(r) for r in rows)), value, dtype=torch.long)
    for i, r in enumerate(rows):
        x[i, :len(r)] = torch.as_tensor(r, dtype=torch.long)
    return x
