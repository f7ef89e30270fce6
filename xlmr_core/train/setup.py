"""What a training run is set up from: the data-parallel process group, the prepared data, the model, the
optimizer and the budget.

:func:`init_distributed` joins torchrun's process group (:class:`DistInfo`; ``_barrier``, ``_all_reduce`` and
``_host_sum`` are no-ops in one process); :func:`prepare` gets the cached tokenizer and token shards and the
sampling probabilities; :func:`check_config` reports every config error that shows before any of that is
built; :func:`build_model`, :func:`build_optimizer` and :func:`resolve_budget` turn the config into the
model, AdamW and the run's length in steps, :func:`lr_factor` into its learning-rate schedule. The trainer
(:mod:`xlmr_core.train.trainer`) re-exports all of these.
"""

from __future__ import annotations

import datetime
import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from xlmr_core.config import RunConfig
from xlmr_core.data import shards_for
from xlmr_core.data.corpus import (
    language_files,
    sampling_probs,
    select_languages,
    target_sampling_probs,
    validate_languages,
)
from xlmr_core.data.tokenizer import tokenizer_for
from xlmr_core.errors import XlmrError
from xlmr_core.model.encoder import XLMRForMaskedLM, model_config
from xlmr_core.train.optim import adamw, warmup_decay

# ---------------------------------------------------------------- distributed set-up


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the data-parallel job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    host_group: object = None
    """A gloo group for counts and flags the host holds: reducing them never waits for the device."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group described by torchrun's variables (RANK, WORLD_SIZE, MASTER_ADDR, …).

    Inside SLURM, the launcher exports these from SLURM's own variables first
    (``submitit.helpers.TorchDistributedEnvironment().export()``). gloo on CPU, NCCL on GPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        # device_id binds NCCL's communicator to this GPU at once (no guess from the rank, no lazy init)
        kwargs = dict(backend="nccl", device_id=device) if device.type == "cuda" else dict(backend="gloo")
        dist.init_process_group(rank=rank, world_size=world, timeout=datetime.timedelta(minutes=10), **kwargs)
    host_group = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else None
    return DistInfo(rank, world, local_rank, host_group)


def _barrier(d: DistInfo) -> None:
    if d.world_size > 1:
        dist.barrier()


def _all_reduce(x: torch.Tensor, d: DistInfo, op=None) -> torch.Tensor:
    if d.world_size > 1:
        dist.all_reduce(x, op=op or dist.ReduceOp.SUM)
    return x


def _host_sum(values: list[float], d: DistInfo) -> list[float]:
    """Sum host numbers over the processes through gloo (a CPU tensor): no device round trip."""
    if d.world_size == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, group=d.host_group)
    return t.tolist()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------- preparation


@dataclass
class Prepared:
    """What a run trains on: tokenizer, token shards, languages and their sampling probabilities."""

    tokenizer: object
    shards: object
    langs: list[str]
    eval_langs: list[str]
    probs: dict[str, float]


def prepare(cfg: RunConfig) -> Prepared:
    """Check the corpus, then get the cached tokenizer and token shards (built once per content key)."""
    d = cfg.data
    tok, shards, langs, eval_langs = _derived_data(cfg) if cfg.derive.on else _corpus_data(cfg)
    # n_i counts training tokens (∝ fairseq's 512-token blocks), after the held-out split
    counts = {lang: shards.meta[lang]["train_tokens"] for lang in langs}
    probs = (target_sampling_probs(counts, d.alpha, d.target_langs, d.target_share) if d.target_langs
             else sampling_probs(counts, d.alpha))
    return Prepared(tok, shards, langs, eval_langs, probs)


def _corpus_data(cfg: RunConfig) -> tuple:
    d = cfg.data
    if not d.corpus:
        raise XlmrError("data.corpus is not set: point it at a directory of <lang>.txt[.gz|.xz|.zst] files")
    langs = list(d.langs) or list(language_files(d.corpus))
    eval_langs = list(cfg.eval.langs) or langs
    tok_langs = list(d.tokenizer_langs) or langs
    # shards of the tokenizer's languages too, so runs that share a tokenizer share one shard entry
    all_langs = sorted(set(langs) | set(eval_langs) | set(tok_langs))
    stats = validate_languages(d.corpus, all_langs)  # every bad input reported before any work starts, once
    cache = d.cache_dir or None
    tok = tokenizer_for(d.corpus, sorted(tok_langs), d.vocab_size, alpha=d.tokenizer_alpha or d.alpha,
                        seed=d.tokenizer_seed, sample_lines=d.tokenizer_sample_lines, cache_root=cache, stats=stats)
    return tok, shards_for(tok, d.corpus, all_langs, cache_root=cache, validated=True), langs, eval_langs


def _derived_data(cfg: RunConfig) -> tuple:
    from xlmr_core.data import derived

    corpus_dir, tok, heldout, langs = derived.prepare(cfg)
    eval_langs = list(cfg.eval.langs) or langs
    shards = shards_for(tok, corpus_dir, sorted(set(langs) | set(eval_langs)), cache_root=cfg.data.cache_dir or None,
                        heldout=heldout)
    return tok, shards, langs, eval_langs


# ---------------------------------------------------------------- model, optimizer, schedule


def _model_config(cfg: RunConfig, vocab_size: int):
    mcfg = model_config(cfg.model.size, vocab_size, **cfg.model.overrides())
    if cfg.data.seq_len > mcfg.max_positions:
        raise XlmrError(f"data.seq_len={cfg.data.seq_len} exceeds the model's max_positions={mcfg.max_positions} "
                        f"(model.size={cfg.model.size}): give data.seq_len={mcfg.max_positions} (and data.batch_tokens "
                        "a multiple of it) or a larger model.size")
    return mcfg


def check_config(cfg: RunConfig) -> None:
    """Every config error that shows before any tokenizer or shard is built, all in one line: run_dir, the
    corpus and its languages, the model's shape and data.seq_len against its max_positions."""
    if not cfg.run_dir:
        raise XlmrError("run_dir is not set: give run_dir=PATH")
    d, errors = cfg.data, []
    try:
        if cfg.derive.on:
            from xlmr_core.data.derived import source_language

            source_language(cfg.derive.source)
            bad = [x for x in [*d.langs, *cfg.eval.langs, *d.target_langs] if x not in cfg.derive.codes()]
            if bad:
                raise XlmrError(f"{', '.join(bad)}: not among the derived languages {', '.join(cfg.derive.codes())}")
        elif not d.corpus:
            raise XlmrError("data.corpus is not set: point it at a directory of <lang>.txt[.gz|.xz|.zst] files")
        else:
            named = list(dict.fromkeys([*d.langs, *cfg.eval.langs, *d.tokenizer_langs, *d.target_langs]))
            select_languages(d.corpus, named or None)  # the directory, and a file for every language named
    except XlmrError as e:
        errors.append(str(e))
    try:
        _model_config(cfg, d.vocab_size + 2)  # the model's vocabulary: the pieces + <pad>, <mask>
    except XlmrError as e:
        errors.append(str(e))
    if errors:
        raise XlmrError("; ".join(errors))


