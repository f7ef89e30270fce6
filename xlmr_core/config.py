"""The run configuration: a tree of frozen dataclasses, loaded from YAML/JSON and overridden with ``key.sub=value``.

Model shape (``model``) is kept apart from the run's data, batch, optimisation and schedule,
as in OLMo-core's model ladder: a sweep varies one and keeps the others. Defaults follow
RoBERTa / XLM-R pretraining (Liu et al. 2019, Table 9; Conneau et al. 2019, section 3).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from xlmr_core.errors import XlmrError


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """Which encoder to build: a named size from ``model.SIZES`` plus optional overrides."""

    size: str = "debug"
    """Named shape: debug, tiny, mini, small, base, base-w960, base-w1152, large."""
    hidden_size: int | None = None
    """Override of the hidden width (the capacity study widens base 768 → 960 → 1152)."""
    num_layers: int | None = None
    """Override of the number of Transformer layers."""
    num_heads: int | None = None
    """Override of the number of attention heads (must divide hidden_size)."""
    ffn_size: int | None = None
    """Override of the feed-forward width."""
    pre_ln: bool | None = None
    """Pre-LayerNorm layers (XLM-R XL/XXL) instead of the released post-LN."""
    dropout: float | None = None
    """Override of hidden dropout (0.1 in XLM-R)."""
    attention_dropout: float | None = None
    """Override of attention-probability dropout (0.1 in XLM-R)."""

    def overrides(self) -> dict:
        """The fields set explicitly, as keyword arguments for ``model.model_config``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "size" and getattr(self, f.name) is not None}


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Corpus, languages, tokenizer and batching."""

    corpus: str = ""
    """Corpus directory: one ``<lang>.txt[.gz|.xz|.zst]`` per language, a paragraph or document per line."""
    langs: tuple[str, ...] = ()
    """Training languages (empty: every language file in the corpus)."""
    vocab_size: int = 8000
    """SentencePiece pieces; the model's vocabulary is this + 2 (``<pad>``, ``<mask>``), 250000 → 250002."""
    alpha: float = 0.3
    """Language sampling exponent: q_i ∝ p_i^α (XLM-R uses 0.3), for batches and, by default, the tokenizer sample."""
    target_langs: tuple[str, ...] = ()
    """Languages whose share of the batches is fixed at ``target_share`` (empty: plain α-sampling over all)."""
    target_share: float = 1.0
    """Share of the batches drawn from ``target_langs`` (α-sampled among themselves); the rest is α-sampled
    over the other languages. With steps scaled by 1 / share, each target sees the tokens it would alone."""
    tokenizer_langs: tuple[str, ...] = ()
    """Languages the tokenizer is trained on (empty: the training languages). Runs over nested language
    sets that name the same superset here share one vocabulary and one set of token shards."""
    tokenizer_alpha: float = 0.0
    """Sampling exponent of the tokenizer's line sample (0: the same as ``alpha``)."""
    tokenizer_sample_lines: int = 1_000_000
    """Lines drawn (α-sampled) to train the tokenizer."""
    tokenizer_seed: int = 0
    """Seed of the tokenizer's line sample (part of the tokenizer cache key)."""
    seq_len: int = 512
    """Tokens per pretraining block, ``<s>`` included (XLM-R: 512)."""
    batch_tokens: int = 16384
    """Global batch size in tokens (a multiple of seq_len; XLM-R base: 8192 × 512)."""
    micro_batch_blocks: int = 0
    """Blocks per forward/backward on each process (0: the whole per-process batch, no accumulation)."""
    mask_prob: float = 0.15
    """Fraction of tokens selected for prediction (BERT/RoBERTa: 0.15)."""
    whole_word_mask: bool = False
    """Mask whole words (pieces that follow a ``▁`` piece go with it)."""
    cache_dir: str = ""
    """Root of the tokenizer/shard cache (empty: ``$XLMR_CACHE`` or ``~/.cache/xlmr``)."""
    loader_workers: int | None = None
    """Processes per training process that build batches ahead (0: one background thread). None: on a GPU up to 4
    from the cores the node has spare, on the CPU 0 (its cores do the training). Batches do not depend on it."""

    def __post_init__(self):
        if self.loader_workers is not None and self.loader_workers < 0:
            raise XlmrError(f"data.loader_workers={self.loader_workers} must be >= 0 (0: a background thread), "
                            "or null for the default")
        if self.vocab_size < 16:
            raise XlmrError(f"data.vocab_size={self.vocab_size} is too small: use at least a few hundred pieces")
        if self.alpha <= 0:
            raise XlmrError(f"data.alpha={self.alpha} must be > 0 (α=1 is proportional, small α near uniform)")
        if self.tokenizer_alpha < 0:
            raise XlmrError(f"data.tokenizer_alpha={self.tokenizer_alpha} must be > 0, or 0 for data.alpha")
        if self.seq_len < 8:
            raise XlmrError(f"data.seq_len={self.seq_len} must be at least 8")
        if self.batch_tokens % self.seq_len:
            raise XlmrError(f"data.batch_tokens={self.batch_tokens} is not a multiple of "
                            f"data.seq_len={self.seq_len}: use a multiple such as "
                            f"{max(1, round(self.batch_tokens / self.seq_len)) * self.seq_len}")
        if not 0 < self.mask_prob < 1:
            raise XlmrError(f"data.mask_prob={self.mask_prob} must be in (0, 1)")
        if not 0 < self.target_share <= 1:
            raise XlmrError(f"data.target_share={self.target_share} must be in (0, 1]")
        if self.target_share < 1 and not self.target_langs:
            raise XlmrError(f"data.target_share={self.target_share} needs data.target_langs")
        if self.micro_batch_blocks < 0:
            raise XlmrError(f"data.micro_batch_blocks={self.micro_batch_blocks} must be >= 0")

    @property
    def batch_blocks(self) -> int:
        """Global batch size in blocks."""
        return self.batch_tokens // self.seq_len


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    """AdamW with RoBERTa's settings."""

    lr: float = 6e-4
    """Peak learning rate (XLM-R base: 6e-4 for large batches; tiny models tolerate more)."""
    betas: tuple[float, float] = (0.9, 0.98)
    """Adam β1, β2 (RoBERTa uses β2 = 0.98 for stability at large batch)."""
    eps: float = 1e-6
    """Adam ε (RoBERTa)."""
    weight_decay: float = 0.01
    """Decoupled weight decay, applied to matrices and embeddings, not to biases and LayerNorm."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0: no clipping)."""

    def __post_init__(self):
        if self.lr <= 0:
            raise XlmrError(f"optim.lr={self.lr} must be > 0")
        if not all(0 <= b < 1 for b in self.betas) or len(self.betas) != 2:
            raise XlmrError(f"optim.betas={self.betas} must be two numbers in [0, 1)")
        if self.grad_clip < 0:
            raise XlmrError(f"optim.grad_clip={self.grad_clip} must be >= 0")


