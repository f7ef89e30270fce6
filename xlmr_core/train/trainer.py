"""The MLM trainer: prepare (tokenizer, shards) → train → held-out evaluation, in one readable loop.

Exact resumption rests on one principle from DESIGN.md: a step's batch is a pure function of
(seed, step, rank, world size) and its dropout noise is seeded from (seed, step, rank), so a
restarted run needs only the step counter and the state in the newest checkpoint to continue
bit for bit (on CPU) as if it had never stopped. The files it writes are laid out by
:mod:`xlmr_core.train.rundir`; what a run is set up from (process group, data, model, optimizer, budget) is
:mod:`xlmr_core.train.setup`.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist

from xlmr_core import __version__
from xlmr_core.config import RunConfig, apply_overrides, load_config, to_dict
from xlmr_core.data import BatchIterator, MaskConfig, repetition, unique_tokens
from xlmr_core.errors import XlmrError
from xlmr_core.evaluate.heldout import LN2, bpb_suite, without_blocks
from xlmr_core.model.device import autocast, peak_bf16_flops, pick_device
from xlmr_core.model.encoder import logits_budget, predicted_positions
from xlmr_core.train import rundir

# the run's set-up (process group, data, model, optimizer, budget): importable from here as before
from xlmr_core.train.setup import Budget as Budget
from xlmr_core.train.setup import (
    DistInfo,
    Prepared,
    _all_reduce,
    _barrier,
    _host_sum,
    _sync,
    build_model,
    build_optimizer,
    check_config,
    init_distributed,
    lr_factor,
    prepare,
    resolve_budget,
)
from xlmr_core.train.setup import _model_config as _model_config
from xlmr_core.train.tracking import Tracker

# ---------------------------------------------------------------- provenance


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict:
    import numpy
    import sentencepiece

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "sentencepiece": sentencepiece.__version__, "xlmr_core": __version__}


# ---------------------------------------------------------------- preemption


class _PreemptFlag:
    """Catches SIGUSR2/SIGTERM; the loop saves at the next step boundary, then hands the signal on."""

    def __init__(self):
        self.signum: int | None = None
        self.previous: dict[int, object] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGUSR2, signal.SIGTERM):
            self.previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        self.signum = signum

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}

    def forward(self) -> None:
        """Call the handler that was installed before ours (submitit's requeues the job), or exit."""
        signum, prev = self.signum, self.previous.get(self.signum)
        self.restore()
        if callable(prev):
            prev(signum, None)
        raise SystemExit(128 + signum)


# ---------------------------------------------------------------- the loop


def _step_seed(seed: int, step: int, rank: int) -> int:
    # dropout noise as a pure function of (seed, step, rank): resuming needs no RNG bookkeeping
    return (seed * 1_000_003 + step) * 4099 + rank


def evaluate_heldout(model, prep: Prepared, cfg: RunConfig, device: torch.device) -> dict:
    """Held-out masked-LM loss per language, in bits per UTF-8 byte, on fixed blocks and mask draws."""
    with autocast(device, cfg.precision.dtype):
        return bpb_suite(model, prep.tokenizer, prep.shards, prep.eval_langs, seq_len=cfg.data.seq_len,
                         cfg=cfg.eval, device=device)


@dataclass
class _Progress:
    """What a checkpoint carries besides the weights: the step counter and the budget spent."""

    step: int = 0
    tokens: int = 0
    flops: float = 0.0
    wall_before: float = 0.0
    """Seconds of training in earlier processes of this run (before the resume)."""


def loader_workers(requested: int | None, device: torch.device) -> int:
    """Batch-building processes for one training process: ``requested``, or by default up to 4 on a GPU.

    A small model on a GPU consumes tens of millions of tokens/s at the scales' assumed MFU, several times what one
    process builds (benchmarks/loader.py), and a loader thread contends for the GIL with the launching thread.
    The default leaves one core per local training process for it; on the CPU the cores train, so 0 (a thread).
    """
    if requested is not None:
        return requested
    if device.type != "cuda":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(0, min(4, cores // max(local, 1) - 1))


class _Trainer:
    """One process's share of a run: set up, resumed from the newest checkpoint, stepped, finished."""

    def __init__(self, cfg: RunConfig, run_dir: Path):
        self.cfg, self.run_dir = cfg, run_dir
        probe = DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                         int(os.environ.get("LOCAL_RANK", 0)))
        self.device = pick_device(cfg.precision.device, what="precision.device", local_rank=probe.local_rank)
        self.d = d = init_distributed(self.device)
        G = cfg.data.batch_blocks
        if G % d.world_size:
            raise XlmrError(f"global batch of {G} blocks (data.batch_tokens / data.seq_len) is not divisible by "
                            f"{d.world_size} processes: change data.batch_tokens")
        per_rank = G // d.world_size
        self.micro = cfg.data.micro_batch_blocks or per_rank
        if per_rank % self.micro:
            raise XlmrError(f"{per_rank} blocks per process is not a multiple of "
                            f"data.micro_batch_blocks={self.micro}")
        self.accum = per_rank // self.micro
        self.prep = prepare(cfg)
        self.tok = self.prep.tokenizer
        self.model = build_model(cfg, self.tok.vocab_size).to(self.device)
        # the loss's chunk from the memory free before the first step: few, large GEMMs on a GPU
        self.model.logits_budget = logits_budget(self.device, self.tok.vocab_size)
        self.budget = resolve_budget(cfg, self.model)
        warmup = rundir.read_info(run_dir, missing_ok=True).get("warmup_steps")
        if cfg.schedule.warmup_steps < 0 and warmup is not None and rundir.has_checkpoints(run_dir):
            # a resumed (or extended) run keeps the warm-up it started with, not 6 % of a new length
            self.budget = replace(self.budget, warmup_steps=min(warmup, self.budget.total_steps))
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, self.budget, cfg.schedule.end_lr_ratio))
        self.at = _Progress()
        self.loss: float | None = None
        self.t_run = time.time()
        self.peak = peak_bf16_flops(self.device, cfg.precision.peak_tflops)  # one device's; None: unknown
        self.tracker: Tracker | None = None  # the main process's TensorBoard / W&B views, opened by write_info
        self.echo = False  # a line per log interval on stdout where no progress bar shows (job logs, pipes)

    def resume(self) -> Path | None:
        """Continue from the newest readable checkpoint, if any; returns its path.

        Read onto the CPU: the weights are copied into the model's device tensors, the optimizer moves its state
        to its parameters' device, and the RNG state must stay a CPU ByteTensor (``torch.set_rng_state``).
        """
        state, path = rundir.read_checkpoint_state(self.run_dir, map_location="cpu")
        if state is not None:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.at = _Progress(int(state["step"]), int(state["tokens"]), float(state["flops"]),
                                float(state["wall_s"]))
            torch.set_rng_state(state["rng"]["torch"].to("cpu", torch.uint8))
        return path

    def write_info(self, resumed_from: Path | None) -> None:
        """config.json (the run as it starts now), metrics.jsonl cut back to the step we resume from and the live
        views (``tracking``) opened from that step."""
        if self.d.is_main:
            cfg, prep, b = self.cfg, self.prep, self.budget
            self.run_dir.mkdir(parents=True, exist_ok=True)
            rundir.write_info(self.run_dir, {
                "config": to_dict(cfg), "model_config": asdict(self.model.config),
                "params": self.model.param_counts(), "tokenizer": str(self.tok.model_file),
                "shards": str(prep.shards.root), "langs": prep.langs, "eval_langs": prep.eval_langs,
                "probs": prep.probs, "total_steps": b.total_steps, "warmup_steps": b.warmup_steps,
                "tokens_per_step": b.tokens_per_step, "flops_per_step": b.flops_per_step,
                "world_size": self.d.world_size, "grad_accum": self.accum, "peak_flops": self.peak,
                "resumed_from": str(resumed_from) if resumed_from else None, "git_commit": _git_commit(),
                "versions": _versions(), "host": socket.gethostname(), "started": _now()})
            rundir.trim_metrics(self.run_dir, self.at.step)
            log = cfg.log
            self.tracker = Tracker(self.run_dir, resume_step=self.at.step, tensorboard=log.tensorboard,
                                   wandb=log.wandb, wandb_project=log.wandb_project, config=to_dict(cfg),
                                   name=cfg.name or None)
        _barrier(self.d)

    def wall_s(self) -> float:
        return self.at.wall_before + time.time() - self.t_run

    def save(self) -> None:
        """Checkpoint the current step (main process), keep the newest ``checkpoint.keep``."""
        if self.d.is_main:
            at = self.at
            rundir.save_checkpoint(rundir.checkpoint_path(self.run_dir, at.step), {
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "step": at.step, "tokens": at.tokens,
                "flops": at.flops, "wall_s": self.wall_s(), "rng": {"torch": torch.get_rng_state()},
                "model_config": asdict(self.model.config), "tokenizer": str(self.tok.model_file)})
            rundir.prune_checkpoints(self.run_dir, self.cfg.checkpoint.keep)
        _barrier(self.d)

    def batches(self) -> BatchIterator:
        """This process's micro-batches of every remaining step, built ahead by the data loader."""
        cfg, tok, d = self.cfg, self.tok, self.d
        mask = MaskConfig(mask_prob=cfg.data.mask_prob, whole_word=cfg.data.whole_word_mask)
        return BatchIterator(
            self.prep.shards, self.prep.probs, start=self.at.step, end=self.budget.total_steps, prefetch=2,
            workers=loader_workers(cfg.data.loader_workers, self.device), pin_memory=self.device.type == "cuda",
            accum=self.accum, seed=cfg.seed, rank=d.rank, world_size=d.world_size, batch_blocks=self.micro,
            seq_len=cfg.data.seq_len, mask=mask, vocab_size=tok.vocab_size, mask_id=tok.mask_id,
            special_ids=tok.special_ids, word_starts=tok.is_word_start if cfg.data.whole_word_mask else None)

    def host_plan(self, micro_batches: list[dict]) -> tuple[list, list[int], float, bool]:
        """The host's part of a step: where the head runs in each micro-batch, the masked-token counts of this
        process and of the global batch, and whether any process was asked to stop; all from CPU tensors."""
        pad = self.model.config.padding_idx
        plans = [predicted_positions(b["input_ids"], b["labels"], pad) for b in micro_batches]
        n_micro = [p.n for p in plans]
        # normalise by the masked tokens of the whole global batch (fairseq's sample_size): the preemption flag
        # rides along in the same gloo all-reduce of host numbers
        n_global, stops = _host_sum([float(sum(n_micro)), float(self.preempt.signum is not None)], self.d)
        return plans, n_micro, n_global, stops > 0

    def step(self, fwd, ddp_model, micro_batches: list[dict]) -> tuple[torch.Tensor, torch.Tensor, float]:
        """One optimizer step on the global batch; returns (loss, grad norm) on the device and the step's lr.

        Nothing is read back from the device: the counts come from the host's batches (:meth:`host_plan`).
        """
        cfg, d, device, model = self.cfg, self.d, self.device, self.model
        torch.manual_seed(_step_seed(cfg.seed, self.at.step, d.rank))
        model.train()
        plans, n_micro, n_global, self.stop_now = self.host_plan(micro_batches)
        loss_sum = torch.zeros((), device=device)
        for m, b in enumerate(micro_batches):
            sync = m == self.accum - 1 or d.world_size == 1
            ctx = contextlib.nullcontext() if sync else ddp_model.no_sync()
            with ctx, autocast(device, cfg.precision.dtype):
                out = fwd(b["input_ids"].to(device, non_blocking=True),
                          predicted=plans[m].to(device, non_blocking=True))
                # the global mean over masked tokens: this micro-batch's share is loss · n_micro / n_global;
                # DDP averages gradients over processes, so scaling by world size makes that a sum
                (out.loss * (float(n_micro[m]) * d.world_size / n_global)).backward()
            loss_sum += out.loss_sum.detach().float()
        loss_t = _all_reduce(loss_sum, d) / max(n_global, 1.0)  # stays on the device until read back
        grad_norm_t = torch.nn.utils.clip_grad_norm_(
            model.parameters(), cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else float("inf"))
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        b = self.budget
        self.at.step += 1
        self.at.tokens += b.tokens_per_step
        self.at.flops += b.flops_per_step
        return loss_t, grad_norm_t, lr

    def check_finite(self, unread: list[tuple[int, torch.Tensor]], losses: list[float]) -> None:
        bad = next(((s, v) for (s, _), v in zip(unread, losses) if not math.isfinite(v)), None)
        if bad:
            good = rundir.list_checkpoints(self.run_dir)
            raise XlmrError(f"loss is {bad[1]} at step {bad[0]} of run {self.run_dir}: stopped. The last good "
                            f"checkpoint is {good[0] if good else 'none'}; lower optim.lr or raise "
                            "schedule.warmup_steps and restart")

    def read_back(self, unread: list[tuple[int, torch.Tensor]], grad_norm_t: torch.Tensor) -> float:
        """Read the unread steps' losses and the last grad norm from the device in one copy; check them."""
        *losses, grad_norm = torch.stack([x for _, x in unread] + [grad_norm_t.float()]).tolist()
        self.loss = losses[-1]
        self.check_finite(unread, losses)
        return grad_norm

    def wrap(self):
        """The model as the step calls it: DDP over processes, the layers compiled, as ``cfg.precision`` says."""
        cfg, d, device, model = self.cfg, self.d, self.device, self.model
        if cfg.precision.activation_checkpointing:
            model.set_activation_checkpointing(True)
        if cfg.precision.compile:
            model.compile_layers()  # not the whole model: the head's shapes change with every batch
        if d.world_size == 1:
            return model
        if cfg.precision.bf16_grad_allreduce and device.type != "cuda":
            raise XlmrError("precision.bf16_grad_allreduce=true needs NCCL (CUDA devices): set it to false on CPU")
        # Gradients live in DDP's buckets (no copy in and out). static_graph is not valid here: with it the
        # second step's gradients differ from one process's (torch 2.13, test_two_process_gloo_matches_one_process;
        # the tied embedding gets gradients from two places), and under no_sync it fails outright.
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, gradient_as_bucket_view=True)
        if cfg.precision.bf16_grad_allreduce:
            from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

            ddp.register_comm_hook(None, default_hooks.bf16_compress_hook)
        return ddp

    def loop(self, stop_after: int | None) -> bool:
        """Step until the budget is spent (True) or ``stop_after`` is reached (False, checkpointed)."""
        cfg, d, device, b = self.cfg, self.d, self.device, self.budget
        fwd = ddp_model = self.wrap()
        preempt = self.preempt = _PreemptFlag()
        preempt.install()
        progress = None
        if d.is_main:
            from tqdm.auto import tqdm

            progress = tqdm(total=b.total_steps, initial=self.at.step, desc=self.run_dir.name, unit="step",
                            disable=None, dynamic_ncols=True, file=sys.stderr)
            self.echo = bool(progress.disable)  # tqdm shows nothing away from a terminal
        # throughput and MFU over the steps' time only: evaluation and checkpoints are timed and taken out
        t_log, tok_log, steps_log, paused = time.time(), 0, 0, 0.0
        self.t_run = time.time()
        unread: list[tuple[int, torch.Tensor]] = []  # (step, loss on the device) not read back yet
        try:
            with self.batches() as batches:
                for _, micro_batches in batches:
                    loss_t, grad_norm_t, lr = self.step(fwd, ddp_model, micro_batches)
                    step, stop_now = self.at.step, self.stop_now
                    tok_log += b.tokens_per_step
                    steps_log += 1
                    log_now = step % cfg.log_interval == 0 or step == b.total_steps
                    eval_now = bool(cfg.eval.interval) and step % cfg.eval.interval == 0 and step < b.total_steps
                    save_now = step % cfg.checkpoint.interval == 0 or step == b.total_steps
                    halt = stop_after is not None and step >= stop_after and step < b.total_steps
                    # Read the loss back only where a value is used (log, evaluation, checkpoint, stop) and at this
                    # process's first step, so the host never waits for the device in between; the first
                    # non-finite step of those read is the one named, before any save.
                    unread.append((step, loss_t))
                    if self.loss is None or log_now or eval_now or save_now or stop_now or halt:
                        grad_norm = self.read_back(unread, grad_norm_t)
                        unread = []
                    if d.is_main and log_now:
                        self.log(lr, grad_norm, tok_log, steps_log, time.time() - t_log - paused)
                    if log_now:
                        t_log, tok_log, steps_log, paused = time.time(), 0, 0, 0.0
                    t_pause = time.time()
                    if progress is not None:
                        progress.update(1)
                        progress.set_postfix(loss=f"{self.loss:.3f}", refresh=False)
                    if eval_now:
                        if d.is_main:
                            rundir.append_metrics(self.run_dir, {"step": step, "tokens": self.at.tokens,
                                                                 "eval": without_blocks(self.heldout())})
                        _barrier(d)
                    if stop_now:
                        self.save()
                        if d.is_main:  # the line `sweeps/launch.py status` tells an interrupted run by
                            print(f"xlmr: interrupted by {signal.Signals(preempt.signum).name} at step {step}: saved "
                                  f"{rundir.checkpoint_path(self.run_dir, step)}; the run resumes from it",
                                  file=sys.stderr, flush=True)
                        preempt.forward()
                    if save_now or halt:
                        self.save()
                    if halt:
                        return False
                    if eval_now or save_now:
                        _sync(device)  # what they queued is theirs, not the next step's
                        paused += time.time() - t_pause
        finally:
            preempt.restore()
            if progress is not None:
                progress.close()
            if self.tracker is not None:
                self.tracker.flush()
        return True

    def log(self, lr: float, grad_norm: float, tokens: int, steps: int, step_s: float) -> None:
        """One metrics.jsonl record of the current step; throughput over the ``steps`` (``tokens``, global) of
        the last ``step_s`` seconds of stepping (evaluation and checkpoints left out).

        MFU is per device: the steps' FLOPs over the time, the world size and one device's peak (None: unknown).
        """
        b, at = self.budget, self.at
        ok = step_s > 0
        rec = {"step": at.step, "tokens": at.tokens, "flops": at.flops, "loss": self.loss,
               "loss_bits": self.loss / LN2, "lr": lr, "grad_norm": grad_norm,
               "tokens_per_s": tokens / step_s if ok else None, "step_s": step_s / steps if ok else None,
               "mfu": b.flops_per_step * steps / step_s / (self.d.world_size * self.peak) if ok and self.peak
               else None, "wall_s": self.wall_s()}
        rundir.append_metrics(self.run_dir, rec)
        if self.tracker is not None:
            self.tracker.log_train(rec)
        if self.echo:
            speed = f", {rec['tokens_per_s']:,.0f} tok/s" if rec["tokens_per_s"] else ""
            print(f"{self.run_dir.name}: step {at.step}/{b.total_steps}, loss {rec['loss_bits']:.3f} bits, "
                  f"lr {lr:.2e}{speed}, {self.wall_s():.0f}s", flush=True)

    def heldout(self) -> dict:
        """Held-out masked-LM loss per language, in bits per UTF-8 byte, on fixed blocks and mask draws."""
        per_lang = evaluate_heldout(self.model, self.prep, self.cfg, self.device)
        if self.tracker is not None:
            self.tracker.log_heldout(self.at.step, per_lang)
        return per_lang

    def finish(self) -> rundir.RunRecord | None:
        """Score the held-out text and write final.json (main process); the record, None on other ranks."""
        record = None
        if self.d.is_main:
            cfg, prep, at, tok = self.cfg, self.prep, self.at, self.tok
            per_lang = self.heldout()
            for lang, r in per_lang.items():
                meta = prep.shards.meta[lang]
                r.update(train_tokens=meta["train_tokens"], train_bytes=meta["train_bytes"],
                         prob=prep.probs.get(lang), seen=lang in prep.langs)
            rundir.append_metrics(self.run_dir, {"step": at.step, "tokens": at.tokens,
                                                 "eval": without_blocks(per_lang)})
            record = rundir.RunRecord(
                name=cfg.name or self.run_dir.name, run_dir=str(self.run_dir), tags=list(cfg.tags), seed=cfg.seed,
                model_size=cfg.model.size, model=asdict(self.model.config), params=self.model.param_counts(),
                vocab_pieces=cfg.data.vocab_size, vocab_size=tok.vocab_size, alpha=cfg.data.alpha,
                langs=prep.langs, n_langs=len(prep.langs), eval_langs=prep.eval_langs,
                steps=at.step, tokens=at.tokens, flops=at.flops, wall_s=self.wall_s(), world_size=self.d.world_size,
                final_train_loss_bits=self.loss / LN2 if self.loss is not None else None,
                repetition=repetition(at.tokens, prep.probs, unique_tokens(prep.shards, prep.langs)),
                per_lang={lang: rundir.LangResult.from_dict(r) for lang, r in per_lang.items()},
                tokenizer=str(tok.model_file), checkpoint=str(rundir.list_checkpoints(self.run_dir)[0]),
                completed=_now())
            rundir.write_final(self.run_dir, record)
            if self.tracker is not None:
                self.tracker.close()
        _barrier(self.d)
        return record


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _planned_steps(cfg: RunConfig, info: dict) -> int:
    """``resolve_budget``'s steps from the run's config.json (its FLOPs per step), without building the model."""
    s = cfg.schedule
    if s.steps:
        return s.steps
    if s.tokens:
        return math.ceil(s.tokens / cfg.data.batch_tokens)
    return math.ceil(s.flops / info["flops_per_step"])