def build_model(cfg: RunConfig, vocab_size: int):
    """The encoder for ``cfg.model`` with the tokenizer's vocabulary, initialised from ``cfg.seed``."""
    mcfg = _model_config(cfg, vocab_size)
    torch.manual_seed(cfg.seed)
    return XLMRForMaskedLM(mcfg)


def build_optimizer(model: torch.nn.Module, cfg: RunConfig) -> torch.optim.AdamW:
    """AdamW with ``cfg.optim``'s settings, fused where the device has the kernel."""
    o = cfg.optim
    return adamw(model, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay, fused=True)


@dataclass(frozen=True)
class Budget:
    """The run's length, resolved from steps, tokens or FLOPs."""

    total_steps: int
    warmup_steps: int
    tokens_per_step: int
    flops_per_step: float


def resolve_budget(cfg: RunConfig, model) -> Budget:
    """Turn the schedule's budget into steps (rounded up) and the warm-up into steps."""
    tokens_per_step = cfg.data.batch_tokens
    flops_per_step = float(model.train_flops(tokens_per_step, cfg.data.seq_len, cfg.data.mask_prob))
    s = cfg.schedule
    if s.steps:
        steps = s.steps
    elif s.tokens:
        steps = math.ceil(s.tokens / tokens_per_step)
    else:
        steps = math.ceil(s.flops / flops_per_step)
    warmup = s.warmup_steps if s.warmup_steps >= 0 else max(1, round(0.06 * steps))
    return Budget(steps, min(warmup, steps), tokens_per_step, flops_per_step)


def lr_factor(step: int, b: Budget, end_ratio: float) -> float:
    """Linear warm-up to 1, then linear (polynomial power 1) decay to ``end_ratio`` at the last step."""
    return warmup_decay(step, warmup=b.warmup_steps, total=b.total_steps, end_ratio=end_ratio)