@dataclass(frozen=True, kw_only=True)
class ScheduleConfig:
    """The budget (exactly one of steps, tokens, FLOPs) and the learning-rate schedule."""

    steps: int = 0
    """Training steps (optimizer updates)."""
    tokens: int = 0
    """Budget in training tokens (converted to steps by the global batch)."""
    flops: float = 0.0
    """Budget in training FLOPs (forward + backward, head at masked tokens only)."""
    warmup_steps: int = -1
    """Linear warm-up steps (-1: 6 % of the run, as RoBERTa's 24K of 500K… rounded)."""
    end_lr_ratio: float = 0.0
    """Learning rate at the last step as a fraction of the peak (linear / polynomial power-1 decay)."""

    def __post_init__(self):
        given = [n for n in ("steps", "tokens", "flops") if getattr(self, n)]
        if len(given) != 1:
            raise XlmrError("give exactly one training budget: schedule.steps, schedule.tokens or "
                            f"schedule.flops (got {', '.join(given) or 'none'})")
        if min(self.steps, self.tokens, self.flops) < 0:
            raise XlmrError("schedule budgets must be positive")


@dataclass(frozen=True, kw_only=True)
class PrecisionConfig:
    """Numerics and speed options."""

    dtype: str = "auto"
    """``auto`` (bf16 autocast on GPU, fp32 on CPU), ``fp32`` or ``bf16``."""
    compile: bool = False
    """Wrap the model in ``torch.compile``."""
    activation_checkpointing: bool = False
    """Recompute each layer's activations in the backward pass (memory for time)."""
    device: str = "auto"
    """``auto`` (CUDA if present), ``cpu`` or ``cuda``."""
    peak_tflops: float = 0.0
    """Dense bf16 peak of one device, for MFU (0: from the table of known GPUs by name; none: MFU unknown)."""
    bf16_grad_allreduce: bool = False
    """Under DDP, all-reduce gradients in bf16 (half the traffic; the optimizer still sees fp32 gradients)."""

    def __post_init__(self):
        if self.dtype not in ("auto", "fp32", "bf16"):
            raise XlmrError(f"precision.dtype={self.dtype!r}: use auto, fp32 or bf16")
        if self.device not in ("auto", "cpu", "cuda"):
            raise XlmrError(f"precision.device={self.device!r}: use auto, cpu or cuda")
        if not self.peak_tflops >= 0:
            raise XlmrError(f"precision.peak_tflops={self.peak_tflops} must be >= 0 (0: from the device's name)")


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """Held-out masked-LM evaluation, per language, in bits per UTF-8 byte, with standard errors.

    Each language is scored on enough fixed held-out blocks for ``masked_tokens`` masked tokens (more where
    ``target_se`` needs them, at most ``max_masked``), or on all of its held-out text when it holds fewer; the
    sample depends on the text and the tokenizer only, so every run and checkpoint is scored on the same tokens
    (``heldout.scored_sample``).
    """

    interval: int = 0
    """Evaluate every this many steps (0: only at the end)."""
    langs: tuple[str, ...] = ()
    """Languages to evaluate (empty: the training languages)."""
    masked_tokens: int = 4000
    """Masked tokens to score per language at least (when the held-out text holds them)."""
    target_se: float = 0.01
    """Standard error in bits per byte to size the sample for, from the spread of the unigram baseline's
    per-token scores (0: ``masked_tokens`` alone)."""
    max_masked: int = 20000
    """At most this many masked tokens per language, whatever ``target_se`` asks (0: no cap)."""
    max_blocks: int = 0
    """At most this many held-out blocks per language (0: as many as the target needs)."""
    draws: int = 4
    """At most this many fixed mask draws per block: further draws of the same blocks are used only when the
    held-out text has too few blocks for the target."""
    seed: int = 0
    """Seed of the evaluation masks, the same for every run (not the run's seed): comparisons stay paired."""
    batch_blocks: int = 16
    """Blocks per forward pass during evaluation."""
    mask_prob: float = 0.15
    """Share of held-out tokens masked and scored, fixed apart from ``data.mask_prob`` so that runs trained
    with different mask rates are scored alike (a higher rate leaves less context and raises the loss)."""

    def __post_init__(self):
        if (self.interval < 0 or self.max_blocks < 0 or self.draws < 1 or self.batch_blocks < 1
                or self.masked_tokens < 1 or self.max_masked < 0):
            raise XlmrError("eval.interval, eval.max_blocks and eval.max_masked must be >= 0 and eval.draws, "
                            "eval.batch_blocks and eval.masked_tokens >= 1")
        if not self.target_se >= 0:
            raise XlmrError(f"eval.target_se={self.target_se} must be >= 0 (0: size by eval.masked_tokens only)")
        if not 0 < self.mask_prob < 1:
            raise XlmrError(f"eval.mask_prob={self.mask_prob} must be in (0, 1)")