def train(cfg: RunConfig, *, stop_after: int | None = None, restart: bool = False) -> dict | None:
    """Train (or resume, or return at once if complete) the run in ``cfg.run_dir``; returns final.json's content.

    A run directory holds one run: a config that would change the trajectory of the run there is refused
    (``rundir.check_same_run``) unless ``restart`` moves the old run aside first. A larger budget trains a
    finished run on. ``stop_after``: save the checkpoint of that step and return None without final.json, as a
    preempted job stops; a later call resumes from it.
    """
    check_config(cfg)
    run_dir = Path(cfg.run_dir).absolute()  # paths in final.json must not depend on the working directory
    if restart:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise XlmrError("--restart moves the run directory aside before the processes start: run it in one "
                            "process (or move the directory yourself), then start the job")
        moved = rundir.move_aside(run_dir)
        if moved is not None:
            print(f"xlmr: moved the old run in {run_dir} to {moved}", file=sys.stderr, flush=True)
    changes = rundir.check_same_run(run_dir, cfg)
    done = rundir.read_final(run_dir)
    if done is not None:
        if not (changes and changes.grown) or _planned_steps(cfg, rundir.read_info(run_dir)) <= done.steps:
            return done.to_dict()
        if int(os.environ.get("RANK", "0")) == 0:
            rundir.retire_final(run_dir)
    if changes and changes.grown:
        print(f"xlmr: {run_dir.name}: {changes.describe(changes.grown)}: the run trains on from its last checkpoint, "
              "its learning-rate decay laid over the new length", file=sys.stderr, flush=True)
    t_start = time.time()
    t = _Trainer(cfg, run_dir)
    t.write_info(t.resume())
    if not t.loop(stop_after):
        return None
    record = t.finish()
    if t.d.world_size > 1:
        dist.destroy_process_group()
    final = (record or rundir.read_final(run_dir)).to_dict()
    final.setdefault("prepare_and_train_s", time.time() - t_start)
    return final


