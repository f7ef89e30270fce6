"""The MLM trainer: prepare (tokenizer, shards) → train → held-out evaluation, in one readable loop.

Exact resumption rests on one principle from DESIGN.md: a step's batch is a pure function of
(seed, step, rank, world size) and its dropout noise is seeded from (seed, step, rank), so a
restarted run needs only the step counter and the state in the newest checkpoint to continue
bit for bit (on CPU) as if it had never stopped.

Run directory::

    config.json     resolved config, model shape, tokenizer, git commit, package versions (at start)
    metrics.jsonl   one JSON object per logged step (training) or evaluation
    checkpoints/    step_00000100.pt … (model, optimizer, scheduler, step, tokens, RNG states)
    final.json      written last, when the run is complete: a run without it is not done
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from . import __version__
from .config import RunConfig, from_dict, load_config, to_dict
from .errors import XlmrError
from .fsutil import atomic_write_json, atomic_write_text, disk_full_error, fsync_dir, is_disk_full
from .heldout import bpb_suite

LN2 = math.log(2.0)
# dense bf16 peak of the accelerators we report MFU against (no sparsity)
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


# ---------------------------------------------------------------- distributed set-up


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the data-parallel job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group described by torchrun's variables (RANK, WORLD_SIZE, MASTER_ADDR, …).

    Inside SLURM, the launcher exports these from SLURM's own variables first
    (``submitit.helpers.TorchDistributedEnvironment().export()``). gloo on CPU, NCCL on GPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=info.rank, world_size=world,
                                timeout=datetime.timedelta(minutes=10))
    return info


def _barrier(d: DistInfo) -> None:
    if d.world_size > 1:
        dist.barrier()


def _all_reduce(x: torch.Tensor, d: DistInfo, op=None) -> torch.Tensor:
    if d.world_size > 1:
        dist.all_reduce(x, op=op or dist.ReduceOp.SUM)
    return x


# ---------------------------------------------------------------- preparation


@dataclass
class Prepared:
    """What a run trains on: tokenizer, token shards, languages and their sampling probabilities."""

    tokenizer: object
    shards: object
    langs: list[str]
    eval_langs: list[str]
    probs: dict[str, float]


def prepare(cfg: RunConfig) -> Prepared:
    """Check the corpus, then get the cached tokenizer and token shards (built once per content key)."""
    from .corpus import language_files, sampling_probs, target_sampling_probs, validate_languages
    from .data import shards_for
    from .tokenizer import tokenizer_for

    d = cfg.data
    if not d.corpus:
        raise XlmrError("data.corpus is not set: point it at a directory of <lang>.txt[.gz|.xz|.zst] files")
    langs = list(d.langs) or list(language_files(d.corpus))
    eval_langs = list(cfg.eval.langs) or langs
    tok_langs = list(d.tokenizer_langs) or langs
    # shards of the tokenizer's languages too, so runs that share a tokenizer share one shard entry
    all_langs = sorted(set(langs) | set(eval_langs) | set(tok_langs))
    validate_languages(d.corpus, all_langs)  # every bad input reported before any work starts
    cache = d.cache_dir or None
    tok = tokenizer_for(d.corpus, sorted(tok_langs), d.vocab_size, alpha=d.tokenizer_alpha or d.alpha,
                        seed=d.tokenizer_seed, sample_lines=d.tokenizer_sample_lines, cache_root=cache)
    shards = shards_for(tok, d.corpus, all_langs, cache_root=cache)
    # n_i counts training tokens (∝ fairseq's 512-token blocks), after the held-out split
    counts = {lang: shards.meta[lang]["train_tokens"] for lang in langs}
    probs = (target_sampling_probs(counts, d.alpha, d.target_langs, d.target_share) if d.target_langs
             else sampling_probs(counts, d.alpha))
    return Prepared(tok, shards, langs, eval_langs, probs)


# ---------------------------------------------------------------- model, optimizer, schedule


def build_model(cfg: RunConfig, vocab_size: int):
    """The encoder for ``cfg.model`` with the tokenizer's vocabulary, initialised from ``cfg.seed``."""
    from .model import XLMRForMaskedLM, model_config

    mcfg = model_config(cfg.model.size, vocab_size, **cfg.model.overrides())
    if cfg.data.seq_len > mcfg.max_positions:
        raise XlmrError(f"data.seq_len={cfg.data.seq_len} exceeds the model's max_positions={mcfg.max_positions} "
                        f"(size {cfg.model.size!r}): shorten the sequence or pick a larger size")
    torch.manual_seed(cfg.seed)
    return XLMRForMaskedLM(mcfg)


