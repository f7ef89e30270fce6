"""The run directory: its file names, its checkpoints and the typed record of a finished run.

Every module that reads or writes a run goes through here (the trainer, ``evaluate``, ``finetune``, ``hf``,
``jobs``, ``results``), so a file name or a field of ``final.json`` is defined once.

Run directory::

    config.json     resolved config, model shape, tokenizer, git commit, package versions (at start)
    metrics.jsonl   one JSON object per logged step (training) or evaluation
    checkpoints/    step_00000100.pt … (model, optimizer, scheduler, step, tokens, RNG states)
    final.json      written last, when the run is complete: a run without it is not done (``RunRecord``)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .config import RunConfig, from_dict
from .errors import XlmrError
from .fsutil import atomic_write_json, atomic_write_text, disk_full_error, file_lock, fsync_dir, is_disk_full

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
FINAL_FILE = "final.json"
CHECKPOINT_DIR = "checkpoints"
_CHECKPOINT_NAME = re.compile(r"^step_(\d+)\.pt$")


def config_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / CONFIG_FILE


def metrics_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / METRICS_FILE


def final_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / FINAL_FILE


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR


# ---------------------------------------------------------------- checkpoints


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    """Where the trainer saves the checkpoint of ``step``: ``checkpoints/step_00000100.pt``."""
    return checkpoint_dir(run_dir) / f"step_{step:08d}.pt"


def checkpoint_step(path: str | os.PathLike) -> int | None:
    """The step of a checkpoint file named by ``checkpoint_path``, None for any other name."""
    m = _CHECKPOINT_NAME.match(Path(path).name)
    return int(m.group(1)) if m else None


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Checkpoint files, newest (highest step) first."""
    d = checkpoint_dir(run_dir)
    found = [p for p in d.iterdir() if checkpoint_step(p) is not None] if d.is_dir() else []
    return sorted(found, key=checkpoint_step, reverse=True)


def has_checkpoints(run_dir: str | os.PathLike) -> bool:
    """Whether the run has saved at least one checkpoint (it started and can resume)."""
    return bool(list_checkpoints(run_dir))


class _WriteErrors:
    """A file wrapper that keeps the OSError of a failed write: ``torch.save`` reports it only as a RuntimeError."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def __getattr__(self, name):  # flush, seek, tell
        return getattr(self.f, name)


def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save`` to a temporary file, fsync, rename: a crash never leaves a partial file under ``path``.

    A full disk (or quota, or file-size limit) is one XlmrError naming the file; the older checkpoints are
    untouched, so the run resumes from the newest of them once there is space.
    """
    import torch  # here, not at the top: results and the launcher read run directories without torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    out = None
    try:
        with open(tmp, "wb") as f:
            out = _WriteErrors(f)
            torch.save(state, out)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except (OSError, RuntimeError) as e:
        cause = out.error if out is not None and out.error is not None else e
        if not is_disk_full(cause):
            raise
        older = [p for p in list_checkpoints(path.parent.parent) if p != path]
        then = (f"restart: the run resumes from {older[0]}" if older else "restart the run")
        raise disk_full_error(path, cause, then) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def load_checkpoint(run_dir: str | os.PathLike, map_location="cpu") -> tuple[dict, Path] | tuple[None, None]:
    """The newest readable checkpoint; a truncated or corrupt one is skipped with a warning."""
    import torch

    for path in list_checkpoints(run_dir):
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
            if not {"model", "optimizer", "step"} <= set(state):
                raise ValueError("missing keys")
            return state, path
        except Exception as e:  # noqa: BLE001 - any unreadable file means: fall back to the previous one
            warnings.warn(f"checkpoint {path} is unreadable ({type(e).__name__}: {str(e)[:120]}); "
                          "falling back to the previous one", stacklevel=2)
    return None, None


