"""The run directory: its file names, its checkpoints and the typed record of a finished run.

Every module that reads or writes a run goes through here (the trainer, ``evaluate``, ``finetune``, ``hf``,
``jobs``, ``results``), so a file name or a field of ``final.json`` is defined once.

Run directory::

    config.json     resolved config, model shape, tokenizer, git commit, package versions (at start)
    metrics.jsonl   one JSON object per logged step (training) or evaluation
    checkpoints/    step_00000100.pt … (model, optimizer, scheduler, step, tokens, RNG states)
    final.json      written last, when the run is complete: a run without it is not done (``RunRecord``)

A run directory holds one run: ``config_changes`` compares a config with the one config.json records, and a
config that would change the trajectory is refused (``check_same_run``) unless the old run is moved aside.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from xlmr_core.config import RunConfig, from_dict, to_dict
from xlmr_core.errors import XlmrError
from xlmr_core.fsutil import atomic_write_json, atomic_write_text, disk_full_error, file_lock, fsync_dir, is_disk_full

CONFIG_FILE = "config.json"
JOB_FILE = "job.json"
"""The latest submission of a run (``study.jobstate``)."""
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


def read_checkpoint_state(run_dir: str | os.PathLike, map_location="cpu") -> tuple[dict, Path] | tuple[None, None]:
    """The full state of the newest readable checkpoint (weights, optimizer, scheduler, step, RNG: what a resume
    needs) and its path, (None, None) if there is none; a truncated or corrupt one is skipped with a warning.

    To get a model, use :func:`load_run`.
    """
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
    bpb_se: float | None = None
    """Its standard error over the scored blocks (None in runs scored before standard errors were kept)."""
    loss_nats: float | None = None
    loss_bits: float | None = None
    """The same loss per masked token."""
    acc: float | None = None
    """Accuracy of the masked-token predictions."""
    n_masked: int | None = None
    """Masked tokens scored (all draws)."""
    n_blocks: int | None = None
    draws: int | None = None
    """Held-out blocks scored, and the fixed mask draws of each."""
    bytes_per_token: float | None = None
    """UTF-8 bytes per text token of the held-out text (bits per token / this = bits per byte)."""
    unigram_bpb: float | None = None
    """The context-free unigram predictor on the same tokens: the baseline of ``bpb``."""
    unigram_bpb_se: float | None = None
    bpb_below_unigram: float | None = None
    bpb_below_unigram_se: float | None = None
    """Standard error of the paired difference unigram − model on the same tokens."""
    unigram_gain: float | None = None
    train_tokens: int | None = None
    train_bytes: int | None = None
    """Size of the language's training split."""
    prob: float | None = None
    """Its sampling probability in training (None for an evaluation-only language)."""
    seen: bool = False
    """Whether the run trained on the language (the same name as in the evaluation suites' results)."""
    blocks: dict | None = None
    """Per scored block (all draws summed): ``ids`` in the held-out stream, masked tokens ``n``, model ``bits``
    and ``unigram_bits``; what ``heldout.paired_difference`` pairs two runs on."""
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
    repetition: dict[str, dict] = field(default_factory=dict)
    """Per training language: ``unique_tokens`` (its training split under the run's tokenizer), ``tokens_seen``
    (``tokens × prob``, the expected count: every block draws its language independently) and ``epochs``
    (seen / unique). Empty in runs finished before repetition was recorded."""
    per_lang: dict[str, LangResult] = field(default_factory=dict)
    tokenizer: str = ""
    checkpoint: str = ""
    completed: str = ""
    eval: dict[str, dict] = field(default_factory=dict)
    """Results of evaluation suites by key, as ``evaluate.evaluate_run`` merges them: each a dict with ``settings``,
    ``wall_s``, run-level values and per-language values under ``PER_LANG_KEYS`` and ``sets`` (``suite_per_lang``)."""
    suites: dict[str, dict] = field(default_factory=dict)
    """Per suite that ran: its ``config`` (``evaluate.suite_configs``), the result ``keys`` it wrote into ``eval``
    and when it ``completed``; a suite asked with another config is due again (``missing_suites``)."""
    extra: dict = field(default_factory=dict)
    """Keys of the file that are none of the above, kept as they are."""

    @property
    def max_epochs(self) -> float | None:
        """The most epochs of any training language (None where the run did not record repetition)."""
        return max((r["epochs"] for r in self.repetition.values()), default=None)

    @classmethod
    def from_dict(cls, d: dict) -> RunRecord:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kw = {k: v for k, v in d.items() if k in names}
        kw["per_lang"] = {lang: LangResult.from_dict(r) for lang, r in (d.get("per_lang") or {}).items()}
        kw.setdefault("name", Path(d.get("run_dir", "")).name)
        kw.setdefault("run_dir", "")
        return cls(**kw, extra={k: v for k, v in d.items() if k not in names})

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in ("extra", "eval", "suites")}
        out["per_lang"] = {lang: r.to_dict() for lang, r in self.per_lang.items()}
        if self.eval:
            out["eval"] = self.eval
        if self.suites:
            out["suites"] = self.suites
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


