"""The paper's scaling sweeps as lists of run configs, at the scales of ``presets``: ``demo``, ``cpu``, ``gpu``,
``gpu-slice`` and ``paper``.

Each sweep is a function ``(scale, seeds, root, corpus=None) -> list[RunConfig]``; every run config carries
``tags`` of the form ``key=value`` (sweep name and the point's values) that ``results.load`` turns into
columns, and its run directory is ``<root>/<sweep>/<run name>``, the name made of the point and the seed.
The scale presets, the paper's language sets and the default corpus live in ``presets`` (re-exported here);
a study (``studies``) is a sweep with its suites and notebooks; ``plan_runs`` is the arithmetic of ``plan``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xlmr_core.config import CheckpointConfig, DataConfig, EvalConfig, ModelSpec, OptimConfig, RunConfig, ScheduleConfig
from xlmr_core.errors import XlmrError
from xlmr_core.study.presets import (  # noqa: F401  (re-exported: sweeps.PRESETS, sweeps.SCALES, ... are read elsewhere)
    CC100_LANGS,
    DESIGNS,
    DEVICE_NOTE,
    LAW_BUDGETS,
    PAPER_HIGH,
    PAPER_LANG_SETS,
    PAPER_LOW,
    PRESETS,
    SCALES,
    WARN_EPOCHS,
    XNLI_LANGS,
    Preset,
    corpus_for,
    corpus_sizes,
    get_preset,
    scale_sizes,
)


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
    from xlmr_core.model.encoder import SIZES

    return spec.hidden_size or SIZES[spec.size]["hidden_size"]


def with_width(spec: ModelSpec, hidden: int) -> ModelSpec:
    """``spec`` at width ``hidden``: layers and heads kept, FFN 4 × hidden; a named size where one matches
    (the paper's base-w960 and base-w1152)."""
    from xlmr_core.model.encoder import SIZES

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
    p = get_preset(scale)
    corpus = corpus_for(scale, corpus)
    if p.target_high:
        return _capacity_designs(p, scale, seeds, root, corpus)
    if scale == "paper":
        sets, high, low = PAPER_LANG_SETS, PAPER_HIGH, PAPER_LOW
    else:
        sets, high, low = nested_language_sets(scale_sizes(p, corpus), p.lang_counts)
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
    p = get_preset(scale)
    corpus = corpus_for(scale, corpus)
    if not p.target_high:
        raise XlmrError(f"the {scale} scale has no design languages for the scaling-law grid: "
                        "use scale demo, cpu or gpu")
    return _capacity_designs(p, scale, seeds, root, corpus, sweep="scaling_laws",
                             budgets=LAW_BUDGETS.get(scale, (1.0,)))


def expected_lang_tokens(cfg: RunConfig, sizes: dict[str, int]) -> dict[str, float]:
    """Expected training tokens per language of a run, from the corpus's per-language sizes (bytes stand in
    for the training-token counts that the trainer samples by, so this is an estimate)."""
    from xlmr_core.data.corpus import sampling_probs, target_sampling_probs

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
    from xlmr_core.data import shards_for, unique_tokens
    from xlmr_core.data.corpus import (
        language_files,
        language_stats,
        sampling_probs,
        target_sampling_probs,
        validate_languages,
    )
    from xlmr_core.data.tokenizer import tokenizer_for

    memo = {} if memo is None else memo
    d = cfg.data
    if cfg.derive.on:
        return _derived_training_data(cfg, memo)
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


def _derived_training_data(cfg: RunConfig, memo: dict) -> tuple[dict[str, int], dict[str, float], bool]:
    """``training_data`` of a run on derived languages: its derived shards (built if missing)."""
    from xlmr_core.data import derived, shards_for, unique_tokens
    from xlmr_core.data.corpus import sampling_probs, target_sampling_probs

    d = cfg.data
    key = ("derive", repr(cfg.derive), d.vocab_size, d.tokenizer_alpha or d.alpha, d.tokenizer_seed,
           d.tokenizer_sample_lines, d.cache_dir)
    if key not in memo:  # runs of one derivation share its tokenizer and shards: built or read once
        corpus_dir, tok, heldout, _ = derived.prepare(cfg)
        memo[key] = unique_tokens(shards_for(tok, corpus_dir, cfg.derive.codes(), cache_root=d.cache_dir or None,
                                             heldout=heldout))
    unique = {lang: memo[key][lang] for lang in (list(d.langs) or cfg.derive.codes())}
    counts = {lang: float(n) for lang, n in unique.items()}
    probs = (target_sampling_probs(counts, d.alpha, d.target_langs, d.target_share) if d.target_langs
             else sampling_probs(counts, d.alpha))
    return unique, probs, True


def plan_runs(cfgs: list[RunConfig], scale: str) -> list[RunPlan]:
    """Each run's tokens, FLOPs, predicted time and epochs per training language (empty repetition for a run
    without a corpus: the paper scale before ``--corpus``)."""
    from xlmr_core.data import repetition
    from xlmr_core.model.encoder import train_flops_for

    preset, memo, out = get_preset(scale), {}, []
    for c in cfgs:
        mcfg = model_config_of(c.model, c.data.vocab_size)
        tokens = c.schedule.steps * c.data.batch_tokens if c.schedule.steps else c.schedule.tokens
        flops = c.schedule.flops or train_flops_for(mcfg, tokens, c.data.seq_len, c.data.mask_prob)
        tokens = tokens or flops / train_flops_for(mcfg, 1, c.data.seq_len, c.data.mask_prob)
        rep, exact = {}, False
        if c.data.corpus or c.derive.on:
            unique, probs, exact = training_data(c, memo)
            rep = repetition(tokens, probs, unique)
        out.append(RunPlan(c, float(tokens), float(flops), preset.predicted_seconds(flops, tokens), rep, exact))
    return out


def check_repetition(plans: list[RunPlan], scale: str, allow_repeat: bool = False) -> None:
    """Refuse (one XlmrError line) a sweep whose most repeated language exceeds the scale's ``max_epochs``, before
    any run starts, unless ``allow_repeat``."""
    limit = get_preset(scale).max_epochs
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
    from xlmr_core.model.encoder import model_config

    return model_config(spec.size, vocab_pieces + 2, **spec.overrides())


def param_counts(spec: ModelSpec, vocab_pieces: int) -> dict[str, int]:
    """Parameter counts (embedding, non_embedding, lm_head, total) of a spec, built on the meta device."""
    import torch

    from xlmr_core.model.encoder import XLMRForMaskedLM

    with torch.device("meta"):
        model = XLMRForMaskedLM(model_config_of(spec, vocab_pieces))
    return model.param_counts()


def fixed_total_width(spec: ModelSpec, vocab_pieces: int, target_total: int) -> ModelSpec:
    """``spec`` at the width (layers and heads kept, FFN 4 ×) whose total parameters with a ``vocab_pieces``
    vocabulary are closest to ``target_total`` (the paper's fixed-parameter vocabulary study, §5)."""
    from xlmr_core.model.encoder import SIZES

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
    p = get_preset(scale)
    corpus = corpus_for(scale, corpus)
    vocabs = p.vocabs + ((512_000,) if include_512k and scale == "paper" else ())
    if scale == "paper":
        langs = PAPER_LANG_SETS[100]
    elif p.vocab_lang_count:
        langs = nested_language_sets(scale_sizes(p, corpus), (p.vocab_lang_count,))[0][p.vocab_lang_count]
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
    p = get_preset(scale)
    corpus = corpus_for(scale, corpus)
    if scale == "paper":
        langs, high, low = PAPER_LANG_SETS[100], PAPER_HIGH, PAPER_LOW
    else:
        sets, high, low = nested_language_sets(scale_sizes(p, corpus), (p.lang_counts[-1],))
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
    p = get_preset(scale)
    corpus = corpus_for(scale, corpus)
    # the scale's design languages where it has them (every demo language would not fit its small vocabulary)
    design = p.targets + p.related + p.unrelated
    langs = (PAPER_LANG_SETS[100] if scale == "paper" else tuple(scale_sizes(p, corpus)) if p.min_lang_bytes
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