@dataclass(frozen=True, kw_only=True)
class CheckpointConfig:
    """Checkpoints under ``run_dir/checkpoints``."""

    interval: int = 500
    """Save every this many steps (and always at the end)."""
    keep: int = 2
    """Keep the newest this many checkpoints (at least 2, so a corrupt newest one has a fallback)."""

    def __post_init__(self):
        if self.interval < 1:
            raise XlmrError(f"checkpoint.interval={self.interval} must be >= 1")
        if self.keep < 2:
            raise XlmrError(f"checkpoint.keep={self.keep} must be >= 2 (the fallback for a corrupt checkpoint)")


@dataclass(frozen=True, kw_only=True)
class LogConfig:
    """Live views of the training curves besides metrics.jsonl (``tracking``); none changes the result."""

    tensorboard: bool = True
    """TensorBoard event files in the run directory, when the tensorboard package is installed."""
    wandb: str = "off"
    """Weights & Biases: ``off``, ``offline`` (files under run_dir/wandb; ``wandb sync`` later) or ``online``."""
    wandb_project: str = "xlmr-scaling"
    """The W&B project runs are logged to."""

    def __post_init__(self):
        if self.wandb not in ("off", "offline", "online"):
            raise XlmrError(f"log.wandb={self.wandb!r}: use off, offline or online")


