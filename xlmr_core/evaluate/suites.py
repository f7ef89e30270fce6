"""Evaluation of a trained encoder; ``xlmr eval RUN_DIR`` merges the results into ``final.json["eval"]``.

- ``bpb``: masked-LM loss on fixed held-out blocks and fixed mask draws, in bits per UTF-8 byte, next to
  the unigram baseline of the same tokens (``heldout.mlm_eval``), for any corpus language, including
  languages the model never saw in training.
- ``embed`` / ``retrieval_scores`` / ``retrieval_suite``: cross-lingual sentence retrieval without
  fine-tuning, as XTREME's Tatoeba and BUCC tasks (Hu et al. 2020): mean-pooled hidden states of a
  middle layer, nearest neighbour by cosine or by the ratio margin of Artetxe & Schwenk (2019).
- ``pseudo_log_likelihood``: PLL of Salazar et al. (2020), each token masked in turn, per byte.
  (These text encoders and the parallel-set readers live in :mod:`xlmr_core.evaluate.embeddings`, re-exported here.)
- tokenizer metrics (fertility, unknown rate, ALP) per language on held-out text.
- downstream transfer suites (xnli, glue-<task>, ner, mlqa) run through ``finetune.run_downstream``.

``REGISTRY`` maps each suite name to a function of the loaded run; ``SuiteConfig`` holds every suite's settings.

Parallel sets live in ``corpus/eval/<set>/<lang>.tsv`` (``id<TAB>text``; rows of two languages with
the same id are translations), as the demo corpus builder writes them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from xlmr_core.config import EvalConfig, apply_overrides
from xlmr_core.data import ShardSet, shards_for
from xlmr_core.data.corpus import parse_langs, select_languages
from xlmr_core.data.tokenizer import tokenizer_metrics
from xlmr_core.democorpus.ddtp import ensure_ddtp
from xlmr_core.errors import XlmrError
from xlmr_core.evaluate import finetune
from xlmr_core.evaluate.embeddings import (
    RETRIEVAL_SETS,
    TEXT_SETS,
    UNSEEN_LANGS,
    eval_texts,
    pseudo_log_likelihood,
    retrieval_suite,
    set_languages,
)
from xlmr_core.evaluate.embeddings import embed as embed
from xlmr_core.evaluate.embeddings import read_tsv as read_tsv
from xlmr_core.evaluate.embeddings import retrieval_scores as retrieval_scores
from xlmr_core.evaluate.heldout import LN2, bpb_suite, mlm_eval  # noqa: F401  (mlm_eval: part of this module's API)
from xlmr_core.model.device import pick_device
from xlmr_core.train import rundir

SUITES = ("bpb", "retrieval", "pll", "tokenizer")
"""Suites that run offline on the corpus of the run (the default of ``xlmr eval``)."""
DOWNSTREAM = finetune.SUITES
"""Fine-tuning suites on user-supplied data (xnli, glue-<task>, ner, mlqa), see ``finetune.run_downstream``."""
TRANSFER_SUITES = ("ddtp",)
"""Offline transfer suites (no --data): ``ddtp`` fine-tunes on English DDTP package descriptions and reports topic
accuracy in every DDTP language (``finetune.ddtp_transfer``; the data set is built on first use, or ``$XLMR_DDTP``).
Not in ``SUITES``: ask for them (``--suite bpb,...,ddtp``)."""


# ---------------------------------------------------------------------------------------------
# a finished run


@dataclasses.dataclass(frozen=True, kw_only=True)
class SuiteConfig:
    """Settings of the evaluation suites of ``evaluate_run`` (each suite reads the fields it needs)."""

    langs: tuple[str, ...] | None = None
    """Languages for retrieval, PLL and tokenizer metrics (and bpb); None: training + ``extra_langs`` + ``unseen``."""
    extra_langs: tuple[str, ...] = ()
    """More corpus languages to evaluate, seen in training or not (bpb of languages the run never saw)."""
    unseen: tuple[str, ...] = UNSEEN_LANGS
    """Languages evaluated besides the training ones where the corpus has text for them."""
    sets: tuple[str, ...] = RETRIEVAL_SETS
    """Parallel sets for retrieval."""
    pivot: str = "en"
    """The language every other one is retrieved against."""
    layer: int | None = None
    """Hidden state pooled for retrieval (0 = embeddings; None: the middle layer)."""
    margin: bool = False
    """Ratio-margin scoring (Artetxe & Schwenk 2019) instead of cosine."""
    k: int = 4
    """Neighbours in the margin."""
    max_items: int = 500
    """Most parallel items per language and set."""
    pll_texts: int = 8
    """Texts per language for pseudo-log-likelihood."""
    tokenizer_lines: int = 1000
    """Lines per language for tokenizer metrics."""
    masked_tokens: int | None = None
    """bpb: masked tokens to score per language at least (None: the run's ``eval.masked_tokens``, or
    ``EvalConfig``'s default for a run trained before held-out samples were sized by masked tokens)."""
    target_se: float | None = None
    """bpb: standard error in bits per byte to size the sample for (None: as ``masked_tokens``)."""
    downstream_data: str | os.PathLike | None = None
    """Directory with downstream data (xnli, ner, mlqa, glue)."""
    finetune_cfg: finetune.FinetuneConfig | None = None
    """Fine-tuning settings of the downstream suites (None: ``FinetuneConfig()``)."""
    device: str = "auto"
    """cpu, cuda, cuda:N or auto (CUDA if present, as ``precision.device`` in training)."""
    ddtp_cfg: finetune.FinetuneConfig | None = None
    """Fine-tuning settings of ``ddtp`` (None: ``finetune.DDTP_CONFIG``)."""
    ddtp_data: str | os.PathLike | None = None
    """A built DDTP data set (None: ``ensure_ddtp()``)."""
    ddtp_retrieval: int = 0
    """With ``ddtp``: also retrieve that many en↔X description pairs per language, stored as ``retrieval-ddtp``."""
    quiet: bool = False
    """No progress lines on stderr."""

    def __post_init__(self):
        for name in ("max_items", "k", "pll_texts", "tokenizer_lines"):
            if getattr(self, name) < 1:
                raise XlmrError(f"{name}={getattr(self, name)} must be >= 1")
        if self.layer is not None and self.layer < 0:
            raise XlmrError(f"layer={self.layer} must be >= 0 (0 = the embeddings)")


@dataclasses.dataclass
class _Run:
    """A finished run as the suites see it: its model, tokenizer, config and languages."""

    run_dir: Path
    model: torch.nn.Module
    tok: object
    cfg: object
    info: dict
    train_langs: list[str]
    opts: SuiteConfig
    device: str

    @property
    def corpus(self) -> str:
        from xlmr_core.data.derived import corpus_of

        return corpus_of(self.cfg)

    @property
    def text_langs(self) -> list[str]:
        o = self.opts
        return list(o.langs) if o.langs is not None else list(dict.fromkeys([*self.train_langs, *o.extra_langs,
                                                                             *o.unseen]))


def _suite_bpb(r: _Run) -> dict[str, dict]:
    c = r.cfg
    bpb_langs = list(dict.fromkeys([*r.train_langs, *r.opts.extra_langs]))
    by_lang = _bpb_shards(r.tok, c, r.info, bpb_langs)
    # the run's own held-out sample (the same tokens as its final.json), or, for a run trained before samples were
    # sized by masked tokens, today's default sizing; SuiteConfig's values override either
    sized = "masked_tokens" in ((r.info.get("config") or {}).get("eval") or {})
    ev = c.eval if sized else dataclasses.replace(EvalConfig(), mask_prob=c.eval.mask_prob,
                                                  batch_blocks=c.eval.batch_blocks)
    ev = dataclasses.replace(ev, **{k: v for k, v in (("masked_tokens", r.opts.masked_tokens),
                                                      ("target_se", r.opts.target_se)) if v is not None})
    per_lang = {}
    for lang in bpb_langs:
        res = bpb_suite(r.model, r.tok, by_lang[lang], [lang], seq_len=c.data.seq_len, cfg=ev, device=r.device)
        per_lang[lang] = dict(res[lang], seen=lang in r.train_langs)
    settings = dict(masked_tokens=ev.masked_tokens, target_se=ev.target_se, max_masked=ev.max_masked,
                    max_blocks=ev.max_blocks, draws=ev.draws, seed=ev.seed, seq_len=c.data.seq_len,
                    mask_prob=ev.mask_prob)
    return {"bpb": dict(settings=settings, per_lang=per_lang)}


def _suite_retrieval(r: _Run) -> dict[str, dict]:
    o = r.opts
    sets, langs, pivot, unseen = o.sets, o.langs, o.pivot, [*o.extra_langs, *o.unseen]
    if r.cfg.derive.on:  # derived languages: the same held-out documents in each, against language 0
        pivot = r.cfg.derive.codes()[0]
        sets, langs, unseen = ("docs_heldout",), [x for x in r.train_langs if x != pivot], []
    table = retrieval_suite(r.model, r.tok, r.corpus, sets=sets, langs=langs, pivot=pivot,
                            max_items=o.max_items, train_langs=r.train_langs, unseen=unseen,
                            layer=o.layer, margin=o.margin, k=o.k, device=r.device)
    used_layer = r.model.config.num_layers // 2 if o.layer is None else o.layer
    # a non-default layer or scoring is stored under its own name so the default results are not overwritten
    key = "retrieval" + (f"-layer{o.layer}" if o.layer is not None else "") + ("-margin" if o.margin else "")
    settings = dict(layer=used_layer, scoring=f"margin-k{o.k}" if o.margin else "cosine", pivot=pivot,
                    max_items=o.max_items, pooling="mean")
    return {key: dict(settings=settings, sets=table)}


def _text_suite(name: str, limit: Callable[[SuiteConfig], int], score) -> Callable[[_Run], dict[str, dict]]:
    """A per-language suite on held-out text (the first of ``TEXT_SETS`` that has the language)."""

    def run(r: _Run) -> dict[str, dict]:
        per_lang = {}
        for lang in r.text_langs:
            # PLL takes the first texts that fit in max_len, so it reads them all
            found = eval_texts(r.corpus, lang, max_items=None if name == "pll" else limit(r.opts))
            if found is None:
                if r.opts.langs is not None:
                    raise XlmrError(f"no held-out text for {lang!r} in {r.corpus}/eval/{{{','.join(TEXT_SETS)}}}")
                continue
            source, texts = found
            per_lang[lang] = dict(score(r, texts), source=source, seen=lang in r.train_langs)
        return {name: dict(settings=dict(max_texts=limit(r.opts), sets=list(TEXT_SETS)), per_lang=per_lang)}

    return run


def _suite_ddtp(r: _Run) -> dict[str, dict]:
    o = r.opts
    t0 = time.time()
    data = ensure_ddtp(o.ddtp_data, progress=not o.quiet)
    if r.cfg.derive.on:  # fine-tune on language 0 (the source), test in every derived language
        from xlmr_core.data.derived import derived_ddtp

        data = derived_ddtp(r.cfg, data, cache_root=r.cfg.data.cache_dir or None)
    out = {"ddtp": finetune.ddtp_transfer(r.run_dir, r.tok, data, o.ddtp_cfg, train_langs=r.train_langs)}
    out["ddtp"]["wall_s"] = time.time() - t0  # building the data, fine-tuning and accuracy
    if o.ddtp_retrieval > 0 and not r.cfg.derive.on:  # the same descriptions as parallel text, no fine-tuning
        t1 = time.time()
        table = retrieval_suite(r.model, r.tok, data, sets=("ddtp",), max_items=o.ddtp_retrieval,
                                train_langs=r.train_langs, unseen=set_languages(data, "ddtp"), device=r.device)
        settings = dict(layer=r.model.config.num_layers // 2, scoring="cosine", pivot="en",
                        max_items=o.ddtp_retrieval, pooling="mean", data=str(data))
        out["retrieval-ddtp"] = dict(settings=settings, sets=table, wall_s=time.time() - t1)
    return out


def _downstream(name: str) -> Callable[[_Run], dict[str, dict]]:
    def run(r: _Run) -> dict[str, dict]:
        # from the run directory: fine-tuning works on its own copy of the weights
        return {name: finetune.run_downstream(r.run_dir, r.tok, name, Path(r.opts.downstream_data),
                                              r.opts.finetune_cfg)}

    return run


REGISTRY: dict[str, Callable[[_Run], dict[str, dict]]] = {
    "bpb": _suite_bpb,
    "retrieval": _suite_retrieval,
    "pll": _text_suite("pll", lambda o: o.pll_texts,
                       lambda r, texts: pseudo_log_likelihood(r.model, r.tok, texts, max_texts=r.opts.pll_texts,
                                                              device=r.device)),
    "tokenizer": _text_suite("tokenizer", lambda o: o.tokenizer_lines,
                             lambda r, texts: tokenizer_metrics(r.tok, texts)),
    "ddtp": _suite_ddtp,
    **{name: _downstream(name) for name in DOWNSTREAM if name != "ddtp"},
}
"""Every suite by name: a function of the loaded run that returns {result key: result}."""


def _check_suites(suites: Sequence[str]) -> list[str]:
    """Suite names in order, downstream aliases resolved (``glue-sst2`` → ``glue-sst-2``); unknown names raise."""
    out = []
    for s in suites:
        if s in REGISTRY:
            out.append(s)
            continue
        try:
            out.append(finetune.get_task(s).name)
        except XlmrError:
            raise XlmrError(f"unknown eval suite {s!r}; choose from {', '.join(SUITES + DOWNSTREAM)}") from None
    return list(dict.fromkeys(out))


def _bpb_shards(tok, cfg, run_info: dict, langs: list[str]) -> dict[str, ShardSet]:
    """A ShardSet per language: the run's own shards where they have it, others encoded (cached) now."""
    out: dict[str, ShardSet] = {}
    own = Path(run_info.get("shards") or "")
    if run_info.get("shards") and (own / "shards.json").exists():
        shards = ShardSet(own)
        out.update({lang: shards for lang in langs if lang in shards.meta})
    rest = [lang for lang in langs if lang not in out]
    if rest:
        select_languages(cfg.data.corpus, rest)  # names the missing language and the available ones
        shards = shards_for(tok, cfg.data.corpus, rest, cache_root=cfg.data.cache_dir or None)
        out.update({lang: shards for lang in rest})
    return out


_LANG_FIELDS = ("langs", "extra_langs", "unseen")
SUITE_FIELDS: dict[str, tuple[str, ...]] = {
    "bpb": ("extra_langs", "masked_tokens", "target_se"),
    "retrieval": (*_LANG_FIELDS, "sets", "pivot", "layer", "margin", "k", "max_items"),
    "pll": (*_LANG_FIELDS, "pll_texts"),
    "tokenizer": (*_LANG_FIELDS, "tokenizer_lines"),
    "ddtp": ("ddtp_cfg", "ddtp_data", "ddtp_retrieval"),
}
"""The ``SuiteConfig`` fields each suite's result depends on (any other suite: all but ``device`` and ``quiet``);
a suite recorded with other values is due again."""


def _options(config: SuiteConfig | None, options: dict) -> SuiteConfig:
    try:
        return dataclasses.replace(config or SuiteConfig(), **options)
    except TypeError as e:
        names = ", ".join(f.name for f in dataclasses.fields(SuiteConfig))
        raise XlmrError(f"evaluate_run: {e}; the settings are {names}") from None


def _plain(v):
    return dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v


def suite_configs(suites: Sequence[str], config: SuiteConfig | None = None, **options) -> dict[str, dict]:
    """{suite: the settings its result depends on, as JSON}: what ``evaluate_run`` records per suite in
    ``final.json["suites"]`` and ``rundir.missing_suites`` compares (names resolved as ``evaluate_run`` does)."""
    opts = _options(config, options)
    every = [f.name for f in dataclasses.fields(SuiteConfig) if f.name not in ("device", "quiet")]
    return {s: json.loads(json.dumps({n: _plain(getattr(opts, n)) for n in SUITE_FIELDS.get(s, every)}, default=str))
            for s in _check_suites(suites)}


def evaluate_run(run_dir: str | Path, suites: Sequence[str] = SUITES, config: SuiteConfig | None = None,
                 **options) -> dict:
    """Run ``suites`` on a finished run and merge them into ``final.json["eval"]``; returns the new results.

    ``config`` (or ``SuiteConfig``'s defaults) with ``options`` replacing its fields. bpb covers the training
    languages and ``extra_langs``; retrieval, PLL and tokenizer metrics cover ``langs`` or, by default,
    training + extra + ``unseen`` languages where the corpus has text for them. Each suite's settings
    (``suite_configs``) are recorded in ``final.json["suites"]``.
    """
    opts = _options(config, options)
    # the arguments first, then the files they point at, then the work
    suites = _check_suites(suites)
    configs = suite_configs(suites, opts)
    downstream = [s for s in suites if s not in SUITES and s not in TRANSFER_SUITES]
    if downstream and opts.downstream_data is None:
        raise XlmrError(f"suite(s) {', '.join(downstream)} fine-tune on your data: give its directory with --data")
    device = str(pick_device(opts.device))
    run_dir = Path(run_dir)
    final = rundir.read_final(run_dir)
    if final is None:
        raise XlmrError(f"{run_dir} has no final.json: the run is not finished; train it first "
                        f"(`xlmr train {rundir.config_path(run_dir)}` resumes it)")
    model, tok, cfg = rundir.load_run(run_dir, device=device)
    run = _Run(run_dir, model, tok, cfg, rundir.read_info(run_dir), list(final.langs), opts, device)
    if "bpb" in suites and opts.extra_langs:
        select_languages(run.corpus, list(opts.extra_langs))  # a missing language fails now, not after other suites
    if "retrieval" in suites and not cfg.derive.on:  # derived runs retrieve on their held-out documents
        for name in opts.sets:
            set_languages(run.corpus, name)  # a missing parallel set fails now, not after other suites
        if opts.layer is not None and opts.layer > model.config.num_layers:
            raise XlmrError(f"layer={opts.layer}: the model has hidden states 0 (embeddings) to "
                            f"{model.config.num_layers}")

    results: dict[str, dict] = {}
    done: dict[str, dict] = {}
    for suite in suites:
        t0 = time.time()
        if not opts.quiet:
            print(f"xlmr eval: {suite} on {run_dir}", file=sys.stderr)
        out = REGISTRY[suite](run)
        for key, r in out.items():
            results[key] = r if "wall_s" in r else dict(r, wall_s=time.time() - t0)
        done[suite] = {"config": configs[suite], "keys": sorted(out),
                       "completed": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    rundir.merge_eval(run_dir, results, done)
    return results


# ---------------------------------------------------------------------------------------------
# command line


def _fmt(v, spec: str = ".3f") -> str:
    if v is None:
        return "-"
    return format(v, spec) if isinstance(v, float) else str(v)


def format_table(headers: list[str], rows: list[list]) -> str:
    """A plain-text table with right-aligned numbers."""
    cells = [headers] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_results(results: dict) -> str:
    """Readable tables of ``evaluate_run``'s results (one per suite; retrieval per set)."""
    out = []
    for key, r in results.items():
        if key == "bpb":
            rows = [[lang, "yes" if v["seen"] else "no", v["bpb"], v.get("bpb_se"), v.get("unigram_bpb"),
                     v.get("bpb_below_unigram"), v.get("bpb_below_unigram_se"), v["acc"], v["n_masked"]]
                    for lang, v in r["per_lang"].items()]
            out.append("held-out masked-LM bits per byte (s.e. over blocks; below unigram: paired on the same "
                       "tokens)\n" + format_table(["lang", "seen", "bpb", "s.e.", "unigram", "below unigram",
                                                    "s.e.", "acc", "masked"], rows))
        elif key.startswith("retrieval"):
            s = r["settings"]
            p = s["pivot"]
            for name, per_lang in r["sets"].items():
                rows = [[lang, "yes" if v["seen"] else "no", v["n"], v["to_pivot"], v["from_pivot"]]
                        for lang, v in per_lang.items()]
                if rows:
                    mean = [float(np.mean([row[3] for row in rows])), float(np.mean([row[4] for row in rows]))]
                    rows.append(["mean", "", sum(row[2] for row in rows), *mean])
                out.append(f"retrieval on {name} (layer {s['layer']}, {s['scoring']})\n" +
                           format_table(["lang", "seen", "n", f"xx→{p}", f"{p}→xx"], rows))
        elif key == "pll":
            rows = [[lang, "yes" if v["seen"] else "no", v["source"], v["texts"], v["tokens"], v["bpb"]]
                    for lang, v in r["per_lang"].items()]
            out.append("pseudo-log-likelihood, bits per byte\n" +
                       format_table(["lang", "seen", "text", "texts", "tokens", "PLL bpb"], rows))
        elif key == "tokenizer":
            rows = [[lang, "yes" if v["seen"] else "no", v["source"], v["tokens_per_char"], v["tokens_per_word"],
                     v["unk_rate"], v["alp"]] for lang, v in r["per_lang"].items()]
            out.append("tokenizer\n" + format_table(["lang", "seen", "text", "tok/char", "tok/word", "unk", "ALP"],
                                                    rows))
        elif key == "ddtp":
            rows = [[lang, "yes" if v["seen"] else "no", v["n"], v["accuracy"], v["accuracy_std"], v["majority"]]
                    for lang, v in r["per_lang"].items()]
            rows.append(["mean", "", sum(v["n"] for v in r["per_lang"].values()), r["mean"]["accuracy"],
                         r["mean"]["accuracy_std"], None])
            out.append(f"DDTP topic accuracy, {r['mode']} from {','.join(r['train_langs'])} "
                       f"({r['n_train']} examples, {r['n_seeds']} seed(s); chance {r['chance']:.3f})\n" +
                       format_table(["lang", "seen", "n", "acc", "sd", "majority"], rows))
        else:
            out.append(f"{key}\n{json.dumps(r, indent=1, ensure_ascii=False)}")
    return "\n\n".join(out)


def _cmd_eval(args) -> int:
    suites = parse_langs(args.suite) or list(SUITES)
    extra = parse_langs(args.extra_langs) or []
    ft = apply_overrides(finetune.FinetuneConfig(), args.ft) if args.ft else None
    ddtp_ft = apply_overrides(finetune.DDTP_CONFIG, args.ft) if args.ft else None
    results = evaluate_run(args.run_dir, suites, SuiteConfig(
        langs=parse_langs(args.langs), extra_langs=tuple(extra), sets=tuple(parse_langs(args.sets) or RETRIEVAL_SETS),
        pivot=args.pivot, layer=args.layer, margin=args.margin, k=args.k, max_items=args.max_items,
        pll_texts=args.pll_texts, downstream_data=args.data, finetune_cfg=ft, device=args.device, ddtp_cfg=ddtp_ft,
        ddtp_retrieval=args.ddtp_retrieval))
    print(format_results(results))
    print(f"\nwrote {len(results)} suite(s) into {rundir.final_path(args.run_dir)} [eval]")
    return 0


def add_cli(sub) -> None:
    """``xlmr eval RUN_DIR [--suite ...]``."""
    p = sub.add_parser("eval", help="evaluate a finished run; results go into RUN_DIR/final.json [eval]",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", help="run directory (with final.json)")
    p.add_argument("--suite", default=",".join(SUITES),
                   help="comma-separated: bpb, retrieval, pll, tokenizer, xnli, ner, mlqa, glue-<task>, ddtp")
    p.add_argument("--langs", help="languages for retrieval, PLL and tokenizer metrics (and bpb); "
                                   "default: training languages + --extra-langs + a fixed list of unseen ones")
    p.add_argument("--extra-langs", help="more corpus languages to evaluate (bpb for languages not trained on)")
    p.add_argument("--sets", help=f"parallel sets for retrieval (default {','.join(RETRIEVAL_SETS)})")
    p.add_argument("--pivot", default="en", help="language every other one is retrieved against")
    p.add_argument("--layer", type=int, help="hidden state to pool for retrieval (0 = embeddings; default middle)")
    p.add_argument("--margin", action="store_true", help="ratio-margin scoring (Artetxe & Schwenk 2019)")
    p.add_argument("--k", type=int, default=4, help="neighbours in the margin")
    p.add_argument("--max-items", type=int, default=500, help="most parallel items per language and set")
    p.add_argument("--pll-texts", type=int, default=8, help="texts per language for pseudo-log-likelihood")
    p.add_argument("--data", help="directory with downstream data (xnli, ner, mlqa, glue)")
    p.add_argument("--ft", action="append", default=[], metavar="KEY=VALUE",
                   help="fine-tuning setting for downstream suites (ddtp: over finetune.DDTP_CONFIG), "
                        "e.g. --ft lr=1e-4 --ft seeds=0,1,2")
    p.add_argument("--ddtp-retrieval", type=int, default=0, metavar="N",
                   help="with --suite ddtp: also retrieve N en↔X DDTP description pairs per language")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA if present)")
    p.set_defaults(func=_cmd_eval)
