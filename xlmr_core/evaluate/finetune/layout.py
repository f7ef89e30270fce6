"""Where each benchmark keeps its files: the directory layouts ``run_downstream`` finds them in."""

from __future__ import annotations

import re
from pathlib import Path

from xlmr_core.errors import XlmrError
from xlmr_core.evaluate.finetune.config import FinetuneConfig
from xlmr_core.evaluate.finetune.readers import GLUE_FORMAT, need_file


def _find(data_dir: Path, name: str) -> Path | None:
    """The one file called ``name`` anywhere under data_dir (None if absent; an error if ambiguous)."""
    hits = sorted(p for p in data_dir.rglob(name) if p.is_file())
    if len(hits) > 1:
        raise XlmrError(f"{data_dir}: several files named {name} ({', '.join(map(str, hits[:4]))}); "
                        "keep one or pass the files to finetune_task")
    return hits[0] if hits else None


def _find_glob(data_dir: Path, pattern: str, regex: str) -> dict[str, Path]:
    """{language: file} for files matching ``pattern`` whose name's ``regex`` group 1 is the language."""
    out: dict[str, Path] = {}
    for p in sorted(data_dir.rglob(pattern)):
        m = re.fullmatch(regex, p.name)
        if m and p.is_file():
            if m.group(1) in out:
                raise XlmrError(f"{data_dir}: two files for language {m.group(1)}: {out[m.group(1)]} and {p}")
            out[m.group(1)] = p
    return out


_CONLL_LANGS = {"eng": "en", "deu": "de", "esp": "es", "ned": "nl"}  # CoNLL-2002/2003 file prefixes
_CONLL_SPLITS = {"train": "train", "dev": "testa", "test": "testb"}
_NER_SUFFIXES = ("", ".txt", ".tsv", ".conll", ".iob", ".iob2", ".bio")

Files = tuple  # (train: a path, or {lang: path}; evals: a path, or {name: path})


def missing(data_dir: Path, task: str, what: str) -> XlmrError:
    return XlmrError(f"{data_dir}: no {what} for {task} (see finetune.run_downstream for the layout)")


def xnli_files(task: str, data_dir: Path, cfg: FinetuneConfig) -> Files:
    """MultiNLI 1.0 train (or XNLI-MT's per-language files) and XNLI-1.0's ``xnli.<split>.tsv``."""
    split = cfg.eval_split
    evals = _find(data_dir, f"xnli.{split}.tsv")
    if evals is None:
        raise missing(data_dir, task, f"xnli.{split}.tsv (XNLI-1.0)")
    en = _find(data_dir, "multinli_1.0_train.txt") or _find(data_dir, "multinli_1.0_train.tsv")
    if cfg.translate_train_all:
        train = _find_glob(data_dir, "multinli.train.*.tsv", r"multinli\.train\.([\w-]+)\.tsv")
        if not train:
            raise missing(data_dir, task, "XNLI-MT-1.0 multinli.train.<lang>.tsv files (translate-train-all)")
        if "en" not in train and en is not None:
            train = {"en": en, **train}
        return train, evals
    if en is None:
        raise missing(data_dir, task, "multinli_1.0_train.txt (MultiNLI 1.0)")
    return en, evals


def topic_files(task: str, data_dir: Path, cfg: FinetuneConfig) -> Files:
    """``<lang>/{train,dev,test}.tsv`` as ``democorpus.ddtp`` writes them; only English has dev."""
    split = cfg.eval_split
    langs = {d.name: d for d in sorted(data_dir.iterdir()) if d.is_dir() and d.name != "eval"}
    evals = {lang: d / f"{split}.tsv" for lang, d in langs.items() if (d / f"{split}.tsv").is_file()}
    if not evals:
        raise missing(data_dir, task, f"<lang>/{split}.tsv files (build the data set with `xlmr corpus ddtp`)")
    if "en" not in langs or not (langs["en"] / "train.tsv").is_file():
        raise missing(data_dir, task, "English training file en/train.tsv")
    if cfg.translate_train_all:
        train = {lang: d / "train.tsv" for lang, d in langs.items() if (d / "train.tsv").is_file()}
        return {"en": train.pop("en"), **train}, evals
    return langs["en"] / "train.tsv", evals


def glue_files(task: str, data_dir: Path, cfg: FinetuneConfig) -> Files:
    """``data_dir/<Task>/`` or ``data_dir/`` with GLUE's train.tsv and dev.tsv (GLUE's test labels are hidden)."""
    sub = data_dir / GLUE_FORMAT[task][0]
    root = sub if sub.is_dir() else data_dir
    train_file = need_file(root / "train.tsv", f"GLUE {task} train")
    if task == "glue-mnli":
        evals = {"en": root / "dev_matched.tsv", "en-mismatched": root / "dev_mismatched.tsv"}
        evals = {k: v for k, v in evals.items() if v.is_file()}
        if not evals:
            raise missing(data_dir, task, f"dev_matched.tsv in {root}")
    else:
        evals = {"en": need_file(root / "dev.tsv", f"GLUE {task} dev")}
    return train_file, evals


def ner_files(task: str, data_dir: Path, cfg: FinetuneConfig) -> Files:
    """``<lang>/{train,dev,test}`` (XTREME PAN-X / WikiANN) or CoNLL's ``eng|deu|esp|ned.{train,testa,testb}``."""
    split = cfg.eval_split
    per_lang: dict[str, dict[str, Path]] = {}
    for lang_dir in sorted(p for p in data_dir.iterdir() if p.is_dir()):  # <lang>/{train,dev,test}
        for key in ("train", "dev", "test"):
            for suffix in _NER_SUFFIXES:
                if (lang_dir / f"{key}{suffix}").is_file():
                    per_lang.setdefault(lang_dir.name, {})[key] = lang_dir / f"{key}{suffix}"
                    break
    for prefix, lang in _CONLL_LANGS.items():  # eng.train, eng.testa, eng.testb, ...
        for key, name in _CONLL_SPLITS.items():
            if (data_dir / f"{prefix}.{name}").is_file():
                per_lang.setdefault(lang, {}).setdefault(key, data_dir / f"{prefix}.{name}")
    evals = {lang: f[split] for lang, f in per_lang.items() if split in f}
    if not evals:
        raise missing(data_dir, task, f"{split} files (<lang>/{split} or eng.{_CONLL_SPLITS[split]})")
    if cfg.translate_train_all:
        train = {lang: f["train"] for lang, f in per_lang.items() if "train" in f}
        if len(train) < 2:
            raise missing(data_dir, task, "training files in two or more languages (translate-train-all)")
        return train, evals
    if "train" not in per_lang.get("en", {}):
        raise missing(data_dir, task, "English training file (en/train or eng.train)")
    return per_lang["en"]["train"], evals


def mlqa_files(task: str, data_dir: Path, cfg: FinetuneConfig) -> Files:
    """SQuAD v1.1 ``train-v1.1.json`` and MLQA_V1's ``<split>-context-<l>-question-<l>.json`` (same-language)."""
    split = cfg.eval_split
    evals = _find_glob(data_dir, f"{split}-context-*-question-*.json",
                       rf"{split}-context-([\w-]+)-question-\1\.json")
    if not evals:
        raise missing(data_dir, task, f"MLQA {split}-context-<lang>-question-<lang>.json files")
    if cfg.translate_train_all:
        raise XlmrError("mlqa translate-train-all: pass {lang: SQuAD-format training file} to finetune_task")
    train = _find(data_dir, "train-v1.1.json")
    if train is None:
        raise missing(data_dir, task, "SQuAD v1.1 train-v1.1.json")
    return train, evals

