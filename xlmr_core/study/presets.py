"""What a scale fixes for every run of a sweep (``Preset``, the table ``PRESETS``), the paper's language sets,
and the corpus a scale trains on by default.

Scales: ``demo`` (the ~45-language demo corpus, tiny models, seconds per run on a 2-core CPU), ``cpu`` (the demo's
recipe at 1.9x its tokens per target, about 15 minutes a seed for the capacity sweep on 2 cores), ``gpu`` and
``gpu-slice`` (one GPU, the large demo corpus profile or the default one), ``paper`` (CC-100 in the corpus layout,
the paper's language sets, base and large models, a cluster). The sweeps (``sweeps``) build run configs from a
preset; the studies (``studies``) add suites and notebooks. The paper's training budgets for its ablations are
not all stated; the ones here are ours.

The corpus of a scale (``corpus_for``): the one given, else ``$XLMR_CORPUS``, else the scale's demo corpus profile
in the cache (``democorpus.default_out_dir``: ``$XLMR_CACHE/demo-corpus``, ``demo-corpus-large`` at gpu), built on
first use; the paper scale has none until one is given (``plan`` works without).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from xlmr_core.config import ModelSpec
from xlmr_core.errors import XlmrError

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


def get_preset(scale: str) -> Preset:
    """The preset of ``scale``, or one XlmrError listing the scales."""
    if scale not in PRESETS:
        raise XlmrError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    return PRESETS[scale]


def corpus_for(scale: str, corpus: str | os.PathLike | None) -> str:
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
    from xlmr_core.democorpus import ensure_demo_corpus

    return str(ensure_demo_corpus(profile=get_preset(scale).corpus_profile))


def corpus_sizes(corpus: str) -> dict[str, int]:
    """Training-text bytes per language of a corpus directory."""
    from xlmr_core.data.corpus import language_stats

    return {lang: s.bytes for lang, s in language_stats(corpus).items()}


def scale_sizes(p: Preset, corpus: str) -> dict[str, int]:
    """The corpus's languages with at least the scale's ``min_lang_bytes`` of text, and their sizes."""
    return {lang: n for lang, n in corpus_sizes(corpus).items() if n >= p.min_lang_bytes}


