"""Live training curves where researchers look: TensorBoard event files in the run directory, and W&B if asked.

``metrics.jsonl`` stays the record that :mod:`xlmr_core.study.results` reads; these are views of the same numbers for
watching runs as they train. ``tensorboard --logdir runs/<study>`` finds every run's event files (they sit beside
its ``metrics.jsonl``) and compares the runs of a study live.

Scalars, against the optimizer step:

- ``train/loss_bits`` (masked-token loss in bits), ``train/lr``, ``train/grad_norm``, ``train/tokens_per_s`` and
  ``train/mfu`` (on a GPU with a known peak);
- ``heldout/bpb/<lang>`` (held-out bits per UTF-8 byte) and ``heldout/bpb_below_unigram/<lang>`` (its gap below
  the unigram baseline of the same tokenizer: what the model learned from context) at each evaluation.

Safe across resume: a run that restarts from its checkpoint at step s opens a new event file with purge step
s + 1 (as ``SummaryWriter(purge_step=...)`` does), so TensorBoard drops the points a killed process had logged
after that checkpoint (they are logged again), just as ``rundir.trim_metrics`` cuts ``metrics.jsonl``.

TensorBoard is on by default when the ``tensorboard`` package is installed (``pip install xlmr-scaling[tracking]``)
and off otherwise (``log.tensorboard=false`` turns it off). W&B (``log.wandb=offline`` or ``online``) needs the
``wandb`` package; it is never required: without it the run warns once and goes on.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import os
import socket
import time
from pathlib import Path

logger = logging.getLogger(__name__)

TRAIN_SCALARS = ("loss_bits", "lr", "grad_norm", "tokens_per_s", "mfu")
"""Keys of a metrics.jsonl training record shown as ``train/<key>``."""
HELDOUT_SCALARS = ("bpb", "bpb_below_unigram")
"""Keys of a held-out evaluation shown per language as ``heldout/<key>/<lang>``."""
WANDB_MODES = ("off", "offline", "online")


_FILE_NUMBER = itertools.count()  # event files of one process, in the order opened


def tensorboard_available() -> bool:
    """Whether the tensorboard package (its event protobufs) is installed."""
    try:
        from tensorboard.compat.proto.event_pb2 import Event  # noqa: F401
    except ImportError:
        return False
    return True


class EventFile:
    """One TensorBoard event file, written synchronously and unbuffered, one record per ``write``.

    Not torch's SummaryWriter: its background thread meets a failed write (a full disk) on its own and prints a
    traceback from there; here the failure is raised in the caller's thread, where ``Tracker`` turns it into one
    warning. The records are the ones SummaryWriter writes: a ``brain.Event:2`` header, a SessionLog START at
    ``purge_step`` (TensorBoard's reader then drops earlier files' events from that step on) and scalars as
    ``simple_value`` summaries.
    """

    def __init__(self, log_dir: str | Path, purge_step: int):
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog
        from tensorboard.summary.writer.record_writer import RecordWriter

        now = time.time()
        # the name TensorBoard's own writer gives: events.out.tfevents.<time>.<host>.<pid>.<n>
        self.path = Path(log_dir) / (f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}."
                                     f"{next(_FILE_NUMBER)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._records = RecordWriter(open(self.path, "wb", buffering=0))
        self._write(Event(wall_time=now, step=purge_step, file_version="brain.Event:2"))
        self._write(Event(wall_time=now, step=purge_step, session_log=SessionLog(status=SessionLog.START)))

    def _write(self, event) -> None:
        self._records.write(event.SerializeToString())

    def add_scalar(self, tag: str, value: float, global_step: int) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        self._write(Event(wall_time=time.time(), step=int(global_step),
                          summary=Summary(value=[Summary.Value(tag=tag, simple_value=float(value))])))

    def flush(self) -> None:
        """Nothing is buffered: every record is written when logged."""

    def close(self) -> None:
        self._records.close()


class Tracker:
    """The run's live views: ``log_train`` each logged step, ``log_heldout`` each evaluation, then ``close``."""

    def __init__(self, run_dir: str | Path, *, resume_step: int = 0, tensorboard: bool = True, wandb: str = "off",
                 wandb_project: str = "xlmr-scaling", config: dict | None = None, name: str | None = None):
        if wandb not in WANDB_MODES:
            raise ValueError(f"log.wandb={wandb!r}: must be one of {', '.join(WANDB_MODES)}")
        self.run_dir = Path(run_dir)
        self.writer = None
        self.wandb_run = None
        if tensorboard and tensorboard_available():
            try:  # purge_step: drop what a killed process logged after the checkpoint we resume from
                self.writer = EventFile(self.run_dir, purge_step=resume_step + 1)
            except OSError as e:
                logger.warning("no TensorBoard event files in %s (%s); metrics.jsonl goes on", self.run_dir, e)
        elif tensorboard:
            logger.debug("tensorboard is not installed: no event files in %s", self.run_dir)
        if wandb != "off":
            self.wandb_run = _wandb_init(self.run_dir, wandb, wandb_project, config, name or self.run_dir.name)

    def _tensorboard(self, method: str, *args, **kwargs) -> None:
        """Call the writer; a failure (a full disk) stops the event files with a warning, never the run."""
        if self.writer is None:
            return
        try:
            getattr(self.writer, method)(*args, **kwargs)
        except OSError as e:
            logger.warning("TensorBoard event files in %s stop here (%s); metrics.jsonl goes on", self.run_dir, e)
            writer, self.writer = self.writer, None
            if method != "close":
                try:
                    writer.close()
                except OSError:
                    pass

    def _scalar(self, tag: str, value, step: int) -> dict:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return {}
        self._tensorboard("add_scalar", tag, value, global_step=step)
        return {tag: value}

    def log_train(self, rec: dict) -> None:
        """A metrics.jsonl training record (``step``, ``loss_bits``, ``lr``, …) as ``train/*`` scalars."""
        step = int(rec["step"])
        logged = {}
        for key in TRAIN_SCALARS:
            logged.update(self._scalar(f"train/{key}", rec.get(key), step))
        if self.wandb_run is not None and logged:
            self.wandb_run.log({**logged, "tokens": rec.get("tokens")}, step=step)

    def log_heldout(self, step: int, per_lang: dict[str, dict]) -> None:
        """A held-out evaluation ({lang: {bpb, bpb_below_unigram, …}}) as ``heldout/<key>/<lang>`` scalars."""
        logged = {}
        for lang, r in sorted(per_lang.items()):
            for key in HELDOUT_SCALARS:
                logged.update(self._scalar(f"heldout/{key}/{lang}", r.get(key), step))
        self._tensorboard("flush")  # evaluations are rare and looked at: show them now
        if self.wandb_run is not None and logged:
            self.wandb_run.log(logged, step=step)

    def flush(self) -> None:
        """Write what is buffered (at a stop: what the next process keeps is on disk)."""
        self._tensorboard("flush")

    def close(self) -> None:
        self._tensorboard("close")
        self.writer = None
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None


def _wandb_init(run_dir: Path, mode: str, project: str, config: dict | None, name: str):
    """A W&B run for this run directory (the same id on every resume), or None with a warning if wandb is missing."""
    try:
        import wandb
    except ImportError:
        logger.warning("log.wandb=%s but the wandb package is not installed (pip install wandb): curves go to "
                       "metrics.jsonl and TensorBoard only", mode)
        return None
    run_id = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:16]  # stable across resumes
    return wandb.init(project=project, name=name, id=run_id, resume="allow", mode=mode, dir=str(run_dir),
                      config=config)
