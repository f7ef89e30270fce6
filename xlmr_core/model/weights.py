"""From weights to a model: the one place an :class:`~xlmr_core.model.encoder.XLMRForMaskedLM` is built from a
state dict.

``rundir.load_run`` (our checkpoints: a run directory or one checkpoint file) goes through
:func:`model_from_checkpoint`, which checks the checkpoint against its ``model_config`` with one clear error;
``hf.load`` (transformers and fairseq checkpoints, their keys mapped to ours) through :func:`model_from_state`.
The model is built on the meta device (no random initialisation thrown away), holds the weights as float32
and is in eval mode, on the CPU.
"""

from __future__ import annotations

import re
from dataclasses import fields

import torch

from xlmr_core.errors import XlmrError
from xlmr_core.model.encoder import ModelConfig, XLMRForMaskedLM


def state_shapes(config: ModelConfig) -> dict[str, torch.Size]:
    """The shape of every weight of the model ``config`` describes (computed on the meta device)."""
    with torch.device("meta"):
        return {k: v.shape for k, v in XLMRForMaskedLM(config).state_dict().items()}


def model_from_state(config: ModelConfig, state: dict) -> XLMRForMaskedLM:
    """A model holding ``state`` (our key names, every weight present), in eval mode."""
    with torch.device("meta"):
        model = XLMRForMaskedLM(config)
    state = {k: v.float() if v.is_floating_point() and v.dtype != torch.float32 else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def model_from_checkpoint(ckpt: dict, source: object = "checkpoint") -> XLMRForMaskedLM:
    """The model of one of our checkpoints ``{"model": state_dict, "model_config": dict, ...}`` (the trainer's, or
    ``xlmr import-hf``'s), in eval mode; ``source`` names it in errors.

    Names that DDP and ``torch.compile`` wrap are unwrapped; an unknown ``model_config`` field, a missing or
    extra weight, or a shape the config does not imply is one XlmrError.
    """
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_config" not in ckpt:
        raise XlmrError(f"{source}: not an xlmr checkpoint (needs keys 'model' and 'model_config')")
    names = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(ckpt["model_config"]) - names)
    if unknown:
        raise XlmrError(f"{source}: unknown model_config field(s) {', '.join(unknown)}")
    config = ModelConfig(**ckpt["model_config"])
    # DDP and torch.compile wrap names; the weights are the same
    state = {re.sub(r"^(module\.|_orig_mod\.)+", "", k): v for k, v in ckpt["model"].items()}
    shapes = state_shapes(config)
    for key in sorted(set(state) | set(shapes)):
        if key not in shapes or key not in state or state[key].shape != shapes[key]:
            got = tuple(state[key].shape) if key in state else "missing"
            want = tuple(shapes[key]) if key in shapes else "not in the model"
            raise XlmrError(f"{source}: weight {key!r} is {got}, the model_config implies {want}")
    return model_from_state(config, state)