MAX_DERIVED = 16
"""At most 16 derived languages (``xlmr_core.data.derived``: language k lives in Unicode plane k)."""
ORDERS = ("none", "inverted", "permuted")


@dataclass(frozen=True, kw_only=True)
class DeriveConfig:
    """``derive:`` — train on K languages derived from one source language (off while ``k`` is 0)."""

    k: int = 0
    """Number of derived languages (1-16; 0: off). Codes ``<prefix>00`` … ; language 0 is the source itself."""
    source: str = ""
    """The source language file, ``<lang>.txt[.gz|.xz|.zst]``, one paragraph or document per line."""
    share: float = 0.0
    """Fraction of the source's piece types that keep their id in every language (0: disjoint, 1: the same)."""
    order: str = "none"
    """Word order of languages k ≥ 1: ``none``, ``inverted`` (reversed within sentences) or ``permuted``."""
    parallel: bool = False
    """Every language trains on the same documents (slice 0) instead of a disjoint slice of its own."""
    slices: int = 16
    """The source's training documents are cut into this many equal slices, whatever ``k``: runs with
    different K see the same slices and the same held-out documents."""
    heldout_lines: int = 500
    """Source documents held out, the same in every language (evaluation, retrieval)."""
    seed: int = 0
    """Seed of the slices, the shared piece types and the permutations."""
    prefix: str = "x"
    """Language codes are ``<prefix><k:02d>``."""

    def __post_init__(self):
        if self.source.startswith("~"):
            object.__setattr__(self, "source", os.path.expanduser(self.source))
        if not 0 <= self.k <= MAX_DERIVED:
            raise XlmrError(f"derive.k={self.k} is out of range: give 1 to {MAX_DERIVED} derived languages (0: off)")
        if not 1 <= self.slices <= MAX_DERIVED:
            raise XlmrError(f"derive.slices={self.slices} must be in 1..{MAX_DERIVED}")
        if self.k > self.slices and not self.parallel:
            raise XlmrError(f"derive.k={self.k} needs as many slices of the source: derive.slices={self.slices}; "
                            f"set derive.slices={self.k} (or derive.parallel=true)")
        if not 0.0 <= self.share <= 1.0:
            raise XlmrError(f"derive.share={self.share} is out of range: give a fraction in [0, 1] "
                            "(0: disjoint vocabularies, 1: the same language)")
        if self.order not in ORDERS:
            raise XlmrError(f"derive.order={self.order!r}: choose one of {', '.join(ORDERS)}")
        if self.heldout_lines < 2:
            raise XlmrError(f"derive.heldout_lines={self.heldout_lines} must be at least 2")
        if not re.fullmatch(r"[a-z]{1,8}", self.prefix):
            raise XlmrError(f"derive.prefix={self.prefix!r}: give 1-8 lowercase letters")

    @property
    def on(self) -> bool:
        return self.k > 0

    def codes(self, k: int | None = None) -> list[str]:
        """Codes of the first ``k`` (default: all ``self.k``) derived languages."""
        return [f"{self.prefix}{i:02d}" for i in range(self.k if k is None else k)]



