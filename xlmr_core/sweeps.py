"""The paper's scaling sweeps as lists of run configs, at three scales: ``demo``, ``gpu`` and ``paper``.

Each sweep is a function ``(scale, seeds, root, corpus=None) -> list[RunConfig]``; every run config carries
``tags`` of the form ``key=value`` (sweep name and the point's values) that ``results.load`` turns into
columns, and its run directory is ``<root>/<sweep>/<run name>``, the name made of the point and the seed.

Scales:

- ``demo``: the ~45-language demo corpus (``democorpus.ensure_demo_corpus``), tiny models, seconds per run
  on a 2-core CPU. Its vocabularies are small (1K–8K pieces): a few MB of text cannot fill 32K+ pieces.
- ``gpu``: the demo corpus (or ``corpus``), mini/small/base models, minutes to an hour per run on one GPU.
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
    eval_blocks: int
    """Held-out blocks per language at the final evaluation."""
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

    def __post_init__(self):
        if self.widths[0] <= 0 or not self.lang_counts or not set(self.wide_lang_counts) <= set(self.lang_counts):
            raise XlmrError("preset: wide_lang_counts must be a subset of lang_counts")


# seconds per run on 2 CPU cores: 4 layers × 128 (tiny, narrowed), the wider capacity runs 192
_DEMO = Preset(vocab_size=4000, seq_len=64, batch_tokens=64 * 8, steps=150, lr=2e-3,
               model=ModelSpec(size="tiny", hidden_size=128, ffn_size=512),
               widths=(128, 192), sizes=("debug", "tiny", "mini"), vocabs=(2000, 4000, 8000, 16000),
               lang_counts=(5, 10, 20, 40), wide_lang_counts=(5, 10, 20, 40),
               tokenizer_sample_lines=20_000, eval_blocks=8, checkpoint_interval=50, log_interval=10,
               shared_tokenizer=True, vocab_lang_count=10)

PRESETS: dict[str, Preset] = {
    "demo": _DEMO,
    # the demo's models and data with 2.7× the tokens per run: about half an hour for both sweeps with 3 seeds
    "cpu": dataclasses.replace(_DEMO, batch_tokens=64 * 16, steps=200, eval_blocks=16, checkpoint_interval=100),
    # one GPU, the demo corpus: 4M tokens per run… enough for the small sizes to separate
    "gpu": Preset(vocab_size=16000, seq_len=256, batch_tokens=256 * 128, steps=4000, lr=6e-4,
                  model=ModelSpec(size="small"),
                  widths=(512, 640, 768), sizes=("mini", "small", "base"), vocabs=(4000, 8000, 16000, 32000),
                  lang_counts=(5, 10, 20, 40), wide_lang_counts=(5, 20, 40),
                  tokenizer_sample_lines=1_000_000, eval_blocks=64, checkpoint_interval=500, log_interval=50),
    # the paper's ablation setting: BERT-base shape, 150K vocabulary (§5), 1M-token batches, 100K steps
    "paper": Preset(vocab_size=150_000, seq_len=512, batch_tokens=512 * 2048, steps=100_000, lr=6e-4,
                    model=ModelSpec(size="base"), widths=(768, 960, 1152), sizes=("base", "large"),
                    vocabs=(32_000, 64_000, 128_000, 256_000), lang_counts=(7, 15, 30, 60, 100),
                    wide_lang_counts=(7, 30, 100), tokenizer_sample_lines=20_000_000, eval_blocks=256,
                    checkpoint_interval=2000, log_interval=100),
}

SCALES = tuple(PRESETS)


def _preset(scale: str) -> Preset:
    if scale not in PRESETS:
        raise XlmrError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    return PRESETS[scale]


def _corpus_for(scale: str, corpus: str | os.PathLike | None) -> str:
    """The corpus directory: given, or the demo corpus for demo/gpu; the paper scale needs CC-100."""
    if corpus:
        return str(corpus)
    env = os.environ.get("XLMR_CORPUS")
    if env:
        return env
    if scale == "paper":
        # the path is only needed to run; dry-run works without it
        return ""
    from .democorpus import ensure_demo_corpus

    return str(ensure_demo_corpus())


def _size_by_lang(corpus: str) -> dict[str, int]:
    """Training-text bytes per language of a corpus directory."""
    from .corpus import language_stats

    return {lang: s.bytes for lang, s in language_stats(corpus).items()}


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
                        tokenizer_sample_lines=p.tokenizer_sample_lines),
        optim=OptimConfig(lr=p.lr),
        schedule=ScheduleConfig(steps=p.steps),
        eval=EvalConfig(max_blocks=p.eval_blocks),
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
    """Nested language sets at a fixed model and fixed training compute, repeated at wider models (Figures 2, 4)."""
    p = _preset(scale)
    corpus = _corpus_for(scale, corpus)
    if scale == "paper":
        sets, high, low = PAPER_LANG_SETS, PAPER_HIGH, PAPER_LOW
    else:
        sets, high, low = nested_language_sets(_size_by_lang(corpus), p.lang_counts)
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
                                    {"n_langs": n, "width": width, "high": high, "low": low},
                                    scale))
    return runs


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
        langs = nested_language_sets(_size_by_lang(corpus), (p.vocab_lang_count,))[0][p.vocab_lang_count]
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
        sets, high, low = nested_language_sets(_size_by_lang(corpus), (p.lang_counts[-1],))
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
    langs = PAPER_LANG_SETS[100] if scale == "paper" else ()
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