def merge_eval(run_dir: str | os.PathLike, results: dict[str, dict], suites: dict[str, dict] | None = None
               ) -> RunRecord:
    """Add suite results to ``final.json["eval"]`` and what each suite ran with to ``["suites"]`` (re-read under a
    lock: another evaluation may have merged)."""
    with file_lock(Path(run_dir) / ".final.lock"):
        record = read_final(run_dir)
        if record is None:
            raise XlmrError(f"{run_dir} has no {FINAL_FILE}: the run is not finished")
        record.eval.update(results)
        record.suites.update(suites or {})
        write_final(run_dir, record)
    return record


def missing_suites(record: RunRecord, wanted: dict[str, dict]) -> list[str]:
    """The suites of ``wanted`` ({suite: config}) that ``record`` lacks or holds with another config.

    A run evaluated before suites recorded their config counts a result under the suite's own name as done.
    """
    out = []
    for suite, config in wanted.items():
        got = record.suites.get(suite)
        if got is None and suite in record.eval:
            continue  # recorded before suite configs were: kept as it is
        if got is None or got.get("config") != config:
            out.append(suite)
    return out


def is_done(run_dir: str | os.PathLike, need_eval: bool = True, suites: dict[str, dict] | None = None) -> bool:
    """Finished: final.json exists, with every suite of ``suites`` ({suite: config}, ``missing_suites``) or, where
    ``suites`` is None, with some evaluation result when ``need_eval``."""
    if not need_eval:
        return final_path(run_dir).exists()
    try:
        record = read_final(run_dir)
    except (OSError, XlmrError):
        return False
    if record is None:
        return False
    return not missing_suites(record, suites) if suites is not None else bool(record.eval)


def retire_final(run_dir: str | os.PathLike) -> Path:
    """Rename final.json to ``final.step_<N>.json`` (N: its steps) when a finished run trains on; the path."""
    record = read_final(run_dir)
    target = Path(run_dir) / f"final.step_{record.steps:08d}.json"
    os.replace(final_path(run_dir), target)
    return target


# ---------------------------------------------------------------- one run per directory

TRAJECTORY_FREE = ("run_dir", "name", "tags", "log_interval", "log", "checkpoint", "eval", "precision.device",
                   "precision.compile", "precision.activation_checkpointing", "precision.peak_tflops",
                   "data.micro_batch_blocks", "data.cache_dir", "data.loader_workers")
"""Config keys (and sections) that leave the trained weights as they are: labels, logging, checkpoint cadence,
held-out scoring, where it runs and how memory is traded for time (gradient accumulation over the same global
batch, recomputed activations, compiled layers, the loader's processes), and where the content-addressed cache
lives."""
BUDGET_KEYS = ("schedule.steps", "schedule.tokens", "schedule.flops")
"""The budget may grow: the run trains on from its last checkpoint (``RunChanges.grown``)."""


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _trajectory_free(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in TRAJECTORY_FREE)


def _show(v) -> str:
    text = ",".join(map(str, v)) if isinstance(v, list) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class RunChanges:
    """How a config differs from the one a run directory's config.json records."""

    differ: dict[str, tuple]
    """Keys that change the trajectory: {key: (recorded, new)}."""
    grown: dict[str, tuple]
    """Budget keys (``BUDGET_KEYS``) of the same kind that grew: {key: (recorded, new)}."""

    def describe(self, changes: dict[str, tuple]) -> str:
        return ", ".join(f"{k} {_show(a)} → {_show(b)}" for k, (a, b) in changes.items())