def build_optimizer(model: torch.nn.Module, cfg: RunConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases and LayerNorm weights (1-D parameters)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    kwargs = dict(lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), eps=cfg.optim.eps)
    try:  # the fused kernel (one launch for all parameters) exists for CUDA and, in recent torch, CPU
        return torch.optim.AdamW(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, **kwargs)


@dataclass(frozen=True)
class Budget:
    """The run's length, resolved from steps, tokens or FLOPs."""

    total_steps: int
    warmup_steps: int
    tokens_per_step: int
    flops_per_step: float


def resolve_budget(cfg: RunConfig, model) -> Budget:
    """Turn the schedule's budget into steps (rounded up) and the warm-up into steps."""
    tokens_per_step = cfg.data.batch_tokens
    flops_per_step = float(model.train_flops(tokens_per_step, cfg.data.seq_len, cfg.data.mask_prob))
    s = cfg.schedule
    if s.steps:
        steps = s.steps
    elif s.tokens:
        steps = math.ceil(s.tokens / tokens_per_step)
    else:
        steps = math.ceil(s.flops / flops_per_step)
    warmup = s.warmup_steps if s.warmup_steps >= 0 else max(1, round(0.06 * steps))
    return Budget(steps, min(warmup, steps), tokens_per_step, flops_per_step)


def lr_factor(step: int, b: Budget, end_ratio: float) -> float:
    """Linear warm-up to 1, then linear (polynomial power 1) decay to ``end_ratio`` at the last step."""
    if step < b.warmup_steps:
        return (step + 1) / b.warmup_steps
    span = max(1, b.total_steps - b.warmup_steps)
    frac = min(1.0, (step - b.warmup_steps) / span)
    return 1.0 - (1.0 - end_ratio) * frac


