"""The paper's scaling sweeps as lists of run configs, at three scales: ``demo``, ``gpu`` and ``paper``.

Each sweep is a function ``(scale, seeds, root, corpus=None) -> list[RunConfig]``; every run config carries
``tags`` of the form ``key=value`` (sweep name and the point's values) that ``results.load`` turns into
columns, and its run directory is ``<root>/<sweep>/<run name>``, the name made of the point and the seed.

Scales:

- ``demo``: the ~45-language demo corpus (``democorpus.ensure_demo_corpus``), tiny models, seconds per run
  on a 2-core CPU. Its vocabularies are small (1K–8K pieces): a few MB of text cannot fill 32K+ pieces.
- ``gpu``: the large demo corpus profile (or ``corpus``), many small runs sized to its data (no language beyond
  4 epochs), about an hour for three seeds of the capacity sweep on one GPU.
- ``paper``: CC-100 in the corpus layout (``corpus`` required to run), the paper's language sets, base and
  large models with 150K/250K vocabularies, a cluster.

The paper's training budgets for its ablations are not all stated; the ones here are ours (``PRESETS``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import CheckpointConfig, DataConfig, EvalConfig, ModelSpec, OptimConfig, RunConfig, ScheduleConfig
from .errors import XlmrError

# ---------------------------------------------------------------- the paper's languages
# Conneau et al. 2019 (arXiv 1911.02116). Codes are CC-100 file names (zh-Hans/zh-Hant, *_rom romanised).

XNLI_LANGS: tuple[str, ...] = ("en", "fr", "es", "de", "el", "bg", "ru", "tr", "ar", "vi", "th", "zh", "hi",
                               "sw", "ur")
"""The 15 XNLI languages (Conneau et al. 2018), in XNLI's order (zh is Simplified Chinese)."""

# Table 6: the 100 languages of CC-100 / XLM-R.
CC100_LANGS: tuple[str, ...] = (
    "af", "am", "ar", "as", "az", "be", "bg", "bn", "bn_rom", "br", "bs", "ca", "cs", "cy", "da", "de", "el",
    "en", "eo", "es", "et", "eu", "fa", "fi", "fr", "fy", "ga", "gd", "gl", "gu", "ha", "he", "hi", "hi_rom",
    "hr", "hu", "hy", "id", "is", "it", "ja", "jv", "ka", "kk", "km", "kn", "ko", "ku", "ky", "la", "lo", "lt",
    "lv", "mg", "mk", "ml", "mn", "mr", "ms", "my", "my_zaw", "ne", "nl", "no", "om", "or", "pa", "pl", "ps",
    "pt", "ro", "ru", "sa", "sd", "si", "sk", "sl", "so", "sq", "sr", "su", "sv", "sw", "ta", "ta_rom", "te",
    "te_rom", "th", "tl", "tr", "ug", "uk", "ur", "ur_rom", "uz", "vi", "xh", "yi", "zh-Hans", "zh-Hant")