@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """One training run: everything that determines its result, and where it goes."""

    run_dir: str = ""
    """Directory of the run: config.json, metrics.jsonl, checkpoints/, final.json."""
    name: str = ""
    """A label for tables and figures (default: the run directory's name)."""
    seed: int = 0
    """Seed of the initialisation, the batches and dropout."""
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(steps=100))
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    derive: DeriveConfig = field(default_factory=DeriveConfig)
    """Derived languages from one source (``xlmr_core.data.derived``); off while ``derive.k`` is 0."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log_interval: int = 10
    """Append to metrics.jsonl every this many steps."""
    log: LogConfig = field(default_factory=LogConfig)
    tags: tuple[str, ...] = ()
    """Free-form labels (e.g. the sweep and its point), copied into final.json."""

    def __post_init__(self):
        if self.log_interval < 1:
            raise XlmrError(f"log_interval={self.log_interval} must be >= 1")


# ---------------------------------------------------------------- (de)serialisation


def to_dict(cfg) -> dict:
    """A plain JSON-serialisable dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _convert(value, tp, where: str):
    """Convert a YAML/JSON value to the annotated type ``tp`` (nested dataclasses included)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise XlmrError(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, args[0], where)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise XlmrError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        item = args[0] if args else str
        return tuple(_convert(v, item, where) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise XlmrError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, str):  # items of a comma-separated list arrive as strings
            try:
                value = float(value) if "." in value or "e" in value.lower() else int(value)
            except ValueError:
                raise XlmrError(f"{where}: expected an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise XlmrError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                return float(value)
            except (TypeError, ValueError):
                raise XlmrError(f"{where}: expected a number, got {value!r}") from None
        return float(value)
    if tp is str:
        return str(value)
    return value


def from_dict(cls, data: dict, where: str = ""):
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys with the list of valid ones."""
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise XlmrError(f"unknown config key {key!r}; valid keys{' of ' + where if where else ''}: "
                        f"{', '.join(names)}")
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


_BUDGETS = ("steps", "tokens", "flops")


class _Changes(dict):
    """Overrides of one config section, by field name: raw values, or ``_Changes`` of a sub-section."""


def _changes_tree(cls, items: list[tuple[str, object]]) -> _Changes:
    """Group ``(a.b.c, value)`` pairs by section, checking every key against ``cls``; a later value wins."""
    tree = _Changes()
    for dotted, value in items:
        parts = dotted.split(".")
        node, tp = tree, cls
        for i, part in enumerate(parts):
            full, where = ".".join(parts[:i + 1]), ".".join(parts[:i])
            names = [f.name for f in dataclasses.fields(tp)]
            if part not in names:
                raise XlmrError(f"unknown config key {full!r}; valid keys{' of ' + where if where else ''}: "
                                f"{', '.join(names)}")
            hint = _hints(tp)[part]
            last = i == len(parts) - 1
            if last and not (dataclasses.is_dataclass(hint) and isinstance(value, dict)):
                node[part] = value
                break
            if not dataclasses.is_dataclass(hint):
                raise XlmrError(f"config key {full!r} has no sub-keys (cannot set {dotted!r})")
            sub = node.get(part)
            if sub is not None and not isinstance(sub, _Changes):
                raise XlmrError(f"overrides set both {full!r} and {dotted!r}: give one or the other")
            node = node.setdefault(part, _Changes())
            tp = hint
            if last:  # a mapping for a whole section (model={size: tiny}): its keys, one by one
                node.update(_changes_tree(tp, [(k, v) for k, v in value.items()]))
    return tree


def _parse_overrides(cls, overrides: list[str] | tuple[str, ...]) -> _Changes:
    """``key.sub=value`` strings as a tree of changes of ``cls``; values are parsed as YAML scalars/lists."""
    items = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise XlmrError(f"override {item!r} is not of the form key.sub=value")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        items.append((key.strip(), value))
    return _changes_tree(cls, items)