def config_changes(run_dir: str | os.PathLike, cfg: RunConfig) -> RunChanges | None:
    """What ``cfg`` changes against the config recorded in ``run_dir`` (None: the directory holds no run)."""
    info = read_info(run_dir, missing_ok=True)
    if "config" not in info:
        return None
    old, new = _flat(info["config"]), _flat(to_dict(cfg))
    default = _flat(to_dict(RunConfig()))  # keys added since the run started: their default then
    differ, grown = {}, {}
    for key, value in new.items():
        was = old.get(key, default.get(key))
        if _trajectory_free(key) or was == value:
            continue
        if key in BUDGET_KEYS and was and value and value > was:
            grown[key] = (was, value)
        else:
            differ[key] = (was, value)
    return RunChanges(differ, grown)


def check_same_run(run_dir: str | os.PathLike, cfg: RunConfig, restart: str = "--restart") -> RunChanges | None:
    """``config_changes``, refusing with one line where ``cfg`` would change the trajectory of the run there.

    ``restart``: the option that moves the old run aside (``move_aside``), named in the error.
    """
    changes = config_changes(run_dir, cfg)
    if changes is not None and changes.differ:
        raise XlmrError(f"{run_dir} holds another run: {changes.describe(changes.differ)} (its config.json → this "
                        f"config); start this one in a new run_dir, or give {restart} to move the old run aside "
                        f"(to {aside_path(run_dir, '<time>')}) and start afresh")
    return changes


def aside_path(run_dir: str | os.PathLike, stamp: str) -> Path:
    """Where ``move_aside`` puts a replaced run: ``<parent>/.old/<name>-<stamp>``, out of the listings of a sweep's
    runs (a sibling would be read as one more run of the sweep)."""
    run_dir = Path(run_dir)
    return run_dir.parent / ".old" / f"{run_dir.name}-{stamp}"


def move_aside(run_dir: str | os.PathLike) -> Path | None:
    """Move a run directory to ``aside_path`` with the UTC time (None if there is none); the new path."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        return None
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    target, n = aside_path(run_dir, stamp), 1
    while target.exists():
        n += 1
        target = aside_path(run_dir, f"{stamp}-{n}")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(run_dir, target)
    return target


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


def _read_checkpoint(path: str | os.PathLike) -> dict:
    import torch

    try:  # on the CPU: a GPU's tensors (and the RNG state) must not land on a device here
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise XlmrError(f"{path}: cannot read checkpoint ({str(e).splitlines()[0]})") from e


def load_run(source: str | os.PathLike, device="cpu", checkpoint: str | os.PathLike | None = None, *,
             tokenizer: bool = True):
    """``(model, tokenizer, cfg)`` of a run directory or of one checkpoint file: the one way from a checkpoint to a
    model (the trainer resumes from :func:`read_checkpoint_state` instead).

    A run directory: the weights of ``checkpoint`` if given, else of final.json's checkpoint if the run is done,
    else of the newest readable one; the tokenizer and the config the run was started with. A checkpoint file
    (the trainer's, or ``xlmr import-hf``'s): its weights, the tokenizer it records (None if it records none) and
    no config (None). The checkpoint is read on the CPU and checked (``weights.model_from_checkpoint``), then the
    model is moved to ``device``, in eval mode. ``tokenizer=False``: no tokenizer is read (None in its place).
    """
    from xlmr_core.data.tokenizer import Tokenizer
    from xlmr_core.model.weights import model_from_checkpoint

    source = Path(source)
    if source.is_file():
        if checkpoint is not None:
            raise XlmrError(f"load_run({source}): checkpoint= goes with a run directory, not a checkpoint file")
        checkpoint, cfg = source, None
    else:
        info = read_info(source)
        cfg = from_dict(RunConfig, info["config"])
        if checkpoint is None and read_final(source) is not None:
            checkpoint = run_checkpoint(source)
    if checkpoint is not None:
        state = _read_checkpoint(checkpoint)
    else:
        state, checkpoint = read_checkpoint_state(source, map_location="cpu")
        if state is None:
            raise XlmrError(f"{source} has no readable checkpoint yet")
    model = model_from_checkpoint(state, checkpoint).to(device)
    tok_file = (state.get("tokenizer") or None) if cfg is None else info["tokenizer"]
    return model, Tokenizer(tok_file) if tokenizer and tok_file else None, cfg


def holds_run(run_dir: str | os.PathLike) -> bool:
    """Whether a directory holds a run (started, finished or submitted): the one test of what a run directory is."""
    return any((Path(run_dir) / f).exists() for f in (CONFIG_FILE, FINAL_FILE, JOB_FILE))


def found_runs(directory: str | os.PathLike) -> list[Path]:
    """The run directories directly under ``directory`` (not hidden: ``.old/`` holds runs moved aside), sorted."""
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".") and holds_run(p))