# ---------------------------------------------------------------- command line


def _cli_train(args) -> int:
    items = list(args.items)
    config = items.pop(0) if items and "=" not in items[0] else None
    run = Path(config) if config else None
    if run is not None and run.is_file() and run.name == rundir.CONFIG_FILE and "config" in rundir.read_info(
            run.parent, missing_ok=True):
        run = run.parent
    if run is not None and run.is_dir():  # a run directory (or its config.json): resume it as it was started
        cfg = apply_overrides(replace(rundir.run_config(run), run_dir=str(run)), items)
    else:
        cfg = load_config(config, items)
    final = train(cfg, restart=args.restart)
    langs = final["per_lang"]
    print(f"{final['name']}: {final['steps']} steps, {final['tokens']:,} tokens, {final['wall_s']:.0f}s; "
          f"held-out bits/byte " + ", ".join(f"{k} {v['bpb']:.3f}" for k, v in sorted(langs.items())))
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("train", help="train (or resume) one run: xlmr train [CONFIG|RUN_DIR] [key.sub=value ...]")
    p.add_argument("items", nargs="*", metavar="CONFIG|key=value",
                   help="a YAML or JSON run config, or a run directory (or its config.json) to resume, then "
                        "overrides such as schedule.steps=200 data.langs=en,de")
    p.add_argument("--restart", action="store_true",
                   help="move an existing run in run_dir aside (to .old/ beside it) and start afresh")
    p.set_defaults(func=_cli_train)
