"""Where tensors live and in what precision: device choice, bf16 autocast, padding of token rows."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence

import torch

from xlmr_core.errors import XlmrError

# Dense bf16 tensor-core peaks in TFLOP/s (no sparsity), from NVIDIA's data sheets, matched against
# torch.cuda.get_device_name in this order (the first hit wins: "H100 NVL" before the SXM's "H100").
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    (r"GH200", 989.4),
    (r"H200 NVL", 835.5),
    (r"H200", 989.4),  # SXM
    (r"H100 NVL", 835.5),
    (r"H100 PCIe", 756.0),
    (r"H100", 989.4),  # SXM ("NVIDIA H100 80GB HBM3")
    (r"H800 PCIe", 756.0),
    (r"H800", 989.4),
    (r"B200", 2250.0),
    (r"A100", 312.0),  # SXM4 and PCIe, 40 and 80 GB alike
    (r"A800", 312.0),
    (r"L40S", 362.05),
    (r"L40\b", 181.05),
    (r"L4\b", 121.0),
    (r"A10\b", 125.0),  # not the A10G (AWS), whose clocks differ: unknown
    (r"A30\b", 165.0),
)


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


def peak_bf16_flops(device: torch.device, override_tflops: float = 0.0) -> float | None:
    """One device's dense bf16 peak in FLOP/s: ``override_tflops`` if > 0, else by the GPU's name; None if unknown."""
    if override_tflops > 0:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    return peak_for_name(torch.cuda.get_device_name(device))


def peak_for_name(name: str) -> float | None:
    """The table's dense bf16 peak in FLOP/s for a device name such as ``NVIDIA H100 PCIe``; None if not known."""
    return next((tf * 1e12 for pattern, tf in PEAK_BF16_TFLOPS if re.search(pattern, name)), None)


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