def _cc100(codes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple("zh-Hans" if c == "zh" else c for c in codes)


# Figure 2's nested sets. XLM-7 and XLM-15 are stated in §5; the paper does not enumerate XLM-30 and XLM-60,
# so they are chosen here: each adds a mix of high-resource (it, ja, ko, …) and low-resource (ne, my, …)
# languages of CC-100, and every set contains the smaller ones.
_ADD_30 = ("it", "pt", "nl", "pl", "ja", "ko", "id", "fa", "uk", "he", "ro", "ta", "ka", "ne", "my")
_ADD_60 = ("sv", "da", "no", "fi", "hu", "cs", "sk", "hr", "sr", "sl", "lt", "lv", "et", "ca", "ms", "bn",
           "ml", "te", "kn", "mr", "gu", "pa", "si", "kk", "az", "hy", "mn", "am", "ha", "so")
PAPER_LANG_SETS: dict[int, tuple[str, ...]] = {
    7: _cc100(("en", "fr", "de", "ru", "zh", "sw", "ur")),
    15: _cc100(XNLI_LANGS),
    30: _cc100(XNLI_LANGS) + _ADD_30,
    60: _cc100(XNLI_LANGS) + _ADD_30 + _ADD_60,
    100: CC100_LANGS,
}
"""XLM-7 ⊂ XLM-15 ⊂ XLM-30 ⊂ XLM-60 ⊂ XLM-100 (Figure 2), as CC-100 file names."""

PAPER_HIGH: tuple[str, ...] = ("en", "fr", "de", "ru", "zh-Hans")
"""High-resource languages of XLM-7 (the paper's Figure 2 'high' group)."""
PAPER_LOW: tuple[str, ...] = ("sw", "ur")
"""Low-resource languages of XLM-7 (Figure 2's 'low' group: Swahili and Urdu)."""


# ---------------------------------------------------------------- scale presets


@dataclass(frozen=True, kw_only=True)
class Preset:
    """What a scale fixes for every run of a sweep: data shape, budget, optimiser, evaluation, checkpoints."""

    vocab_size: int
    """SentencePiece pieces (the capacity and α sweeps keep this fixed)."""
    seq_len: int
    """Tokens per block."""
    batch_tokens: int
    """Global batch in tokens."""
    steps: int
    """Optimizer steps (fixed across a sweep: same steps × batch = same tokens for every run)."""
    lr: float
    """Peak learning rate."""
    mask_prob: float = 0.15
    """Training mask rate (evaluation always masks 15 %)."""
    lr_width_exponent: float = 0.0
    """Capacity sweep: the learning rate of width h is lr · (h_ref / h)^this (0: one learning rate), as
    narrower models train best at larger rates (benchmarks/plateau.py)."""
    warmup_steps: int = -1
    """Linear warm-up steps (-1: 6 % of the run)."""
    model: ModelSpec
    """The reference model of the scale (capacity, vocabulary and α sweeps)."""
    widths: tuple[int, ...]
    """Hidden sizes of the capacity sweep (layers and heads of ``model`` kept, FFN 4 × hidden)."""
    sizes: tuple[str, ...]
    """Named sizes of the model-size sweep."""
    vocabs: tuple[int, ...]
    """Vocabulary sizes (pieces) of the vocabulary sweep."""
    lang_counts: tuple[int, ...]
    """Numbers of languages of the capacity sweep's nested sets."""
    wide_lang_counts: tuple[int, ...]
    """The subset of ``lang_counts`` repeated at the wider widths (Figure 4: 7, 30, 100)."""
    tokenizer_sample_lines: int
    """Lines sampled to train each tokenizer."""
    checkpoint_interval: int
    """Steps between checkpoints."""
    log_interval: int
    """Steps between metrics.jsonl records."""
    dtype: str = "auto"
    """Precision (``auto``: bf16 on GPU)."""
    shared_tokenizer: bool = False
    """Capacity sweep: one tokenizer (and one set of shards) trained on the largest language set for every set,
    so that only model capacity changes between sets; False: each set trains its own, as in the paper."""
    vocab_lang_count: int = 0
    """Vocabulary sweep: train on the nested set of this many languages (0: every language of the corpus)."""
    designs: tuple[str, ...] = ("fixed",)
    """Capacity sweep designs (see ``capacity_dilution``): ``fixed`` (the paper's: one budget for every language
    set, so each language's tokens shrink as languages are added) and/or ``matched`` (each target language's
    tokens held fixed, the added languages' tokens on top)."""
    target_high: tuple[str, ...] = ()
    """Design language sets: high-resource targets (empty: nested sets from the corpus, as the paper's)."""
    target_low: tuple[str, ...] = ()
    """Low-resource targets, each with relatives in ``related``."""
    related: tuple[str, ...] = ()
    """Languages of the same script and family as the low-resource targets (added in the ``related`` sets)."""
    unrelated: tuple[str, ...] = ()
    """Languages of other scripts and families (added in the ``unrelated`` sets), as many as ``related``."""
    relations: tuple[str, ...] = ("none", "related", "unrelated", "both")
    """Design sets to run: the targets alone (``none``), + related, + unrelated, + both."""
    target_share: float = 0.5
    """Matched design: share of the batches drawn from the targets when languages are added; those runs take
    ``steps / target_share`` steps, so each target sees the tokens of the targets-only run."""
    device_flops: float = 0.0
    """Sustained training FLOP/s of one run on the scale's reference machine, for ``dry-run``'s predicted
    times (0: no prediction). Fitted to the demo's runs on a 2-core CPU for demo/cpu; an assumed MFU for gpu."""
    token_overhead_s: float = 0.0
    """Seconds per training token beyond the FLOPs (batches, masking, per-operation overhead, evaluation),
    the second term of ``dry-run``'s predicted time."""
    min_lang_bytes: int = 0
    """Languages with less training text are left out of the sweeps that draw languages from the corpus
    (nested sets, vocabulary, α and model-size sweeps), so that none of them is repeated for many epochs."""
    corpus_profile: str = "default"
    """The demo corpus profile the scale trains on without ``--corpus`` (``xlmr corpus demo --profile``)."""
    run_overhead_s: float = 0.0
    """Seconds per run beyond its tokens (process start, model build, final evaluation), the third term."""
    max_epochs: float = 4.0
    """``run`` refuses a sweep in which a training language would be seen for more epochs than this (unless
    ``--allow-repeat``); above ``WARN_EPOCHS`` ``plan`` warns and shows ``repeat_reason``."""
    repeat_reason: str = ""
    """Why the preset trains some language beyond ``WARN_EPOCHS`` epochs (printed by ``plan``); empty: it
    does not on its default corpus."""

    def predicted_seconds(self, flops: float, tokens: float) -> float | None:
        """Predicted wall time of one run, or None without a measured throughput."""
        if not self.device_flops:
            return None
        return flops / self.device_flops + tokens * self.token_overhead_s + self.run_overhead_s

    def __post_init__(self):
        if self.widths[0] <= 0 or not self.lang_counts or not set(self.wide_lang_counts) <= set(self.lang_counts):
            raise XlmrError("preset: wide_lang_counts must be a subset of lang_counts")
        if not set(self.designs) <= set(DESIGNS):
            raise XlmrError(f"preset: designs {self.designs} must be among {DESIGNS}")
        if "matched" in self.designs and not (self.target_high and self.related):
            raise XlmrError("preset: the matched design needs target_high, target_low, related and unrelated")
        if not set(self.relations) <= {"none", "related", "unrelated", "both"} or "none" not in self.relations:
            raise XlmrError(f"preset: relations {self.relations} must include none and be among none, related, "
                            "unrelated, both")
        if len(self.related) != len(self.unrelated):
            raise XlmrError("preset: related and unrelated must add as many languages")
        if self.max_epochs > WARN_EPOCHS and not self.repeat_reason:
            raise XlmrError(f"preset: max_epochs {self.max_epochs:g} > {WARN_EPOCHS:g} needs a repeat_reason")

    @property
    def targets(self) -> tuple[str, ...]:
        return self.target_high + self.target_low

    def design_sets(self) -> dict[str, tuple[str, ...]]:
        """The design's language sets by relation: targets alone, + related, + unrelated, + both."""
        t = self.targets
        sets = {"none": t, "related": t + self.related, "unrelated": t + self.unrelated,
                "both": t + self.related + self.unrelated}
        return {r: sets[r] for r in self.relations}


DESIGNS = ("fixed", "matched")

WARN_EPOCHS = 4.0
"""Muennighoff et al. 2023 (arXiv 2305.16264): up to about 4 epochs, repeated tokens are worth nearly as much as
unique ones; beyond, less and less (``laws.effective_data``). ``plan`` warns above it."""


# The demo corpus's design languages: low-resource targets with relatives of the same script and family
# (gl ← es, pt; sl ← hr, sr-Latn; bg ← ru, uk), and as many languages of other scripts and families or branches.
_DESIGN_LANGS = dict(target_high=("en", "fr", "de"), target_low=("gl", "sl", "bg"),
                     related=("es", "pt", "hr", "sr-Latn", "ru", "uk"), unrelated=("ar", "fa", "el", "ta", "mr", "gu"))

# Laptop scales. Tiny masked LMs sit on a unigram plateau (held-out loss no better than the per-language token
# frequencies) before they use context; what shortens it most (benchmarks/plateau.py) is a high training mask
# rate (40 %: 2.5× the predicted tokens per step, Wettig et al. 2023), pre-LN without dropout, lr 1e-3 at width
# 128 and larger rates for narrower models (lr ∝ width^-3/4: 3e-3 beats 1e-3 at width 32).
# Evaluation always masks 15 % (eval.mask_prob), so runs compare whatever their training mask rate.
_DEMO = Preset(vocab_size=2000, seq_len=64, batch_tokens=64 * 32, steps=800, lr=1e-3, mask_prob=0.4,
               warmup_steps=50,
               model=ModelSpec(size="debug", num_layers=2, hidden_size=128, num_heads=4, ffn_size=512, pre_ln=True,
                               dropout=0.0, attention_dropout=0.0),
               lr_width_exponent=0.75, widths=(64, 128), sizes=("debug", "tiny", "mini"), vocabs=(1000, 4000),
               lang_counts=(5, 10, 20, 40), wide_lang_counts=(5, 10, 20, 40),
               tokenizer_sample_lines=20_000, checkpoint_interval=400, log_interval=25,
               shared_tokenizer=True, vocab_lang_count=10, designs=("matched",), relations=("none", "related",
                                                                                              "unrelated"),
               target_share=2 / 3, device_flops=65e9, token_overhead_s=18e-6, **_DESIGN_LANGS,
               max_epochs=7.0,
               repeat_reason="the vocabulary sweep's ten-language set holds te and th, whose few hundred KB repeat "
                             "about 6 epochs at the demo's budget (the capacity sweep stays under 4: bg 3.7); the "
                             "laws fit effective data (D_eff)")

PRESETS: dict[str, Preset] = {
    "demo": _DEMO,
    # the demo's recipe, three widths (16× in non-embedding parameters), 1.9× the demo's tokens per target, the
    # targets alone, + related and + unrelated at a target share of 1/2: about 14 minutes a seed for the capacity
    # sweep on 2 CPU cores (two runs at once), predicted by dry-run (the fixed design: designs=...)
    "cpu": dataclasses.replace(_DEMO, steps=1500, widths=(32, 64, 128), vocabs=(1000, 2000, 4000, 8000),
                               designs=("matched",), target_share=0.5,
                               relations=("none", "related", "unrelated"),
                               checkpoint_interval=500, log_interval=50, max_epochs=14.0,
                               repeat_reason="the demo corpus at 1.9x the demo's tokens per target, so that capacity "
                                             "starts to bind on 2 cores: the capacity sweep's smallest languages (bg, "
                                             "sl, gu, mr, ta) repeat up to 7 epochs, the vocabulary sweep's (te, th, "
                                             "as, ro, tr) up to 14; the laws fit effective data (D_eff)"),
    # one GPU, the large demo corpus profile (``xlmr corpus demo --profile large``): many small runs rather than a
    # few long ones, as its low-resource targets hold only 0.4-0.7M unique tokens each under 16K pieces. The
    # targets alone see 6.6M tokens (800 steps of 8K), so no language exceeds 4 epochs at budget 1 of any design;
    # 4-layer models of width 64-512 (1,000× in non-embedding parameters, the smallest bound by capacity at these
    # tokens, the largest by data), × 2 designs × 4 language sets = 32 runs a seed, about 20 minutes a seed on one
    # H100 (3 seeds: an hour), nearly all of it the per-run and per-step overhead of so small a model, not FLOPs
    "gpu": Preset(vocab_size=16000, seq_len=128, batch_tokens=128 * 64, steps=800, lr=1e-3, mask_prob=0.4,
                  warmup_steps=50, lr_width_exponent=0.75,
                  model=ModelSpec(size="tiny", hidden_size=128, ffn_size=512, pre_ln=True, dropout=0.0,
                                  attention_dropout=0.0),
                  widths=(64, 128, 256, 512), sizes=("debug", "tiny"), vocabs=(4000, 8000, 16000, 32000),
                  lang_counts=(5, 10, 20, 30), wide_lang_counts=(5, 20, 30), min_lang_bytes=1_000_000,
                  tokenizer_sample_lines=200_000, checkpoint_interval=400, log_interval=50,
                  designs=("matched", "fixed"), relations=("none", "related", "unrelated", "both"),
                  device_flops=989e12 * 0.25, token_overhead_s=1e-6, run_overhead_s=25.0, corpus_profile="large",
                  shared_tokenizer=True, vocab_lang_count=10,
                  target_high=("en", "fr", "de"), target_low=("gl", "sl", "uk"),
                  related=("es", "pt", "cs", "pl", "ru", "sr"), unrelated=("el", "ja", "zh", "ko", "km", "dz")),
    # the paper's ablation setting: BERT-base shape, 150K vocabulary (§5), 1M-token batches, 100K steps
    "paper": Preset(vocab_size=150_000, seq_len=512, batch_tokens=512 * 2048, steps=100_000, lr=6e-4,
                    model=ModelSpec(size="base"), widths=(768, 960, 1152), sizes=("base", "large"),
                    vocabs=(32_000, 64_000, 128_000, 256_000), lang_counts=(7, 15, 30, 60, 100),
                    wide_lang_counts=(7, 30, 100), tokenizer_sample_lines=20_000_000,
                    checkpoint_interval=2000, log_interval=100, device_flops=312e12 * 0.4),
}
# gpu-slice: eight runs of the gpu scale's recipe (two widths × the matched design's four sets, 300 steps) on the
# default corpus and its design languages, that check the whole path on one GPU in a few minutes
PRESETS["gpu-slice"] = dataclasses.replace(PRESETS["gpu"], steps=300, widths=(128, 512), designs=("matched",),
                                           checkpoint_interval=300, log_interval=25, corpus_profile="default",
                                           min_lang_bytes=0, lang_counts=(5, 10, 20, 40),
                                           wide_lang_counts=(5, 20, 40), **_DESIGN_LANGS, max_epochs=100.0,
                                           repeat_reason="a few minutes' check of the whole path on one GPU over "
                                                         "the default corpus (its bg holds ~26K tokens under 16K "
                                                         "pieces), not a measurement")

DEVICE_NOTE: dict[str, str] = {
    "demo": "fitted to the demo's six runs, two at a time on a 2-core CPU, fp32 (2026-12-02)",
    "cpu": "fitted to the demo's six runs, two at a time on a 2-core CPU, fp32 (2026-12-02)",
    "gpu": "assumed: 25 % MFU of an H100/H200's 989 dense bf16 TFLOP/s, 1 µs per token and 25 s per run of "
           "overhead, not yet measured",
    "gpu-slice": "assumed: 25 % MFU of an H100/H200's 989 dense bf16 TFLOP/s, 1 µs per token and 25 s per run of "
                 "overhead, not yet measured",
    "paper": "assumed: 40 % MFU of one A100 (312 TFLOP/s)",
}
"""Where each scale's ``device_flops`` comes from."""

LAW_BUDGETS: dict[str, tuple[float, ...]] = {"cpu": (0.25, 0.5, 1.0), "gpu": (0.125, 0.25, 0.5, 1.0)}
"""Target-token budgets (× the scale's steps) of the scaling-law grid. Budget 1 is the capacity sweep's own runs
(same configs, same directories under ``capacity_dilution/``), so a grid after the capacity sweep trains only the
other budgets; at the demo scale the grid is the capacity sweep (one budget: K and N vary, D_t only between
languages and designs)."""

SCALES = tuple(PRESETS)


def _preset(scale: str) -> Preset:
    if scale not in PRESETS:
        raise XlmrError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    return PRESETS[scale]


def _corpus_for(scale: str, corpus: str | os.PathLike | None) -> str:
    """The corpus directory: given, or the scale's demo corpus profile (large at gpu); the paper scale needs
    CC-100."""
    if corpus:
        return str(corpus)
    env = os.environ.get("XLMR_CORPUS")
    if env:
        return env
    if scale == "paper":
        # the path is only needed to run; dry-run works without it
        return ""
    from .democorpus import ensure_demo_corpus

    return str(ensure_demo_corpus(profile=_preset(scale).corpus_profile))


def corpus_sizes(corpus: str) -> dict[str, int]:
    """Training-text bytes per language of a corpus directory."""
    from .corpus import language_stats

    return {lang: s.bytes for lang, s in language_stats(corpus).items()}


def _scale_sizes(p: Preset, corpus: str) -> dict[str, int]:
    """The corpus's languages with at least the scale's ``min_lang_bytes`` of text, and their sizes."""
    return {lang: n for lang, n in corpus_sizes(corpus).items() if n >= p.min_lang_bytes}


def nested_language_sets(sizes: dict[str, int], counts: tuple[int, ...], *, n_high: int = 3,
                         prefer_high: tuple[str, ...] = ("en", "fr", "de", "ru", "zh"),
                         prefer_low: tuple[str, ...] = ("sw", "ur")) -> tuple[dict[int, tuple[str, ...]],
                                                                                tuple[str, ...], tuple[str, ...]]:
    """Nested language sets of the given sizes from a corpus's per-language sizes, mixing high and low resource.

    The smallest set holds ``n_high`` high-resource languages (the preferred ones if present, else the
    largest) and ``counts[0] - n_high`` low-resource ones (the preferred ones if present, else languages from
    the bottom quartile by size, as sw/ur are in XLM-7). Larger sets add the remaining languages alternately
    from the largest and the smallest end, so each set spans the resource range. Returns (sets, high, low).
    """
    counts = tuple(sorted(counts))
    if not counts or counts[-1] > len(sizes):
        raise XlmrError(f"the corpus has {len(sizes)} languages; the sets need {counts[-1] if counts else 0}: "
                        "use fewer languages or a larger corpus")
    if counts[0] <= n_high:
        raise XlmrError(f"the smallest language set ({counts[0]}) must exceed the {n_high} high-resource ones")
    by_size = sorted(sizes, key=lambda lang: (-sizes[lang], lang))  # largest first
    high = [lang for lang in prefer_high if lang in sizes][:n_high]
    high += [lang for lang in by_size if lang not in high][: n_high - len(high)]
    n_low = counts[0] - n_high
    rest = [lang for lang in by_size if lang not in high]
    low = [lang for lang in prefer_low if lang in rest][:n_low]
    quartile = rest[len(rest) * 3 // 4:] or rest
    # walk up from the 75th-percentile position, so 'low' is small but not the very smallest (noisiest) text
    for lang in [*quartile[: len(quartile) // 2][::-1], *quartile[len(quartile) // 2:], *rest[::-1]]:
        if len(low) >= n_low:
            break
        if lang not in low:
            low.append(lang)
    order = high + low
    remaining = [lang for lang in by_size if lang not in order]
    take_big = True
    while remaining:
        order.append(remaining.pop(0) if take_big else remaining.pop())
        take_big = not take_big
    sets = {n: tuple(order[:n]) for n in counts}
    return sets, tuple(high), tuple(low)


# ---------------------------------------------------------------- building run configs


def _base_config(p: Preset, corpus: str, seed: int) -> RunConfig:
    return RunConfig(
        seed=seed,
        model=p.model,
        data=DataConfig(corpus=corpus, vocab_size=p.vocab_size, seq_len=p.seq_len, batch_tokens=p.batch_tokens,
                        tokenizer_sample_lines=p.tokenizer_sample_lines, mask_prob=p.mask_prob),
        optim=OptimConfig(lr=p.lr),
        schedule=ScheduleConfig(steps=p.steps, warmup_steps=p.warmup_steps),
        eval=EvalConfig(),
        checkpoint=CheckpointConfig(interval=p.checkpoint_interval),
        log_interval=p.log_interval,
    )


def _finish(cfg: RunConfig, root: str | os.PathLike, sweep: str, point: str, seed: int,
            tags: dict[str, object], scale: str) -> RunConfig:
    name = f"{point}-s{seed}"
    all_tags = {"sweep": sweep, "scale": scale, "point": point, **tags}
    return dataclasses.replace(cfg, run_dir=str(Path(root) / sweep / name), name=name,
                               tags=tuple(f"{k}={_tag(v)}" for k, v in all_tags.items()))


def _tag(v) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def hidden_of(spec: ModelSpec) -> int:
    """The hidden size of a spec (its override, else its named size's)."""
    from .model import SIZES

    return spec.hidden_size or SIZES[spec.size]["hidden_size"]


def with_width(spec: ModelSpec, hidden: int) -> ModelSpec:
    """``spec`` at width ``hidden``: layers and heads kept, FFN 4 × hidden; a named size where one matches
    (the paper's base-w960 and base-w1152)."""
    from .model import SIZES

    if hidden == hidden_of(spec):
        return spec
    ref = SIZES[spec.size]
    heads = spec.num_heads or ref["num_heads"]
    layers = spec.num_layers or ref["num_layers"]
    if spec == ModelSpec(size=spec.size):
        for name, shape in SIZES.items():
            if (name.startswith(spec.size + "-") and shape["hidden_size"] == hidden
                    and shape["num_layers"] == layers and shape["num_heads"] == heads):
                return ModelSpec(size=name)
    if hidden % heads:
        raise XlmrError(f"width {hidden} is not divisible by the {heads} heads of size {spec.size!r}")
    return dataclasses.replace(spec, hidden_size=hidden, ffn_size=4 * hidden)


def capacity_dilution(scale: str = "demo", seeds: tuple[int, ...] = (0,), root: str | os.PathLike = "results",
                      corpus: str | os.PathLike | None = None) -> list[RunConfig]:
    """More languages at a fixed model, at several model sizes, in the scale's designs (Figures 2 and 4).

    - ``design=fixed`` (the paper's): every language set trains for the same steps with α-sampling over all
      of its languages, so each language's tokens shrink as languages are added.
    - ``design=matched`` (Chang et al. 2023; ATLAS's D_t): the targets alone train ``steps``; with languages
      added, the targets keep a fixed share of the batches and the run takes ``steps / target_share``, so each
      target sees the same tokens and only the other languages' tokens come on top.

    With design languages in the preset, the sets are the targets alone (``relation=none``), + related
    languages (same script and family as the low-resource targets), + unrelated ones, + both; the fixed design
    runs all of them for ``steps / target_share``. Without (the paper scale), the sets are the nested
    XLM-7 ⊂ … ⊂ XLM-100 at one budget. Tags: design, relation, n_langs, width, high, low, targets.
    """
    p = _preset(scale)
    corpus = _corpus_for(scale, corpus)
    if p.target_high:
        return _capacity_designs(p, scale, seeds, root, corpus)
    if scale == "paper":
        sets, high, low = PAPER_LANG_SETS, PAPER_HIGH, PAPER_LOW
    else:
        sets, high, low = nested_language_sets(_scale_sizes(p, corpus), p.lang_counts)
    tok_langs = sets[max(p.lang_counts)] if p.shared_tokenizer else ()
    runs = []
    for wi, width in enumerate(p.widths):
        spec = with_width(p.model, width)
        for n in p.lang_counts:
            if wi > 0 and n not in p.wide_lang_counts:
                continue
            for seed in seeds:
                cfg = _base_config(p, corpus, seed)
                data = dataclasses.replace(cfg.data, langs=sets[n], tokenizer_langs=tok_langs)
                cfg = dataclasses.replace(cfg, model=spec, data=data)
                runs.append(_finish(cfg, root, "capacity_dilution", f"L{n:03d}-h{width}", seed,
                                    {"design": "fixed", "relation": "nested", "n_langs": n, "width": width,
                                     "high": high, "low": low}, scale))
    return runs


def _capacity_designs(p: Preset, scale: str, seeds, root, corpus: str, sweep: str = "capacity_dilution",
                      budgets: tuple[float, ...] = (1.0,)) -> list[RunConfig]:
    """The design sets × widths × designs (× target budgets) of a preset with design languages."""
    sets = p.design_sets()
    if corpus:
        have = set(corpus_sizes(corpus))
        missing = [lang for lang in (*p.targets, *p.related, *p.unrelated) if lang not in have]
        if missing:
            raise XlmrError(f"the {scale} scale's design languages {', '.join(missing)} are not in {corpus}: "
                            "use the demo corpus or a corpus with them")
    # one vocabulary and one shard set for every run of the sweep: every design language
    tok_langs = tuple(sorted(p.targets + p.related + p.unrelated))
    runs = []
    for width in p.widths:
        spec = with_width(p.model, width)
        for design in p.designs:
            for relation, langs in sets.items():
                alone = relation == "none"
                for budget in budgets:
                    steps = round(p.steps * budget / (1 if design == "matched" and alone else p.target_share))
                    # budget 1 of the law grid is the capacity sweep's run itself
                    own = len(budgets) > 1 and budget != 1.0
                    for seed in seeds:
                        cfg = _base_config(p, corpus, seed)
                        data = dataclasses.replace(cfg.data, langs=langs, tokenizer_langs=tok_langs)
                        if design == "matched" and not alone:
                            data = dataclasses.replace(data, target_langs=p.targets, target_share=p.target_share)
                        lr = p.lr * (hidden_of(p.model) / width) ** p.lr_width_exponent
                        cfg = dataclasses.replace(cfg, model=spec, data=data, optim=OptimConfig(lr=lr),
                                                  schedule=dataclasses.replace(cfg.schedule, steps=steps))
                        point = f"{design}-{relation}-L{len(langs):03d}-h{width}" + (f"-b{budget:g}" if own else "")
                        tags = {"design": design, "relation": relation, "n_langs": len(langs), "width": width,
                                "high": p.target_high, "low": p.target_low, "targets": p.targets}
                        if own:
                            tags["budget"] = budget
                        runs.append(_finish(cfg, root, sweep if own else "capacity_dilution", point, seed, tags,
                                            scale))
    return runs


def scaling_laws(scale: str = "demo", seeds: tuple[int, ...] = (0,), root: str | os.PathLike = "results",
                 corpus: str | os.PathLike | None = None) -> list[RunConfig]:
    """The grid over (K languages, N parameters, D_t target tokens) that ``laws`` fits: the matched and fixed
    designs' language sets × the capacity widths × the scale's target budgets (``LAW_BUDGETS``).

    Its budget-1 runs are the capacity sweep's (under ``capacity_dilution/``), trained once for both; the laws
    read both directories (``laws.load_table([...capacity_dilution, ...scaling_laws])``). At the demo scale the
    grid is the capacity sweep itself (one budget).
    """
    p = _preset(scale)
    corpus = _corpus_for(scale, corpus)
    if not p.target_high:
        raise XlmrError(f"the {scale} scale has no design languages for the scaling-law grid: "
                        "use scale demo, cpu or gpu")
    return _capacity_designs(p, scale, seeds, root, corpus, sweep="scaling_laws",
                             budgets=LAW_BUDGETS.get(scale, (1.0,)))


def expected_lang_tokens(cfg: RunConfig, sizes: dict[str, int]) -> dict[str, float]:
    """Expected training tokens per language of a run, from the corpus's per-language sizes (bytes stand in
    for the training-token counts that the trainer samples by, so this is an estimate)."""
    from .corpus import sampling_probs, target_sampling_probs

    langs = list(cfg.data.langs) or list(sizes)
    counts = {lang: float(sizes[lang]) for lang in langs if lang in sizes}
    if not counts:
        return {}
    d = cfg.data
    q = (target_sampling_probs(counts, d.alpha, d.target_langs, d.target_share) if d.target_langs
         else sampling_probs(counts, d.alpha))
    tokens = cfg.schedule.steps * d.batch_tokens
    return {lang: tokens * p for lang, p in q.items()}


# ---------------------------------------------------------------- the plan: tokens, epochs, FLOPs, time

PLAN_ENCODE_BYTES = 2 * 10**9
"""``plan`` encodes a corpus up to this size to count each language's unique tokens under the run's tokenizer (the
runs need those cached shards anyway); a larger one (CC-100) is estimated at ``ESTIMATE_BYTES_PER_TOKEN``."""
ESTIMATE_BYTES_PER_TOKEN = 4.0


@dataclass(frozen=True)
class RunPlan:
    """The arithmetic of one run before it starts: tokens, FLOPs, predicted time and repetition per language."""

    cfg: RunConfig
    tokens: float
    flops: float
    seconds: float | None
    """Predicted wall time on the scale's reference machine (None without a measured or assumed throughput)."""
    repetition: dict[str, dict]
    """Per training language: ``unique_tokens``, ``tokens_seen``, ``epochs`` (``data.repetition``); empty
    without a corpus."""
    exact: bool
    """Unique tokens counted from the shards (False: estimated from bytes)."""

    def most_repeated(self) -> tuple[str, float] | None:
        """(language, epochs) of the most repeated training language."""
        if not self.repetition:
            return None
        lang = max(self.repetition, key=lambda k: (self.repetition[k]["epochs"], k))
        return lang, self.repetition[lang]["epochs"]


def training_data(cfg: RunConfig, memo: dict | None = None) -> tuple[dict[str, int], dict[str, float], bool]:
    """(unique training tokens, sampling probabilities, exact) of a run's training languages, as ``train.prepare``
    derives them: the cached tokenizer and shards (built if missing), or for a corpus above ``PLAN_ENCODE_BYTES``
    an estimate from its bytes. ``memo`` shares the tokenizer and shards between runs of a sweep."""
    from .corpus import language_files, language_stats, sampling_probs, target_sampling_probs, validate_languages
    from .data import shards_for, unique_tokens
    from .tokenizer import tokenizer_for

    memo = {} if memo is None else memo
    d = cfg.data
    langs = list(d.langs) or list(language_files(d.corpus))
    tok_langs = sorted(d.tokenizer_langs or langs)
    all_langs = sorted(set(langs) | set(cfg.eval.langs or langs) | set(tok_langs))
    if ("stats", d.corpus) not in memo:
        memo["stats", d.corpus] = language_stats(d.corpus)
    stats = memo["stats", d.corpus]
    if sum(stats[lang].bytes for lang in all_langs if lang in stats) > PLAN_ENCODE_BYTES:
        unique = {lang: round(stats[lang].bytes / ESTIMATE_BYTES_PER_TOKEN) for lang in langs}
        exact = False
    else:
        key = (d.corpus, tuple(tok_langs), tuple(all_langs), d.vocab_size, d.tokenizer_alpha or d.alpha,
               d.tokenizer_seed, d.tokenizer_sample_lines, d.cache_dir)
        if key not in memo:
            checked = validate_languages(d.corpus, all_langs)
            cache = d.cache_dir or None
            tok = tokenizer_for(d.corpus, tok_langs, d.vocab_size, alpha=d.tokenizer_alpha or d.alpha,
                                seed=d.tokenizer_seed, sample_lines=d.tokenizer_sample_lines, cache_root=cache,
                                stats=checked)
            memo[key] = unique_tokens(shards_for(tok, d.corpus, all_langs, cache_root=cache, validated=True))
        unique, exact = {lang: memo[key][lang] for lang in langs}, True
    counts = {lang: float(unique[lang]) for lang in langs}
    probs = (target_sampling_probs(counts, d.alpha, d.target_langs, d.target_share) if d.target_langs
             else sampling_probs(counts, d.alpha))
    return unique, probs, exact


def plan_runs(cfgs: list[RunConfig], scale: str) -> list[RunPlan]:
    """Each run's tokens, FLOPs, predicted time and epochs per training language (empty repetition for a run
    without a corpus: the paper scale before ``--corpus``)."""
    from .data import repetition
    from .model import train_flops_for

    preset, memo, out = _preset(scale), {}, []
    for c in cfgs:
        mcfg = model_config_of(c.model, c.data.vocab_size)
        tokens = c.schedule.steps * c.data.batch_tokens if c.schedule.steps else c.schedule.tokens
        flops = c.schedule.flops or train_flops_for(mcfg, tokens, c.data.seq_len, c.data.mask_prob)
        tokens = tokens or flops / train_flops_for(mcfg, 1, c.data.seq_len, c.data.mask_prob)
        rep, exact = {}, False
        if c.data.corpus:
            unique, probs, exact = training_data(c, memo)
            rep = repetition(tokens, probs, unique)
        out.append(RunPlan(c, float(tokens), float(flops), preset.predicted_seconds(flops, tokens), rep, exact))
    return out


def check_repetition(plans: list[RunPlan], scale: str, allow_repeat: bool = False) -> None:
    """Refuse (one XlmrError line) a sweep whose most repeated language exceeds the scale's ``max_epochs``, before
    any run starts, unless ``allow_repeat``."""
    limit = _preset(scale).max_epochs
    worst = max(((p, *p.most_repeated()) for p in plans if p.repetition), key=lambda t: t[2], default=None)
    if allow_repeat or worst is None or worst[2] <= limit:
        return
    p, lang, epochs = worst
    rep = p.repetition[lang]
    raise XlmrError(
        f"language {lang} has {rep['unique_tokens']:,} unique training tokens{'' if p.exact else ' (estimated)'} "
        f"under the {p.cfg.data.vocab_size}-piece tokenizer of run {p.cfg.name} in {p.cfg.data.corpus}; the run "
        f"asks {rep['tokens_seen']:,.0f} tokens of it, {epochs:.1f} epochs (limit {limit:g} at scale {scale}): "
        f"give more text, a smaller budget, or --allow-repeat")


def model_config_of(spec: ModelSpec, vocab_pieces: int):
    """The ``model.ModelConfig`` of a spec with a vocabulary of ``vocab_pieces`` SentencePiece pieces (+2 rows)."""
    from .model import model_config

    return model_config(spec.size, vocab_pieces + 2, **spec.overrides())


def param_counts(spec: ModelSpec, vocab_pieces: int) -> dict[str, int]:
    """Parameter counts (embedding, non_embedding, lm_head, total) of a spec, built on the meta device."""
    import torch

    from .model import XLMRForMaskedLM

    with torch.device("meta"):
        model = XLMRForMaskedLM(model_config_of(spec, vocab_pieces))
    return model.param_counts()


def fixed_total_width(spec: ModelSpec, vocab_pieces: int, target_total: int) -> ModelSpec:
    """``spec`` at the width (layers and heads kept, FFN 4 ×) whose total parameters with a ``vocab_pieces``
    vocabulary are closest to ``target_total`` (the paper's fixed-parameter vocabulary study, §5)."""
    from .model import SIZES

    heads = spec.num_heads or SIZES[spec.size]["num_heads"]
    step = 2 * heads  # an even head width; finer steps keep the totals within ~1 % of the target

    def total(k: int) -> int:
        return param_counts(with_width(spec, k * step), vocab_pieces)["total"]

    # total parameters grow monotonically with the width: bisect for the last k with total(k) <= target
    lo, hi = 1, max(2, 4 * hidden_of(spec) // step)
    if total(lo) > target_total:
        raise XlmrError(f"no width of {spec.size!r} fits {target_total} parameters with {vocab_pieces} pieces")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if total(mid) <= target_total else (lo, mid)
    k = min((lo, hi), key=lambda k: abs(total(k) - target_total))
    return with_width(spec, k * step)


def vocab_scaling(scale: str = "demo", seeds: tuple[int, ...] = (0,), root: str | os.PathLike = "results",
                  corpus: str | os.PathLike | None = None, include_512k: bool = False) -> list[RunConfig]:
    """Vocabulary sizes × {fixed Transformer (embeddings grow), fixed total parameters (width shrinks)} (Fig. 6).

    The fixed-total reference is the scale's model at the smallest vocabulary. At the demo scale the
    vocabularies are 2K–16K pieces on ten languages, as the demo text cannot support the paper's 32K–256K.
    """
    p = _preset(scale)
    corpus = _corpus_for(scale, corpus)
    vocabs = p.vocabs + ((512_000,) if include_512k and scale == "paper" else ())
    if scale == "paper":
        langs = PAPER_LANG_SETS[100]
    elif p.vocab_lang_count:
        langs = nested_language_sets(_scale_sizes(p, corpus), (p.vocab_lang_count,))[0][p.vocab_lang_count]
    else:
        langs = ()
    target = param_counts(p.model, vocabs[0])["total"]
    runs = []
    for mode in ("fixed_transformer", "fixed_total"):
        for v in vocabs:
            spec = p.model if mode == "fixed_transformer" else fixed_total_width(p.model, v, target)
            for seed in seeds:
                cfg = _base_config(p, corpus, seed)
                cfg = dataclasses.replace(cfg, model=spec,
                                          data=dataclasses.replace(cfg.data, vocab_size=v, langs=langs))
                runs.append(_finish(cfg, root, "vocab_scaling", f"v{v // 1000:03d}k-{mode}", seed,
                                    {"vocab": v, "mode": mode, "width": hidden_of(spec)}, scale))
    return runs


ALPHAS: tuple[float, ...] = (0.01, 0.3, 0.7, 1.0)
"""Language sampling exponents of Figure 5."""


def sampling_alpha(scale: str = "demo", seeds: tuple[int, ...] = (0,), root: str | os.PathLike = "results",
                   corpus: str | os.PathLike | None = None) -> list[RunConfig]:
    """Sampling exponent α ∈ {0.01, 0.3, 0.7, 1.0} over all languages at a fixed model and budget (Figure 5).

    The tokenizer is the same for every α (its own sample drawn with α = 0.3), so only the sampling of
    training batches changes between runs.
    """
    p = _preset(scale)
    corpus = _corpus_for(scale, corpus)
    if scale == "paper":
        langs, high, low = PAPER_LANG_SETS[100], PAPER_HIGH, PAPER_LOW
    else:
        sets, high, low = nested_language_sets(_scale_sizes(p, corpus), (p.lang_counts[-1],))
        langs = sets[p.lang_counts[-1]]
    runs = []
    for a in ALPHAS:
        for seed in seeds:
            cfg = _base_config(p, corpus, seed)
            data = dataclasses.replace(cfg.data, alpha=a, langs=langs, tokenizer_alpha=0.3)
            cfg = dataclasses.replace(cfg, data=data)
            runs.append(_finish(cfg, root, "sampling_alpha", f"a{a:g}", seed,
                                {"alpha": a, "n_langs": len(langs), "high": high, "low": low}, scale))
    return runs


def model_size(scale: str = "demo", seeds: tuple[int, ...] = (0,), root: str | os.PathLike = "results",
               corpus: str | os.PathLike | None = None) -> list[RunConfig]:
    """The scale's named sizes trained on the same data and the same number of tokens."""
    p = _preset(scale)
    corpus = _corpus_for(scale, corpus)
    # the scale's design languages where it has them (every demo language would not fit its small vocabulary)
    design = p.targets + p.related + p.unrelated
    langs = (PAPER_LANG_SETS[100] if scale == "paper" else tuple(_scale_sizes(p, corpus)) if p.min_lang_bytes
             else design)
    vocab = 250_000 if scale == "paper" else p.vocab_size  # XLM-R's own vocabulary at the paper's sizes
    runs = []
    for size in p.sizes:
        for seed in seeds:
            cfg = _base_config(p, corpus, seed)
            cfg = dataclasses.replace(cfg, model=ModelSpec(size=size),
                                      data=dataclasses.replace(cfg.data, langs=langs, vocab_size=vocab))
            runs.append(_finish(cfg, root, "model_size", size, seed, {"size": size}, scale))
    return runs


SWEEPS: dict[str, Callable[..., list[RunConfig]]] = {
    "capacity_dilution": capacity_dilution,
    "scaling_laws": scaling_laws,
    "vocab_scaling": vocab_scaling,
    "sampling_alpha": sampling_alpha,
    "model_size": model_size,
}


def get_sweep(name: str, scale: str, seeds: tuple[int, ...] = (0,), root: str | os.PathLike = "results",
              corpus: str | os.PathLike | None = None) -> list[RunConfig]:
    """The run configs of sweep ``name`` at ``scale``."""
    if name not in SWEEPS:
        raise XlmrError(f"unknown sweep {name!r}; choose one of {', '.join(SWEEPS)}")
    if not seeds:
        raise XlmrError("give at least one seed")
    return SWEEPS[name](scale=scale, seeds=tuple(seeds), root=root, corpus=corpus)
