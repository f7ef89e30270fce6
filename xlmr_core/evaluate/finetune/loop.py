"""Fine-tuning: the loop run once per seed, and the entry points ``finetune_task`` (explicit files),
``run_downstream`` (a benchmark directory, used by ``xlmr eval``) and ``ddtp_transfer`` (DDTP, offline)."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from xlmr_core.data.tokenizer import Tokenizer
from xlmr_core.democorpus.ddtp import ensure_ddtp, read_meta
from xlmr_core.errors import XlmrError
from xlmr_core.evaluate.finetune.config import FinetuneConfig
from xlmr_core.evaluate.finetune.heads import TaskModel, precision
from xlmr_core.evaluate.finetune.readers import PathLike
from xlmr_core.evaluate.finetune.tasks import Task, get_task, read_evals, read_topics
from xlmr_core.model.device import autocast, pick_device
from xlmr_core.model.hf import load as load_hf
from xlmr_core.train import rundir
from xlmr_core.train.optim import adamw, linear_schedule

log = logging.getLogger("xlmr_core.evaluate.finetune")


def _train(task: Task, model: TaskModel, items: list[dict], pad_id: int, cfg: FinetuneConfig, seed: int,
           dev) -> float:
    """Fine-tune in place; returns the mean training loss of the last epoch."""
    rng = np.random.default_rng(seed)
    steps_per_epoch = math.ceil(len(items) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    opt = adamw(model, lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps, weight_decay=cfg.weight_decay)
    # linear warmup, then linear decay to 0 (BERT / RoBERTa fine-tuning)
    sched = linear_schedule(opt, warmup=int(cfg.warmup_ratio * total), total=total, warmup_from_zero=True)
    model.train()
    last = 0.0
    for epoch in range(cfg.epochs):
        order = rng.permutation(len(items))
        losses = []
        for s in range(steps_per_epoch):
            batch = [items[i] for i in order[s * cfg.batch_size:(s + 1) * cfg.batch_size]]
            loss = task.batch_loss(model, batch, pad_id, dev, autocast(dev, precision(cfg)))
            if not torch.isfinite(loss):
                raise XlmrError(f"fine-tuning loss became {float(loss)} at epoch {epoch}, step {s}: "
                                f"lower the learning rate (lr={cfg.lr})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        last = float(np.mean(losses))
        log.info("epoch %d/%d: train loss %.4f", epoch + 1, cfg.epochs, last)
    return last


def load_encoder(model_or_path, tokenizer=None):
    """(encoder, tokenizer) from an ``XLMRForMaskedLM``, a run directory (``xlmr train``) or a
    transformers-format directory / checkpoint file (``xlmr import-hf``)."""
    if isinstance(model_or_path, nn.Module):
        if tokenizer is None:
            raise XlmrError("finetune: pass the tokenizer together with a model object")
        return model_or_path, tokenizer
    path = Path(model_or_path)
    if not path.exists():
        raise XlmrError(f"model {path} not found: pass a run directory, a checkpoint or an exported model")
    if path.is_dir() and rundir.checkpoint_dir(path).is_dir():
        model, run_tok, _ = rundir.load_run(path, device="cpu")
        return model, tokenizer or run_tok
    model, tok_path = load_hf(path)
    if tokenizer is None:
        if tok_path is None:
            raise XlmrError(f"{path} has no tokenizer model: pass tokenizer=Tokenizer('spm.model')")
        tokenizer = Tokenizer(tok_path)
    return model, tokenizer


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def finetune_task(model_or_path, tokenizer, task: str | Task, train: PathLike | Sequence[PathLike]
                  | Mapping[str, PathLike], evals: PathLike | Mapping[str, PathLike],
                  cfg: FinetuneConfig | None = None) -> dict:
    """Fine-tune once per seed on ``train`` and evaluate on every language of ``evals``.

    train: one file or several (English: zero-shot transfer to the other languages), or {lang: file}
    (translate-train-all: every language's training set, shuffled together). evals: one file (XNLI:
    all its languages) or {lang: file}. Returns dict(task, metric, train_langs, per_lang{lang: {metric, metric_std}},
    mean{metric, metric_std} (average over languages, spread over seeds), seeds[...], n_train, n_eval,
    config); scores are fractions.
    """
    cfg = cfg or FinetuneConfig()
    spec = get_task(task)
    dev = pick_device(cfg.device, what="finetune device")
    if isinstance(train, Mapping):
        train_langs, train_paths = list(train), list(train.values())
    elif isinstance(train, (str, os.PathLike)):
        train_langs, train_paths = ["en"], [train]
    else:
        train_langs, train_paths = ["en"], list(train)
    if not train_paths:
        raise XlmrError(f"{spec.name}: no training file given")
    # read every input before loading the model or training, so bad files fail fast
    per_file = [spec.read_train(p) for p in train_paths]
    if isinstance(train, Mapping) and cfg.max_train_examples is not None:
        # translate-train-all under a cap: interleave the languages so that each gets an equal share
        per_file = [[ex for group in itertools.zip_longest(*per_file) for ex in group if ex is not None]]
    train_examples = [ex for exs in per_file for ex in exs]
    if cfg.max_train_examples is not None:
        train_examples = train_examples[:cfg.max_train_examples]
    eval_sets = read_evals(spec, evals)
    if cfg.max_eval_examples is not None:
        eval_sets = {k: v[:cfg.max_eval_examples] for k, v in eval_sets.items()}

    encoder, tok = load_encoder(model_or_path, tokenizer)
    vocab = encoder.config.vocab_size
    if tok.vocab_size > vocab:
        raise XlmrError(f"tokenizer {tok.model_file} has {tok.vocab_size} ids but the model only {vocab} "
                        "embeddings: use the tokenizer the model was trained with")
    if cfg.max_len > encoder.config.max_positions:
        raise XlmrError(f"finetune max_len {cfg.max_len} exceeds the model's max_positions "
                        f"{encoder.config.max_positions}; lower max_len")
    base_state = {k: v.detach().to("cpu").clone() for k, v in encoder.state_dict().items()}
    labels = spec.label_set(train_examples)
    items = spec.items(tok, cfg, labels, train_examples)

    seeds_out = []
    for seed in cfg.seeds:
        torch.manual_seed(seed)
        enc = copy.deepcopy(encoder).to("cpu")
        enc.load_state_dict(base_state)  # every seed starts from the same pre-trained weights
        model = spec.model(enc, labels, cfg).to(dev)
        t0 = time.perf_counter()
        train_loss = _train(spec, model, items, tok.pad_id, cfg, seed, dev)
        train_s = time.perf_counter() - t0
        per_lang = {}
        for lang, examples in eval_sets.items():
            per_lang[lang] = spec.evaluate(model, tok, cfg, labels, examples, lang, dev)
        mean = {m: float(np.mean([s[m] for s in per_lang.values()])) for m in spec.metrics}
        seeds_out.append(dict(seed=seed, per_lang=per_lang, mean=mean, train_loss=train_loss, train_s=train_s))
        log.info("%s seed %d: %s", spec.name, seed, {m: round(v, 4) for m, v in mean.items()})
        del model, enc

    def summary(get) -> dict[str, float]:
        out = {}
        for m in spec.metrics:
            mu, sd = _mean_std([get(s)[m] for s in seeds_out])
            out[m], out[f"{m}_std"] = mu, sd
        return out

    return dict(
        task=spec.name,
        metric=spec.metrics[0],
        mode="translate-train-all" if isinstance(train, Mapping) else "zero-shot",
        train_langs=train_langs,
        per_lang={lang: summary(lambda s, lang=lang: s["per_lang"][lang]) for lang in eval_sets},
        mean=summary(lambda s: s["mean"]),
        n_seeds=len(seeds_out),
        seeds=seeds_out,
        n_train=len(train_examples),
        n_eval={k: len(v) for k, v in eval_sets.items()},
        config=dataclasses.asdict(cfg),
    )


def downstream_files(suite: str, data_dir: PathLike, cfg: FinetuneConfig | None = None) -> tuple:
    """(train, evals) for ``finetune_task`` found in a benchmark directory (layouts: see ``run_downstream``)."""
    task = get_task(suite)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise XlmrError(f"benchmark directory {data_dir} not found")
    return task.files(task.name, data_dir, cfg or FinetuneConfig())


def run_downstream(run_dir_or_model, tokenizer, suite: str, data_dir: PathLike,
                   cfg: FinetuneConfig | None = None) -> dict:
    """Fine-tune a run's model on a benchmark found in ``data_dir`` and evaluate every language.

    suite and layout (files are found anywhere below data_dir unless a path is shown):
    - 'xnli': ``multinli_1.0_train.txt`` (MultiNLI 1.0) and ``xnli.test.tsv`` / ``xnli.dev.tsv``
      (XNLI-1.0); translate-train-all: XNLI-MT-1.0 ``multinli.train.<lang>.tsv``;
    - 'glue-<task>' (sst-2, mrpc, qnli, rte, wnli, qqp, mnli, cola, sts-b): ``data_dir/<Task>/`` or
      ``data_dir/`` holding GLUE's ``train.tsv`` and ``dev.tsv`` (MNLI: ``dev_matched.tsv``,
      ``dev_mismatched.tsv``); always scored on dev;
    - 'ner': ``data_dir/<lang>/{train,dev,test}`` (XTREME PAN-X / WikiANN, optional suffix .txt/.tsv/
      .conll/.iob/.bio) or CoNLL's ``eng|deu|esp|ned.{train,testa,testb}``; English trains;
    - 'mlqa': ``train-v1.1.json`` (SQuAD v1.1) and MLQA_V1 ``<split>-context-<l>-question-<l>.json``;
    - 'ddtp': ``data_dir/<lang>/{train,dev,test}.tsv`` as ``democorpus.ddtp`` writes them (see ``ddtp_transfer``).
    cfg.eval_split picks dev or test; cfg.translate_train_all trains on every language's file.
    Returns ``finetune_task``'s dict plus suite and data_dir.
    """
    cfg = cfg or FinetuneConfig()
    train, evals = downstream_files(suite, data_dir, cfg)
    out = finetune_task(run_dir_or_model, tokenizer, suite, train, evals, cfg)
    return dict(suite=get_task(suite).name, data_dir=str(data_dir), **out)


# ---------------------------------------------------------------------------------------------
# DDTP: zero-shot transfer on Debian's package-description translations, built offline


DDTP_CONFIG = FinetuneConfig(lr=1e-3, epochs=4, batch_size=16, max_len=48, warmup_ratio=0.1, pooling="mean",
                             max_train_examples=1200, max_eval_examples=200, seeds=(0,))
"""The fixed settings of the ``ddtp`` suite, the same for every run so that runs compare: 300 steps (4 epochs × 75)
of 16 English descriptions (1,200 examples cycling through the 12 labels), the first 48 tokens of each, mean-pooled
(a briefly pre-trained <s> carries nothing), 200 test descriptions per language (balanced, mostly the same packages
in every language), one seed. A demo-size model (4 × 128, 4K vocabulary) takes about 35 s on one CPU thread.
Other settings through ``dataclasses.replace`` (e.g. ``seeds=(0, 1, 2)``, ``translate_train_all=True``)."""


def ddtp_transfer(run_dir_or_model, tokenizer=None, data_dir: PathLike | None = None,
                  cfg: FinetuneConfig | None = None, *, train_langs: Sequence[str] = ()) -> dict:
    """Zero-shot transfer on DDTP topic classification: fine-tune on English, accuracy in every language.

    data_dir: a built data set (default: ``democorpus.ddtp.ensure_ddtp()``, which honours ``$XLMR_DDTP`` and
    builds it on first use); cfg: ``DDTP_CONFIG`` unless given (``translate_train_all=True``: train on every
    language's translations of the training packages, an equal share each). Returns ``run_downstream``'s dict
    plus ``chance`` (1 / labels), ``data_builder_version``, and in ``per_lang[lang]``: ``majority`` (the
    majority-class rate of the evaluated items), ``n`` (items) and ``seen`` (lang in ``train_langs``).
    """
    cfg = cfg or DDTP_CONFIG
    data = ensure_ddtp(data_dir)
    _, evals = downstream_files("ddtp", data, cfg)
    majority = {}
    for lang, path in evals.items():
        gold = [e.label for e in read_topics("ddtp", path)[:cfg.max_eval_examples]]
        majority[lang] = max(gold.count(y) for y in set(gold)) / len(gold)
    out = run_downstream(run_dir_or_model, tokenizer, "ddtp", data, cfg)
    for lang, v in out["per_lang"].items():
        v.update(majority=majority[lang], n=out["n_eval"][lang], seen=lang in train_langs)
    meta = read_meta(data) or {}
    return dict(out, chance=1 / len(get_task("ddtp").labels), data_builder_version=meta.get("builder_version"))