def _replace(cfg, changes: _Changes, prefix: str = ""):
    """``cfg`` with every change applied by ``dataclasses.replace``: each section is built, and checked, once."""
    hints = _hints(type(cfg))
    kwargs = {}
    for name, value in changes.items():
        if isinstance(value, _Changes):
            kwargs[name] = _replace(getattr(cfg, name), value, f"{prefix}{name}.")
        else:
            kwargs[name] = _convert(value, hints[name], prefix + name)
    if isinstance(cfg, ScheduleConfig) and set(changes) & set(_BUDGETS):
        # a budget given here replaces the one ``cfg`` had
        kwargs.update({b: type(getattr(cfg, b))(0) for b in _BUDGETS if b not in changes})
    return dataclasses.replace(cfg, **kwargs)


def _merge(base: dict, over: dict, cls) -> dict:
    """The mapping ``over`` laid over ``base`` (both nested by the sections of ``cls``), not yet checked."""
    out = dict(base)
    if cls is ScheduleConfig and set(over) & set(_BUDGETS):
        # a budget given in the file replaces the default one, and one on the command line the file's
        out = {k: v for k, v in out.items() if k not in _BUDGETS or k in over}
    hints = _hints(cls)
    for name, value in over.items():
        hint = hints.get(name)  # an unknown name is reported by from_dict
        if isinstance(value, dict) and isinstance(out.get(name), dict) and dataclasses.is_dataclass(hint):
            out[name] = _merge(out[name], value, hint)
        else:
            out[name] = value
    return out


def apply_override(cfg, dotted: str, value):
    """Return ``cfg`` with the field at ``a.b.c`` replaced (via ``dataclasses.replace``)."""
    return _replace(cfg, _changes_tree(type(cfg), [(dotted, value)]))


def apply_overrides(cfg, overrides: list[str] | tuple[str, ...]):
    """Apply ``key.sub=value`` strings as a whole (a later one wins), then check the result once.

    Coupled values can change together (``data.seq_len=1024 data.batch_tokens=2048``): no section is
    checked with some of the overrides applied and others not.
    """
    changes = _parse_overrides(type(cfg), overrides)
    return _replace(cfg, changes) if changes else cfg


def _yaml_error(path: Path, text: str, e: yaml.YAMLError) -> str:
    """One line for a YAML syntax error: file, line, column and the parser's reason."""
    mark, reason = getattr(e, "problem_mark", None), getattr(e, "problem", None)
    if isinstance(e, yaml.reader.ReaderError):  # a character YAML does not allow (NUL, other controls)
        pos = e.position
        line, column = text.count("\n", 0, pos), pos - (text.rfind("\n", 0, pos) + 1)
        code = e.character if isinstance(e.character, int) else ord(e.character)
        reason = f"character U+{code:04X} is not allowed in YAML"
    elif mark is not None:
        line, column = mark.line, mark.column
    else:
        return f"{path}: not valid YAML/JSON: {' '.join(str(e).split())}"
    msg = f"{path}:{line + 1}:{column + 1}: not valid YAML/JSON: {' '.join(str(reason or e).split())}"
    context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context:
        msg += f" ({' '.join(context.split())}" + (f" that starts at {cmark.line + 1}:{cmark.column + 1}"
                                                    if cmark is not None else "") + ")"
    return msg + "; fix the syntax there"


def read_mapping(path: str | Path, what: str = "config file") -> dict:
    """The mapping held by a YAML or JSON file; every problem with the file is one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise XlmrError(f"{what} {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise XlmrError(f"{what} {path} is not UTF-8 ({e.reason} at byte {e.start}): save it as UTF-8") from None
    except OSError as e:
        raise XlmrError(f"cannot read {what} {path}: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise XlmrError(f"{what} {_yaml_error(path, text, e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise XlmrError(f"{what} {path} must hold a mapping of keys, not a {type(data).__name__}")
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a RunConfig from YAML or JSON (``path`` may be None for defaults) with overrides on top.

    The defaults, the file's values and then the overrides are laid over each other as a whole and the
    result is checked once, so no check sees a mix of the user's values and values they replaced.
    """
    data = _merge(to_dict(RunConfig()), read_mapping(path) if path is not None else {}, RunConfig)
    return from_dict(RunConfig, _merge(data, _parse_overrides(RunConfig, overrides), RunConfig))