# ---------------------------------------------------------------- checkpoints


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint files, newest first."""
    return sorted(checkpoint_dir(run_dir).glob("step_*.pt"), reverse=True)


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


def load_checkpoint(run_dir: str | Path, map_location="cpu") -> tuple[dict, Path] | tuple[None, None]:
    """The newest readable checkpoint; a truncated or corrupt one is skipped with a warning."""
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


def _prune_checkpoints(run_dir: Path, keep: int) -> None:
    for old in list_checkpoints(run_dir)[keep:]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()


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


def _device(cfg: RunConfig, d: DistInfo) -> torch.device:
    want = cfg.precision.device
    if want == "cuda" or (want == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise XlmrError("precision.device=cuda but no CUDA device is visible: use precision.device=cpu")
        torch.cuda.set_device(d.local_rank)
        return torch.device("cuda", d.local_rank)
    return torch.device("cpu")


def _autocast(cfg: RunConfig, device: torch.device):
    dtype = cfg.precision.dtype
    if dtype == "bf16" or (dtype == "auto" and device.type == "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


def _step_seed(seed: int, step: int, rank: int) -> int:
    # dropout noise as a pure function of (seed, step, rank): resuming needs no RNG bookkeeping
    return (seed * 1_000_003 + step) * 4099 + rank


def evaluate_heldout(model, prep: Prepared, cfg: RunConfig, device: torch.device) -> dict:
    """Held-out masked-LM loss per language, in bits per UTF-8 byte, on fixed blocks and mask draws."""
    with _autocast(cfg, device):
        return bpb_suite(model, prep.tokenizer, prep.shards, prep.eval_langs, seq_len=cfg.data.seq_len,
                         max_blocks=cfg.eval.max_blocks, draws=cfg.eval.draws, seed=cfg.seed,
                         batch_blocks=cfg.eval.batch_blocks, mask_prob=cfg.eval.mask_prob, device=device)


def _trim_metrics(path: Path, last_step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (they will be written again)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= last_step:
                keep.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash
    atomic_write_text(path, "".join(x + "\n" for x in keep))


def train(cfg: RunConfig) -> dict:
    """Train (or resume, or return at once if complete) the run in ``cfg.run_dir``; returns final.json's content."""
    if not cfg.run_dir:
        raise XlmrError("run_dir is not set: give run_dir=PATH")
    run_dir = Path(cfg.run_dir).absolute()  # paths in final.json must not depend on the working directory
    final_path = run_dir / "final.json"
    if final_path.exists():
        return json.loads(final_path.read_text(encoding="utf-8"))
    t_start = time.time()
    probe = DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))
    device = _device(cfg, probe)
    d = init_distributed(device)
    G = cfg.data.batch_blocks
    if G % d.world_size:
        raise XlmrError(f"global batch of {G} blocks (data.batch_tokens / data.seq_len) is not divisible by "
                        f"{d.world_size} processes: change data.batch_tokens")
    per_rank = G // d.world_size
    micro = cfg.data.micro_batch_blocks or per_rank
    if per_rank % micro:
        raise XlmrError(f"{per_rank} blocks per process is not a multiple of data.micro_batch_blocks={micro}")
    accum = per_rank // micro

    prep = prepare(cfg)
    tok = prep.tokenizer
    model = build_model(cfg, tok.vocab_size).to(device)
    mcfg = model.config
    budget = resolve_budget(cfg, model)
    optimizer = build_optimizer(model, cfg, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, budget, cfg.schedule.end_lr_ratio))

    step, tokens_seen, flops_seen, wall_before, loss = 0, 0, 0.0, 0.0, None
    state, ck_path = load_checkpoint(run_dir, map_location=device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, tokens_seen = int(state["step"]), int(state["tokens"])
        flops_seen, wall_before = float(state["flops"]), float(state["wall_s"])
        torch.set_rng_state(state["rng"]["torch"])
    del state

    metrics_path = run_dir / "metrics.jsonl"
    if d.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "config.json", {
            "config": to_dict(cfg), "model_config": asdict(mcfg), "params": model.param_counts(),
            "tokenizer": str(tok.model_file), "shards": str(prep.shards.root), "langs": prep.langs,
            "eval_langs": prep.eval_langs, "probs": prep.probs, "total_steps": budget.total_steps,
            "warmup_steps": budget.warmup_steps, "tokens_per_step": budget.tokens_per_step,
            "flops_per_step": budget.flops_per_step, "world_size": d.world_size, "grad_accum": accum,
            "resumed_from": str(ck_path) if ck_path else None, "git_commit": _git_commit(),
            "versions": _versions(), "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
        _trim_metrics(metrics_path, step)
    _barrier(d)

    ddp_model = model
    if d.world_size > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.precision.activation_checkpointing:
        model.set_activation_checkpointing(True)
    fwd = torch.compile(ddp_model) if cfg.precision.compile else ddp_model

    from .data import MaskConfig, make_batch

    mask_cfg = MaskConfig(mask_prob=cfg.data.mask_prob, whole_word=cfg.data.whole_word_mask)

    def batches_for(s: int) -> list[dict]:
        # micro-batch m of rank r is "rank" r*accum+m of world*accum: the global batch of step s is the
        # same whatever the split into processes and accumulation steps
        return [make_batch(prep.shards, prep.probs, seed=cfg.seed, step=s, rank=d.rank * accum + m,
                           world_size=d.world_size * accum, batch_blocks=micro, seq_len=cfg.data.seq_len,
                           mask=mask_cfg, vocab_size=tok.vocab_size, mask_id=tok.mask_id,
                           special_ids=tok.special_ids,
                           word_starts=tok.is_word_start if cfg.data.whole_word_mask else None)
                for m in range(accum)]

    preempt = _PreemptFlag()
    preempt.install()
    peak = _peak_flops(device)
    progress = None
    if d.is_main:
        from tqdm.auto import tqdm

        progress = tqdm(total=budget.total_steps, initial=step, desc=run_dir.name, unit="step",
                        disable=None, dynamic_ncols=True, file=sys.stderr)
    prefetch = ThreadPoolExecutor(max_workers=1)
    pending = prefetch.submit(batches_for, step) if step < budget.total_steps else None
    t_log, tok_log = time.time(), 0
    t_run = time.time()

    def save(s: int) -> None:
        if d.is_main:
            save_checkpoint(checkpoint_dir(run_dir) / f"step_{s:08d}.pt", {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "step": s, "tokens": tokens_seen, "flops": flops_seen,
                "wall_s": wall_before + time.time() - t_run, "rng": {"torch": torch.get_rng_state()},
                "model_config": asdict(mcfg), "tokenizer": str(tok.model_file)})
            _prune_checkpoints(run_dir, cfg.checkpoint.keep)
        _barrier(d)

    try:
        while step < budget.total_steps:
            micro_batches = pending.result()
            pending = prefetch.submit(batches_for, step + 1) if step + 1 < budget.total_steps else None
            torch.manual_seed(_step_seed(cfg.seed, step, d.rank))
            model.train()
            # normalise by the masked tokens of the whole global batch (fairseq's sample_size), counted in the
            # host's batches (the model predicts exactly the labels != -100), so nothing waits for the device;
            # NCCL reduces device tensors only
            n_micro = [int((b["labels"] != -100).sum()) for b in micro_batches]
            n_local = sum(n_micro)
            n_dev = device if d.world_size > 1 else "cpu"
            n_global = _all_reduce(torch.tensor(float(n_local), device=n_dev), d).item()
            loss_sum = torch.zeros((), device=device)
            for m, b in enumerate(micro_batches):
                sync = m == accum - 1 or d.world_size == 1
                ctx = contextlib.nullcontext() if sync else ddp_model.no_sync()
                with ctx, _autocast(cfg, device):
                    out = fwd(b["input_ids"].to(device, non_blocking=True),
                              b["labels"].to(device, non_blocking=True))
                    # the global mean over masked tokens: this micro-batch's share is loss · n_micro / n_global;
                    # DDP averages gradients over processes, so scaling by world size makes that a sum
                    (out.loss * (float(n_micro[m]) * d.world_size / n_global)).backward()
                loss_sum += out.loss_sum.detach().float()
            loss_t = _all_reduce(loss_sum, d) / n_global  # stays on the device until read back below
            grad_norm_t = torch.nn.utils.clip_grad_norm_(
                model.parameters(), cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else float("inf"))
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens_seen += budget.tokens_per_step
            flops_seen += budget.flops_per_step
            tok_log += budget.tokens_per_step

            log_now = step % cfg.log_interval == 0 or step == budget.total_steps
            eval_now = bool(cfg.eval.interval) and step % cfg.eval.interval == 0 and step < budget.total_steps
            save_now = step % cfg.checkpoint.interval == 0 or step == budget.total_steps
            stop = torch.tensor(float(preempt.signum is not None), device=n_dev)
            stop_now = bool(_all_reduce(stop, d, dist.ReduceOp.MAX if d.world_size > 1 else None).item())
            # Read the loss back: on CPU every step; on CUDA only where a value is used (log, evaluation,
            # checkpoint, stop) and at this process's first step (loss is None), so the host does not wait for
            # the device each step. Either way the first non-finite step is the one named, before any save.
            if loss is None or device.type != "cuda":
                unread = []  # (step, loss on the device) not read back yet
            unread.append((step, loss_t))
            if device.type != "cuda" or loss is None or log_now or eval_now or save_now or stop_now:
                *losses, grad_norm = torch.stack([x for _, x in unread] + [grad_norm_t.float()]).tolist()
                loss = losses[-1]
                bad = next(((s, v) for (s, _), v in zip(unread, losses) if not math.isfinite(v)), None)
                unread = []
                if bad:
                    good = list_checkpoints(run_dir)
                    raise XlmrError(f"loss is {bad[1]} at step {bad[0]} of run {run_dir}: stopped. The last good "
                                    f"checkpoint is {good[0] if good else 'none'}; lower optim.lr or raise "
                                    "schedule.warmup_steps and restart")

            if d.is_main and log_now:
                dt = time.time() - t_log
                rec = {"step": step, "tokens": tokens_seen, "flops": flops_seen, "loss": loss,
                       "loss_bits": loss / LN2, "lr": lr, "grad_norm": grad_norm,
                       "tokens_per_s": tok_log / dt if dt > 0 else None,
                       "wall_s": wall_before + time.time() - t_run}
                if peak:
                    rec["mfu"] = budget.flops_per_step * (tok_log / budget.tokens_per_step) / dt / peak
                with open(metrics_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(rec) + "\n")
                t_log, tok_log = time.time(), 0
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{loss:.3f}", refresh=False)
            if eval_now:
                if d.is_main:
                    ev = evaluate_heldout(model, prep, cfg, device)
                    with open(metrics_path, "a", encoding="utf-8") as f:
                        f.write(json.dumps({"step": step, "tokens": tokens_seen, "eval": ev}) + "\n")
                _barrier(d)
            if stop_now:
                save(step)
                preempt.forward()
            if save_now:
                save(step)
    finally:
        prefetch.shutdown(wait=True, cancel_futures=True)
        preempt.restore()
        if progress is not None:
            progress.close()

    final = None
    if d.is_main:
        per_lang = evaluate_heldout(model, prep, cfg, device)
        for lang, r in per_lang.items():
            meta = prep.shards.meta[lang]
            r.update(train_tokens=meta["train_tokens"], train_bytes=meta["train_bytes"],
                     prob=prep.probs.get(lang), in_training=lang in prep.langs)
        with open(metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, "tokens": tokens_seen, "eval": per_lang}) + "\n")
        last = list_checkpoints(run_dir)[0]
        final = {
            "name": cfg.name or run_dir.name, "run_dir": str(run_dir), "tags": list(cfg.tags), "seed": cfg.seed,
            "model_size": cfg.model.size, "model": asdict(mcfg), "params": model.param_counts(),
            "vocab_pieces": cfg.data.vocab_size, "vocab_size": tok.vocab_size, "alpha": cfg.data.alpha,
            "langs": prep.langs, "n_langs": len(prep.langs), "eval_langs": prep.eval_langs,
            "steps": step, "tokens": tokens_seen, "flops": flops_seen,
            "wall_s": wall_before + time.time() - t_run, "world_size": d.world_size,
            "final_train_loss_bits": loss / LN2 if loss is not None else None,
            "per_lang": per_lang, "tokenizer": str(tok.model_file), "checkpoint": str(last),
            "completed": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        atomic_write_json(final_path, final)
    _barrier(d)
    if d.world_size > 1:
        dist.destroy_process_group()
    if final is None:
        final = json.loads(final_path.read_text(encoding="utf-8"))
    final.setdefault("prepare_and_train_s", time.time() - t_start)
    return final


# ---------------------------------------------------------------- loading a finished (or running) run


def load_run(run_dir: str | Path, device: str | torch.device = "cpu", checkpoint: str | Path | None = None):
    """``(model, tokenizer, cfg)`` of a run: the final checkpoint if the run is done, else the newest."""
    from .model import ModelConfig, XLMRForMaskedLM
    from .tokenizer import Tokenizer

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        raise XlmrError(f"{run_dir} is not a run directory (no config.json): start it with `xlmr train`")
    info = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg = from_dict(RunConfig, info["config"])
    if checkpoint is None:
        final = run_dir / "final.json"
        if final.exists():
            checkpoint = Path(json.loads(final.read_text(encoding="utf-8"))["checkpoint"])
            if not checkpoint.is_absolute() or not checkpoint.exists():
                checkpoint = checkpoint_dir(run_dir) / checkpoint.name  # a run directory that was moved
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


# ---------------------------------------------------------------- command line


def _cli_train(args) -> int:
    items = list(args.items)
    config = items.pop(0) if items and "=" not in items[0] else None
    cfg = load_config(config, items)
    final = train(cfg)
    langs = final["per_lang"]
    print(f"{final['name']}: {final['steps']} steps, {final['tokens']:,} tokens, {final['wall_s']:.0f}s; "
          f"held-out bits/byte " + ", ".join(f"{k} {v['bpb']:.3f}" for k, v in sorted(langs.items())))
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("train", help="train (or resume) one run: xlmr train [CONFIG] [key.sub=value ...]")
    p.add_argument("items", nargs="*", metavar="CONFIG|key=value",
                   help="a YAML or JSON run config, then overrides such as schedule.steps=200 data.langs=en,de")
    p.set_defaults(func=_cli_train)