def prune_checkpoints(run_dir: str | os.PathLike, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints."""
    for old in list_checkpoints(run_dir)[keep:]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()


# ---------------------------------------------------------------- config.json and metrics.jsonl


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise XlmrError(f"{path} is not valid JSON ({e}): the file is damaged; delete the run to redo it") from None


def read_info(run_dir: str | os.PathLike, missing_ok: bool = False) -> dict:
    """config.json of a run (written by the trainer at start); a clear error if there is none ({} if missing_ok)."""
    path = config_path(run_dir)
    if not path.exists():
        if missing_ok:
            return {}
        raise XlmrError(f"{run_dir} is not a run directory (no {CONFIG_FILE}): start it with `xlmr train`")
    return _read_json(path)


def write_info(run_dir: str | os.PathLike, info: dict) -> None:
    atomic_write_json(config_path(run_dir), info)


def append_metrics(run_dir: str | os.PathLike, rec: dict) -> None:
    """Add one record (a logged step or an evaluation) to metrics.jsonl."""
    with open(metrics_path(run_dir), "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The records of metrics.jsonl in order; a line cut by a crash is skipped."""
    path = metrics_path(run_dir)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def trim_metrics(run_dir: str | os.PathLike, last_step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (they will be written again)."""
    if not metrics_path(run_dir).exists():
        return
    keep = [rec for rec in read_metrics(run_dir) if rec.get("step", 0) <= last_step]
    atomic_write_text(metrics_path(run_dir), "".join(json.dumps(rec) + "\n" for rec in keep))


# ---------------------------------------------------------------- final.json


@dataclass(kw_only=True)
class LangResult:
    """Held-out masked-LM scores of one language at the end of training (``final.json["per_lang"][lang]``)."""

    bpb: float | None = None
    """Masked-LM loss in bits per UTF-8 byte of the held-out blocks."""
    loss_nats: float | None = None
    loss_bits: float | None = None
    """The same loss per masked token."""
    acc: float | None = None
    """Accuracy of the masked-token predictions."""
    n_masked: int | None = None
    n_blocks: int | None = None
    unigram_bpb: float | None = None
    """The context-free unigram predictor on the same tokens: the baseline of ``bpb``."""
    bpb_below_unigram: float | None = None
    unigram_gain: float | None = None
    train_tokens: int | None = None
    train_bytes: int | None = None
    """Size of the language's training split."""
    prob: float | None = None
    """Its sampling probability in training (None for an evaluation-only language)."""
    seen: bool = False
    """Whether the run trained on the language (the same name as in the evaluation suites' results)."""
    extra: dict = field(default_factory=dict)
    """Any further value a held-out scorer returned."""

    @classmethod
    def from_dict(cls, d: dict) -> LangResult:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        d = {("seen" if k == "in_training" else k): v for k, v in d.items()}  # earlier runs' name for it
        return cls(**{k: v for k, v in d.items() if k in names},
                   extra={k: v for k, v in d.items() if k not in names})

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**out, **self.extra}


@dataclass(kw_only=True)
class RunRecord:
    """``final.json``: what a finished run was and scored; the trainer writes it, evaluation suites add ``eval``."""

    name: str
    run_dir: str
    tags: list[str] = field(default_factory=list)
    seed: int = 0
    model_size: str = ""
    model: dict = field(default_factory=dict)
    """The model's shape (``asdict(ModelConfig)``)."""
    params: dict = field(default_factory=dict)
    """Parameter counts: embedding, non_embedding, lm_head, total."""
    vocab_pieces: int | None = None
    vocab_size: int | None = None
    alpha: float | None = None
    langs: list[str] = field(default_factory=list)
    n_langs: int = 0
    eval_langs: list[str] = field(default_factory=list)
    steps: int = 0
    """Optimizer steps done (``metrics.jsonl`` names a record's step ``step``)."""
    tokens: int = 0
    flops: float = 0.0
    wall_s: float = 0.0
    world_size: int = 1
    final_train_loss_bits: float | None = None
    per_lang: dict[str, LangResult] = field(default_factory=dict)
    tokenizer: str = ""
    checkpoint: str = ""
    completed: str = ""
    eval: dict[str, dict] = field(default_factory=dict)
    """Results of evaluation suites by key, as ``evaluate.evaluate_run`` merges them: each a dict with ``settings``,
    ``wall_s``, run-level values and per-language values under ``PER_LANG_KEYS`` and ``sets`` (``suite_per_lang``)."""
    extra: dict = field(default_factory=dict)
    """Keys of the file that are none of the above, kept as they are."""

    @classmethod
    def from_dict(cls, d: dict) -> RunRecord:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kw = {k: v for k, v in d.items() if k in names}
        kw["per_lang"] = {lang: LangResult.from_dict(r) for lang, r in (d.get("per_lang") or {}).items()}
        kw.setdefault("name", Path(d.get("run_dir", "")).name)
        kw.setdefault("run_dir", "")
        return cls(**kw, extra={k: v for k, v in d.items() if k not in names})

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("extra", "eval")}
        out["per_lang"] = {lang: r.to_dict() for lang, r in self.per_lang.items()}
        if self.eval:
            out["eval"] = self.eval
        return {**out, **self.extra}


PER_LANG_KEYS = ("per_lang", "n_eval")
"""Keys of a suite's result whose value is ``{lang: value}``; ``sets`` is ``{set: {lang: value}}``."""


def suite_per_lang(result: dict) -> dict[str, dict[str, dict]]:
    """A suite result's per-language values as {path: {lang: value}}, path '' for ``per_lang``, else the key or set.

    The rest of the result (settings, means, counts) is run-level.
    """
    out: dict[str, dict] = {}
    for key in PER_LANG_KEYS:
        if isinstance(result.get(key), dict):
            out["" if key == "per_lang" else key] = result[key]
    for name, per_lang in (result.get("sets") or {}).items():
        out[name] = per_lang
    return out


def read_final(run_dir: str | os.PathLike) -> RunRecord | None:
    """The record of a finished run, None while it is not done."""
    path = final_path(run_dir)
    return RunRecord.from_dict(_read_json(path)) if path.exists() else None


def write_final(run_dir: str | os.PathLike, record: RunRecord) -> None:
    atomic_write_json(final_path(run_dir), record.to_dict())


def merge_eval(run_dir: str | os.PathLike, results: dict[str, dict]) -> RunRecord:
    """Add suite results to ``final.json["eval"]`` (re-read under a lock: another evaluation may have merged)."""
    with file_lock(Path(run_dir) / ".final.lock"):
        record = read_final(run_dir)
        if record is None:
            raise XlmrError(f"{run_dir} has no {FINAL_FILE}: the run is not finished")
        record.eval.update(results)
        write_final(run_dir, record)
    return record


def is_done(run_dir: str | os.PathLike, need_eval: bool = True) -> bool:
    """Finished: final.json exists (with evaluation results when ``need_eval``)."""
    if not need_eval:
        return final_path(run_dir).exists()
    try:
        record = read_final(run_dir)
    except (OSError, XlmrError):
        return False
    return record is not None and bool(record.eval)


# ---------------------------------------------------------------- reading a run


def _in_run(run_dir: Path, recorded: Path, subdir: Path) -> Path:
    """The run's own file of the recorded name under ``subdir`` (the run directory may have moved since), else
    ``recorded`` (relative to the run directory)."""
    own = subdir / recorded.name
    return own if own.exists() else run_dir / recorded


def run_checkpoint(run_dir: str | os.PathLike) -> Path:
    """The checkpoint a run stands for: final.json's if the run is done, else the newest one saved."""
    run_dir = Path(run_dir)
    record = read_final(run_dir)
    if record is not None and record.checkpoint:
        return _in_run(run_dir, Path(record.checkpoint), checkpoint_dir(run_dir))
    found = list_checkpoints(run_dir)
    if not found:
        raise XlmrError(f"{run_dir}: no {FINAL_FILE} and no checkpoints/step_*.pt; has the run started?")
    return found[0]


def tokenizer_file(run_dir: str | os.PathLike) -> Path | None:
    """The SentencePiece model a run was trained with, as config.json (or final.json) names it."""
    run_dir = Path(run_dir)
    for path in (config_path(run_dir), final_path(run_dir)):
        if path.exists():
            tok = _read_json(path).get("tokenizer")
            if isinstance(tok, str) and tok:
                return Path(tok) if Path(tok).is_absolute() else run_dir / tok
    return None


def run_config(run_dir: str | os.PathLike) -> RunConfig:
    """The resolved config a run was started with."""
    return from_dict(RunConfig, read_info(run_dir)["config"])


def load_run(run_dir: str | os.PathLike, device="cpu", checkpoint: str | os.PathLike | None = None):
    """``(model, tokenizer, cfg)`` of a run: the final checkpoint if the run is done, else the newest."""
    import torch

    from .model import ModelConfig, XLMRForMaskedLM
    from .tokenizer import Tokenizer

    run_dir = Path(run_dir)
    info = read_info(run_dir)
    cfg = from_dict(RunConfig, info["config"])
    if checkpoint is None and read_final(run_dir) is not None:
        checkpoint = run_checkpoint(run_dir)
    if checkpoint is not None:
        state = torch.load(checkpoint, map_location=device, weights_only=True)
    else:
        state, checkpoint = load_checkpoint(run_dir, map_location=device)
        if state is None:
            raise XlmrError(f"{run_dir} has no readable checkpoint yet")
    model = XLMRForMaskedLM(ModelConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return model, Tokenizer(info["tokenizer"]), cfg
