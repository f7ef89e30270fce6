"""GPU training throughput and MFU of our XLM-R (base, large; seq 512; bf16 autocast) against transformers, with the
variants that tune it: torch.compile of the layer stack, the SDPA kernel, the cross-entropy chunk, the batch, and
activation checkpointing.

Both models start from the same weights (transformers' init, copied into ours through xlmr_core.model.hf), take the same
pre-generated masked batches (15 % masking, no padding, as in pretraining) and train with fused AdamW under bf16
autocast. First losses are checked to agree (dropout off), then the baseline (``--batch``, ``--compile``, ``--sdpa``,
``--ce-budget``, ``--ckpt``) alternates steps with transformers (eager, SDPA attention) and each further variant
(``--variant``, ``--tune``, ``--like``) runs ours alone from the same weights. Step times are CUDA-event medians
(no host sync added between steps). MFU counts ``xlmr_core.model.encoder.train_flops_for`` with the head at
masked tokens only (what the masked-LM objective needs) against the GPU's dense bf16 peak (989 TFLOP/s for
H100/H200 SXM); transformers' MFU is given both on those useful FLOPs and on the FLOPs it runs (head at every
token). Peak memory
is a model's weights and AdamW moments plus the most ``torch.cuda.max_memory_allocated`` rises during one of its
steps (gradients, activations, workspaces).
The JSON is rewritten after every variant, so a run cut short keeps what it measured.

    python benchmarks/gpu.py                                          # base and large, default settings
    python benchmarks/gpu.py --sizes base --tune --profile results/gpu_profile.json
    python benchmarks/gpu.py --sizes large --variant compile=layers,ce=2^29 --variant batch=32
    python benchmarks/gpu.py --sizes large --like results/gpu_bench.json    # base's best settings, at large
    python benchmarks/gpu.py --device cpu --sizes debug --vocab 1000 --seq 64 --batch 2 --steps 1 --warmup 1
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import gc
import json
import math
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from train_step import RESULTS, masked_batches  # noqa: E402

from xlmr_core.cliutil import OneLineParser  # noqa: E402
from xlmr_core.model.encoder import LOGITS_BUDGET, SIZES  # noqa: E402

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16 (SXM), no sparsity
DEFAULT_BATCH = {"base": 16, "large": 16}
"""The baseline batch, at which transformers runs too: its full (B·T, 250,002) logits in fp32 (log-softmax
output, its gradient) take ~16 GiB per 16 × 512 tokens, so base 16 and large 16 fit 80 GB with room."""
COMPILE = ("none", "layers", "model")
SDPA = ("auto", "flash", "efficient", "cudnn", "math")
# --tune: a greedy search over these axes in this order, each keeping the best value found so far
TUNE_CE = (2**25, 2**27, 2**29)
TUNE_SDPA = ("efficient", "cudnn")  # "auto" (the baseline) picks flash on Hopper when it can
TUNE_BATCH_FACTORS = (2, 4)
DISTINCT_BATCHES = 8  # input sets rotated through the steps (METHOD.md: never time one buffer over and over)


class UsageError(Exception):
    """A bad command-line value: printed as one line, exit status 2."""


# ---------------------------------------------------------------- variants


@dataclass(frozen=True, kw_only=True)
class Variant:
    """How our model runs in one measurement; transformers always runs eager with SDPA at the baseline batch."""

    batch: int
    """Sequences per step."""
    compile: str = "none"
    """torch.compile: none, layers (each full Layer; the last one, whose query rows change with every batch, the
    embeddings, head and loss stay eager: static shapes, no recompiles) or model (the whole forward)."""
    sdpa: str = "auto"
    """Attention kernel: auto (PyTorch picks) or only flash, efficient, cudnn or math (fails if it cannot run)."""
    ce: int = LOGITS_BUDGET
    """Logits alive at once in the chunked cross-entropy: rows per chunk = ce // vocab."""
    ckpt: bool = False
    """Activation checkpointing of every layer (memory for about a third more compute)."""

    def __post_init__(self):
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise UsageError(f"batch must be a positive integer, got {self.batch!r}")
        if self.compile not in COMPILE:
            raise UsageError(f"compile={self.compile!r}: use one of {', '.join(COMPILE)}")
        if self.sdpa not in SDPA:
            raise UsageError(f"sdpa={self.sdpa!r}: use one of {', '.join(SDPA)}")
        if isinstance(self.ce, bool) or not isinstance(self.ce, int) or self.ce < 1:
            raise UsageError(f"ce={self.ce!r} must be a positive number of logits, e.g. 2^27")

    @property
    def name(self) -> str:
        return (f"b{self.batch} ce={format_count(self.ce)} sdpa={self.sdpa} compile={self.compile}"
                + (" ckpt" if self.ckpt else ""))

    def settings(self) -> dict:
        return dataclasses.asdict(self)


def format_count(n: int) -> str:
    """2^k for powers of two, else the number."""
    return f"2^{n.bit_length() - 1}" if n > 0 and n & (n - 1) == 0 else str(n)


def parse_count(text: str, what: str) -> int:
    """A positive integer written 134217728, 2^27, 2**27 or 1e8."""
    t = text.strip().replace("**", "^")
    try:
        if "^" in t:
            base, exp = t.split("^")
            value = int(base) ** int(exp)
        else:
            value = float(t) if re.search(r"[.eE]", t) else int(t)
    except ValueError:
        raise UsageError(f"{what}={text!r} is not a number (write e.g. 32, 2^27 or 1e8)") from None
    if value != int(value) or value < 1:
        raise UsageError(f"{what}={text!r} must be a positive integer")
    return int(value)


def parse_bool(text: str, what: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"{what}={text!r}: use true or false")


VARIANT_KEYS = ("batch", "compile", "sdpa", "ce", "ckpt")


def parse_variant(spec: str, base: Variant) -> Variant:
    """``base`` with the ``key=value,...`` changes of ``spec`` (keys: batch, compile, sdpa, ce, ckpt)."""
    changes: dict = {}
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in VARIANT_KEYS:
            raise UsageError(f"--variant {spec!r}: {item!r} is not key=value with a key among "
                             f"{', '.join(VARIANT_KEYS)}")
        if key in ("batch", "ce"):
            changes[key] = parse_count(value, key)
        elif key == "ckpt":
            changes[key] = parse_bool(value, key)
        else:
            changes[key] = value.strip()
    if not changes:
        raise UsageError(f"--variant {spec!r} changes nothing: give key=value pairs, e.g. compile=layers,ce=2^27")
    return dataclasses.replace(base, **changes)


def like_variants(path: Path, batch: int) -> list[Variant]:
    """The best settings of the first size in a bench JSON (``path``), at ``batch`` and twice it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        best = best_variant(data["sizes"][0])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise UsageError(f"--like {path}: no measured variant to copy ({type(e).__name__}: {e}); run the base "
                         "benchmark first or drop --like") from None
    if best is None:
        raise UsageError(f"--like {path}: none of its variants ran; drop --like")
    settings = {k: v for k, v in best["settings"].items() if k != "batch"}
    return [Variant(batch=b, **settings) for b in (batch, 2 * batch)]


def best_variant(size_record: dict) -> dict | None:
    """The variant with the most tokens/s among those that ran."""
    ok = [v for v in size_record.get("variants", []) if v.get("status") == "ok"]
    return max(ok, key=lambda v: v["tokens_per_s"]) if ok else None


def sdpa_context(kind: str):
    """A context restricting SDPA to one kernel (``auto``: no restriction)."""
    if kind == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
               "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}[kind]
    return sdpa_kernel([backend])


# ---------------------------------------------------------------- models and steps


def configs(size: str, vocab: int, seq: int):
    """(our ModelConfig, transformers XLMRobertaConfig with SDPA attention) of a named size."""
    from transformers import XLMRobertaConfig

    from xlmr_core.model import hf
    from xlmr_core.model.encoder import model_config

    cfg = model_config(size, vocab)
    if seq > cfg.max_positions:
        raise UsageError(f"--seq {seq} exceeds size {size!r}'s max_positions {cfg.max_positions}")
    hcfg = XLMRobertaConfig(**{k: v for k, v in hf.hf_config(cfg).items() if k not in ("architectures", "dtype")},
                            attn_implementation="sdpa")
    return cfg, hcfg


def build_ours(cfg, state: dict, v: Variant, dev: torch.device):
    """(our model in train mode holding ``state`` and set up as ``v`` says, the callable the step runs)."""
    from xlmr_core.model.encoder import XLMRForMaskedLM

    with torch.device(dev):
        model = XLMRForMaskedLM(cfg)
    model.load_state_dict(state)
    model.logits_budget = v.ce
    model.set_activation_checkpointing(v.ckpt)
    model.train()
    if v.compile == "layers":
        for layer in model.layers[:-1]:
            layer.compile()
    return model, (torch.compile(model) if v.compile == "model" else model)


def make_step(fwd, params, which: str, sdpa: str, dev: torch.device):
    """One training step (forward, backward, fused AdamW) as a function of (input_ids, labels) → detached loss.

    ``step.resident()`` gives the bytes the model keeps between steps: weights and AdamW moments.
    """
    params = list(params)
    opt = torch.optim.AdamW(params, lr=1e-4, fused=True)

    def step(x, y):
        with sdpa_context(sdpa), torch.autocast(dev.type, dtype=torch.bfloat16):
            out = fwd(x, y) if which == "ours" else fwd(input_ids=x, labels=y)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss.detach()

    def resident() -> int:
        states = (t for st in opt.state.values() for t in st.values() if torch.is_tensor(t))
        return sum(t.numel() * t.element_size() for t in (*params, *states))

    step.resident = resident
    return step


def timed_steps(runs: dict, batches: list, warmup: int, steps: int, dev: torch.device) -> dict:
    """Warm-up, then ``steps`` alternating timed steps of each run: times, losses, peak memory per run.

    Peak memory of a run is its resident weights and AdamW moments plus the most its steps allocate on top
    (gradients, activations, workspaces): the other run's resident memory, when two alternate, does not count.
    """
    cuda = dev.type == "cuda"
    out = {k: dict(times=[], losses=[], peak=0, peak_step=0) for k in runs}
    t0 = time.perf_counter()
    for i in range(warmup):
        for k, fn in runs.items():
            out[k]["losses"].append(fn(*batches[i % len(batches)]))
    if cuda:
        torch.cuda.synchronize(dev)
    warmup_s = time.perf_counter() - t0
    marks = {k: [] for k in runs}
    for i in range(steps):
        x, y = batches[(warmup + i) % len(batches)]
        for k, fn in runs.items():
            if cuda:
                # the caching allocator counts on the host as kernels are queued: no sync needed to read the peak
                torch.cuda.reset_peak_memory_stats(dev)
                before = torch.cuda.memory_allocated(dev)
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                out[k]["losses"].append(fn(x, y))
                end.record()
                marks[k].append((start, end))
                out[k]["peak_step"] = max(out[k]["peak_step"], torch.cuda.max_memory_allocated(dev) - before)
            else:
                t = time.perf_counter()
                out[k]["losses"].append(fn(x, y))
                out[k]["times"].append(time.perf_counter() - t)
    if cuda:
        torch.cuda.synchronize(dev)
        for k in runs:
            out[k]["times"] = [s.elapsed_time(e) / 1e3 for s, e in marks[k]]
    for k in runs:
        out[k]["losses"] = [float(x) for x in torch.stack(out[k]["losses"]).float().cpu()] if out[k]["losses"] else []
        out[k]["warmup_s"] = warmup_s
        if cuda:
            out[k]["peak"] = runs[k].resident() + out[k]["peak_step"]
        else:
            out[k]["peak"] = out[k]["peak_step"] = None
    return out


def free(dev: torch.device) -> None:
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def measure_matmul_tflops(dev: torch.device, n: int = 8192, reps: int = 10) -> float | None:
    """bf16 matrix-product rate on random data (the measured ceiling beside the datasheet peak)."""
    if dev.type != "cuda":
        return None
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        a @ b
    end.record()
    torch.cuda.synchronize(dev)
    return 2 * n**3 * reps / (start.elapsed_time(end) / 1e3) / 1e12


# ---------------------------------------------------------------- one size


class SizeBench:
    """Everything measured for one named size: the transformers baseline and our variants."""

    def __init__(self, size: str, args, dev: torch.device, peak_flops: float | None, deadline: float, save):
        from xlmr_core.model import hf
        from xlmr_core.model.encoder import train_flops_for

        self.size, self.args, self.dev, self.peak = size, args, dev, peak_flops
        self.deadline, self.save = deadline, save
        self.cfg, self.hcfg = configs(size, args.vocab, args.seq)
        self.batch = args.batch or DEFAULT_BATCH.get(size, 16)
        self.base = Variant(batch=self.batch, compile=args.compile, sdpa=args.sdpa, ce=args.ce_budget,
                            ckpt=args.ckpt)
        self._batches: dict[int, list] = {}
        self._flops = lambda tokens, masked_only: train_flops_for(self.cfg, tokens, args.seq, args.mask_rate,
                                                                  masked_only=masked_only)
        torch.manual_seed(0)
        self.theirs = self._build_theirs()
        self.state = {k: v.detach().clone() for k, v in
                      hf.from_hf_state_dict(self.theirs.state_dict(), self.cfg).items()}
        self.record = dict(size=size, seq=args.seq, vocab=args.vocab, mask_rate=args.mask_rate,
                           params=sum(v.numel() for k, v in self.state.items()),
                           gflop_per_token=dict(useful=self._flops(1, True) / 1e9,
                                                transformers=self._flops(1, False) / 1e9),
                           first_loss=None, transformers=None, variants=[], best=None)

    def _build_theirs(self):
        from transformers import XLMRobertaForMaskedLM

        with torch.device(self.dev):
            return XLMRobertaForMaskedLM(self.hcfg)

    def batches(self, batch: int) -> list:
        if batch not in self._batches:
            n = min(DISTINCT_BATCHES, self.args.warmup + self.args.steps)
            self._batches[batch] = [(x.to(self.dev), y.to(self.dev)) for x, y in
                                    masked_batches(n, batch, self.args.seq, self.args.vocab, self.args.mask_rate)]
        return self._batches[batch]

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def first_losses(self) -> None:
        """Same function: the first losses of both models agree with dropout off (bf16 rounds differently)."""
        model, _ = build_ours(self.cfg, self.state, self.base, self.dev)
        x, y = self.batches(self.batch)[0]
        model.eval()
        self.theirs.eval()
        try:
            with torch.no_grad(), torch.autocast(self.dev.type, dtype=torch.bfloat16):
                lt = self.theirs(input_ids=x, labels=y).loss.item()
                lo = model(x, y).loss.item()
        except Exception as e:  # noqa: BLE001 - recorded; the timings still run
            self.record["first_loss"] = dict(agree=None, error=f"{type(e).__name__}: {e}"[:300])
            del model
            free(self.dev)
            return
        finally:
            self.theirs.train()
        agree = abs(lt - lo) <= 2e-2 * max(1.0, abs(lt))
        self.record["first_loss"] = dict(transformers=lt, ours=lo, agree=agree, tolerance="2e-2 relative, bf16")
        if not agree:
            print(f"WARNING {self.size}: first losses differ: transformers {lt:.5f}, ours {lo:.5f}", flush=True)
        del model
        free(self.dev)

    def _rates(self, batch: int, step_s: float) -> tuple[float, float | None]:
        tokens = batch * self.args.seq
        mfu = self._flops(tokens, True) / step_s / self.peak if self.peak else None
        return tokens / step_s, mfu

    def _variant_record(self, v: Variant, r: dict, tf_tokens_per_s: float | None) -> dict:
        step_s = statistics.median(r["times"])
        tps, mfu = self._rates(v.batch, step_s)
        return dict(name=v.name, settings=v.settings(), status="ok", step_s=step_s, tokens_per_s=tps, mfu=mfu,
                    useful_tflops=self._flops(v.batch * self.args.seq, True) / step_s / 1e12,
                    speedup_vs_transformers=tps / tf_tokens_per_s if tf_tokens_per_s else None,
                    peak_memory_bytes=r["peak"], peak_step_memory_bytes=r["peak_step"],
                    warmup_s=r["warmup_s"], steps=len(r["times"]),
                    loss_first=r["losses"][0] if r["losses"] else None,
                    loss_last=r["losses"][-1] if r["losses"] else None,
                    losses_finite=all(math.isfinite(x) for x in r["losses"]))

    def baseline(self) -> None:
        """Our baseline variant alternating with transformers, step by step (then transformers is freed)."""
        v = self.base
        model, fwd = build_ours(self.cfg, self.state, v, self.dev)
        runs = {"ours": make_step(fwd, model.parameters(), "ours", v.sdpa, self.dev)}
        if not self.args.no_transformers:
            runs["transformers"] = make_step(self.theirs, self.theirs.parameters(), "transformers", "auto", self.dev)
        try:
            r = timed_steps(runs, self.batches(v.batch), self.args.warmup, self.args.steps, self.dev)
        except Exception as e:  # noqa: BLE001 - then ours alone, so that the size still has its figures
            status = "oom" if isinstance(e, torch.cuda.OutOfMemoryError) else "error"
            self.record["transformers"] = dict(batch=v.batch, status=status, error=f"{type(e).__name__}: {e}"[:300])
            print(f"{self.size}: the paired baseline failed ({status}): {e!s:.200}; ours alone next", flush=True)
            del model, fwd, runs
            self._drop_theirs()
            self.run(v)["baseline"] = True
            return
        tf = None
        if "transformers" in r:
            t = r["transformers"]
            step_s = statistics.median(t["times"])
            tokens = v.batch * self.args.seq
            tf = dict(batch=v.batch, step_s=step_s, tokens_per_s=tokens / step_s,
                      mfu_useful=self._flops(tokens, True) / step_s / self.peak if self.peak else None,
                      mfu_executed=self._flops(tokens, False) / step_s / self.peak if self.peak else None,
                      peak_memory_bytes=t["peak"], peak_step_memory_bytes=t["peak_step"],
                      loss_first=t["losses"][0] if t["losses"] else None,
                      paired_speedup=statistics.median(a / b for a, b in zip(t["times"], r["ours"]["times"])),
                      attention="sdpa (auto)", compile="none")
            self.record["transformers"] = tf
        rec = self._variant_record(v, r["ours"], tf["tokens_per_s"] if tf else None)
        rec["baseline"] = True
        self.record["variants"].append(rec)
        del model, fwd, runs
        self._drop_theirs()

    def _drop_theirs(self) -> None:
        self.theirs = None
        free(self.dev)

    def reference_tokens_per_s(self) -> float | None:
        return (self.record.get("transformers") or {}).get("tokens_per_s")

    def seen(self, v: Variant) -> dict | None:
        return next((r for r in self.record["variants"] if r["settings"] == v.settings()), None)

    def run(self, v: Variant, *, retry_oom: bool = True) -> dict:
        """Measure one variant of ours (skipped when measured already or when time is short); records and saves."""
        if (done := self.seen(v)) is not None:
            return done
        need = self.args.compile_reserve if v.compile != "none" else self.args.variant_reserve
        if self.left() < need:
            rec = dict(name=v.name, settings=v.settings(), status="skipped",
                       error=f"time: {self.left():.0f} s left, {need:.0f} s wanted")
            self.record["variants"].append(rec)
            self.save()
            return rec
        model = fwd = step = None
        try:
            model, fwd = build_ours(self.cfg, self.state, v, self.dev)
            step = make_step(fwd, model.parameters(), "ours", v.sdpa, self.dev)
            r = timed_steps({"ours": step}, self.batches(v.batch), self.args.warmup, self.args.steps, self.dev)
            rec = self._variant_record(v, r["ours"], self.reference_tokens_per_s())
        except torch.cuda.OutOfMemoryError as e:
            rec = dict(name=v.name, settings=v.settings(), status="oom", error=str(e)[:300])
        except Exception as e:  # noqa: BLE001 - a kernel that cannot run this shape is a result, not a crash
            rec = dict(name=v.name, settings=v.settings(), status="error", error=f"{type(e).__name__}: {e}"[:500])
        del model, fwd, step  # before a retry: the failed attempt's weights and moments must go
        if v.compile != "none":
            import torch._dynamo as dynamo

            dynamo.reset()  # the next variant compiles afresh (SDPA and budget settings are baked in)
        free(self.dev)
        self.record["variants"].append(rec)
        self._print(rec)
        self.save()
        if rec["status"] == "oom" and retry_oom and not v.ckpt:
            # activation checkpointing only where memory demands it
            return self.run(dataclasses.replace(v, ckpt=True), retry_oom=False)
        return rec

    def best(self) -> Variant:
        b = best_variant(self.record)
        return Variant(**b["settings"]) if b else self.base

    def tune(self, before_compile=None) -> None:
        """Greedy search: CE chunk, SDPA kernel, batch, then compile of the layer stack; each keeps the best.

        The eager axes are cheap (seconds each); compilation costs tens of seconds, so it comes last, after
        ``before_compile`` (the profile of the best eager variant, kept if compiling runs out of time).
        """
        best = self.best

        for ce in TUNE_CE:
            self.run(dataclasses.replace(best(), ce=ce))
        for kernel in TUNE_SDPA:
            self.run(dataclasses.replace(best(), sdpa=kernel))
        start = best().batch
        for f in TUNE_BATCH_FACTORS:
            rec = self.run(dataclasses.replace(best(), batch=start * f))
            if rec["status"] != "ok":
                break
        if before_compile is not None:
            before_compile()
        self.run(dataclasses.replace(best(), compile="layers"))

    def finish(self) -> None:
        b = best_variant(self.record)
        self.record["best"] = b["name"] if b else None

    def _print(self, r: dict) -> None:
        if r["status"] != "ok":
            print(f"{self.size:<6} {r['name']:<48} {r['status']}: {r.get('error', '')[:160]}", flush=True)
            return
        mem = f"{r['peak_memory_bytes'] / 2**30:6.1f} GiB" if r["peak_memory_bytes"] else "   -"
        mfu = f"{r['mfu']:6.1%}" if r["mfu"] is not None else "   -"
        sp = f"{r['speedup_vs_transformers']:5.2f}x" if r["speedup_vs_transformers"] else "   -"
        print(f"{self.size:<6} {r['name']:<48} {r['tokens_per_s']:10.0f} tok/s  MFU {mfu}  vs HF {sp}  "
              f"peak {mem}  warm-up {r['warmup_s']:5.1f} s", flush=True)


# ---------------------------------------------------------------- profile


def _ev(e, *names):
    for n in names:
        if hasattr(e, n):
            return getattr(e, n) or 0
    return 0


PROFILE_GROUPS = (  # first match wins; aten op names (and the loss's own ops) grouped into what limits the step
    ("attention", r"scaled_dot_product|flash|efficient_attention|cudnn_attention|_sdpa"),
    ("matmul", r"aten::(mm|addmm|bmm|matmul|linear|baddbmm)\b|gemm"),
    ("cross-entropy", r"log_softmax|_softmax|exp_|argmax|gather|index_put|sub_"),
    ("optimizer", r"_fused_adam|adamw|_foreach"),
    ("layernorm", r"layer_norm"),
    ("dropout", r"dropout|bernoulli|native_dropout"),
    ("gelu", r"gelu"),
    ("copy/cast", r"copy_|_to_copy|aten::to\b|contiguous|clone"),
    ("embedding", r"embedding"),
)


def profile_variant(sb: SizeBench, v: Variant, path: Path, steps: int) -> dict:
    """torch.profiler over a few steps of variant ``v``: top ops and kernels by device time, grouped costs."""
    from torch.profiler import ProfilerActivity, profile

    cuda = sb.dev.type == "cuda"
    model, fwd = build_ours(sb.cfg, sb.state, v, sb.dev)
    step = make_step(fwd, model.parameters(), "ours", v.sdpa, sb.dev)
    batches = sb.batches(v.batch)
    for i in range(max(2, sb.args.warmup)):
        step(*batches[i % len(batches)])
    if cuda:
        torch.cuda.synchronize(sb.dev)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        t = time.perf_counter()
        for i in range(steps):
            step(*batches[i % len(batches)])
        if cuda:
            torch.cuda.synchronize(sb.dev)
        wall = time.perf_counter() - t
    events = prof.key_averages()
    dev_self = ("self_device_time_total", "self_cuda_time_total") if cuda else ("self_cpu_time_total",)
    ops = [e for e in events if str(getattr(e, "device_type", "")).endswith("CPU")] or list(events)
    kernel_total = sum(_ev(e, *dev_self) for e in events if cuda and str(e.device_type).endswith("CUDA"))
    if not cuda:
        kernel_total = sum(_ev(e, *dev_self) for e in ops)
    ops.sort(key=lambda e: _ev(e, *dev_self), reverse=True)
    us_per_step = 1e6 * wall / steps

    def row(e):
        t_us = _ev(e, *dev_self)
        return dict(name=e.key, calls_per_step=e.count / steps, ms_per_step=t_us / steps / 1e3,
                    share_of_step=t_us / steps / us_per_step)

    groups: dict[str, float] = {}
    for e in ops:
        t_us = _ev(e, *dev_self)
        if not t_us:
            continue
        g = next((name for name, pat in PROFILE_GROUPS if re.search(pat, e.key)), "other")
        groups[g] = groups.get(g, 0.0) + t_us / steps / 1e3
    kernels = []
    if cuda:
        ks = sorted((e for e in events if str(e.device_type).endswith("CUDA")),
                    key=lambda e: _ev(e, *dev_self), reverse=True)
        kernels = [row(e) for e in ks[:10]]
    try:
        table = events.table(sort_by=dev_self[0], row_limit=25)
    except (AttributeError, KeyError, ValueError):
        table = events.table(sort_by=dev_self[-1], row_limit=25)
    res = dict(size=sb.size, variant=v.name, settings=v.settings(), steps=steps, step_ms=1e3 * wall / steps,
               device_busy_share=kernel_total / (1e6 * wall) if wall else None,
               top_ops=[row(e) for e in ops[:15]], top_kernels=kernels,
               groups_ms_per_step=dict(sorted(groups.items(), key=lambda kv: -kv[1])), table=table,
               date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
               command=" ".join([Path(sys.executable).name] + sys.argv))
    del model, fwd, step
    free(sb.dev)
    from xlmr_core.fsutil import atomic_write_json

    atomic_write_json(path, res)
    top = ", ".join(f"{r['name']} {r['share_of_step']:.0%}" for r in res["top_ops"][:3])
    busy = f"{res['device_busy_share']:.0%}" if res["device_busy_share"] is not None else "-"
    print(f"profile {sb.size} {v.name}: {res['step_ms']:.1f} ms/step, device busy {busy}; top: {top}", flush=True)
    return res


def profile_best(sb: SizeBench, out: dict, save) -> None:
    """Profile ``sb``'s best variant into ``out["profile"]`` (and --profile), unless it is profiled already."""
    best = best_variant(sb.record)
    if best is None:
        print(f"profile: no variant of {sb.size} ran; nothing to profile", flush=True)
        return
    if (out["profile"] or {}).get("variant") == best["name"]:
        return
    try:
        out["profile"] = profile_variant(sb, Variant(**best["settings"]), sb.args.profile, sb.args.profile_steps)
    except Exception as e:  # noqa: BLE001 - the measurements before it still count
        out["profile"] = dict(status="error", error=f"{type(e).__name__}: {e}"[:500])
        print(f"profile failed: {out['profile']['error']}", flush=True)
    save()


# ---------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(prog="benchmarks/gpu.py", description=__doc__.splitlines()[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="base,large", help="named sizes from xlmr_core.model.encoder.SIZES "
                                                             "(comma-separated)")
    ap.add_argument("--batch", type=int, default=None, help="baseline sequences per step (default: base 32, large 16)")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=250002)
    ap.add_argument("--mask-rate", type=float, default=0.15)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps per variant first (compilation happens here)")
    ap.add_argument("--compile", default="none", help=f"baseline torch.compile: {', '.join(COMPILE)}")
    ap.add_argument("--sdpa", default="auto", help=f"baseline attention kernel: {', '.join(SDPA)}")
    ap.add_argument("--ce-budget", default=str(LOGITS_BUDGET),
                    help=f"baseline logits per cross-entropy chunk (default 2^{LOGITS_BUDGET.bit_length() - 1})")
    ap.add_argument("--ckpt", action="store_true", help="baseline with activation checkpointing")
    ap.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE,...",
                    help="a further variant of ours: changes to the baseline among batch, compile, sdpa, ce, ckpt, "
                         "e.g. compile=layers,ce=2^29 (repeatable)")
    ap.add_argument("--tune", action="store_true",
                    help="greedy search: ce " + "/".join(format_count(c) for c in TUNE_CE) + ", sdpa "
                         + "/".join(TUNE_SDPA) + ", batch x" + "/x".join(map(str, TUNE_BATCH_FACTORS))
                         + ", then compile=layers, each from the best so far")
    ap.add_argument("--like", type=Path, default=None, metavar="JSON",
                    help="variants: the best settings of the first size in this earlier output, at the baseline "
                         "batch and twice it")
    ap.add_argument("--no-transformers", action="store_true", help="skip the transformers baseline")
    ap.add_argument("--profile", type=Path, default=None, metavar="JSON",
                    help="profile the best variant of the first size and write the top costs here")
    ap.add_argument("--profile-steps", type=int, default=3)
    ap.add_argument("--time-budget", type=float, default=0.0,
                    help="seconds: start no variant after this (0: no limit); what ran is kept")
    ap.add_argument("--variant-reserve", type=float, default=10.0, help=argparse.SUPPRESS)
    ap.add_argument("--compile-reserve", type=float, default=40.0, help=argparse.SUPPRESS)
    ap.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak (default: known from the name)")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                    help="cuda (the benchmark) or cpu (a smoke run of the same code: no MFU or memory)")
    ap.add_argument("--json", type=Path, default=RESULTS / "gpu_bench.json", help="output (rewritten per variant)")
    return ap


def parse_args(argv: list[str] | None = None):
    """Parsed and checked arguments; every bad value is one line naming the flag (exit status 2)."""
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        args.size_list = [s for s in args.sizes.split(",") if s]
        if not args.size_list:
            raise UsageError("--sizes is empty: give e.g. base,large")
        unknown = [s for s in args.size_list if s not in SIZES]
        if unknown:
            raise UsageError(f"--sizes: unknown size {unknown[0]!r}; choose among {', '.join(SIZES)}")
        for flag in ("steps", "seq", "vocab", "profile_steps"):
            if getattr(args, flag) < 1:
                raise UsageError(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
        if args.warmup < 0 or (args.batch is not None and args.batch < 1):
            raise UsageError("--warmup must be >= 0 and --batch >= 1")
        if not 0 < args.mask_rate < 1:
            raise UsageError(f"--mask-rate {args.mask_rate} must be in (0, 1)")
        if args.time_budget < 0:
            raise UsageError(f"--time-budget {args.time_budget} must be >= 0")
        if args.peak_tflops is not None and args.peak_tflops <= 0:
            raise UsageError(f"--peak-tflops {args.peak_tflops} must be > 0")
        args.ce_budget = parse_count(args.ce_budget, "--ce-budget")
        base = Variant(batch=args.batch or 1, compile=args.compile, sdpa=args.sdpa, ce=args.ce_budget, ckpt=args.ckpt)
        for spec in args.variant:
            parse_variant(spec, base)  # checked now, applied per size (its own baseline batch)
        if args.like is not None and not args.like.is_file():
            raise UsageError(f"--like {args.like}: no such file")
    except UsageError as e:
        ap.error(str(e))
    return args


def peak_tflops(name: str, override: float | None) -> float | None:
    """Dense bf16 peak of the GPU named ``name`` (or ``override``); None if unknown (MFU is then left out)."""
    if override:
        return override
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("benchmarks/gpu.py: error: needs a CUDA GPU and none is visible (torch.cuda.is_available() is False); "
              "run it on a GPU machine, or pass --device cpu for a smoke run", file=sys.stderr)
        return 2
    dev = torch.device(args.device)
    t_start = time.monotonic()
    deadline = t_start + args.time_budget if args.time_budget else float("inf")
    import transformers

    from xlmr_core.fsutil import atomic_write_json

    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls outside autocast (none in the hot path)
        torch.backends.cudnn.allow_tf32 = True
    else:
        import platform

        name = f"CPU ({platform.processor() or platform.machine()}, smoke run)"
    peak = peak_tflops(name, args.peak_tflops) if dev.type == "cuda" else None
    if dev.type == "cuda" and peak is None:
        print(f"no dense bf16 peak known for {name!r}: MFU is left out (pass --peak-tflops)", flush=True)
    meta = dict(date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"), gpu=name,
                device=args.device, peak_tflops=peak, measured_bf16_matmul_tflops=measure_matmul_tflops(dev),
                torch=torch.__version__, cuda=torch.version.cuda, transformers=transformers.__version__,
                seq=args.seq, vocab=args.vocab, steps=args.steps, warmup=args.warmup, precision="bf16 autocast",
                optimizer="AdamW fused", dropout=0.1, command=" ".join([Path(sys.executable).name] + sys.argv),
                timing="median of CUDA-event step times" if dev.type == "cuda" else "median of wall-clock steps")
    out = dict(meta=meta, sizes=[], profile=None)

    def save():
        out["meta"]["wall_s"] = time.monotonic() - t_start
        atomic_write_json(args.json, out)

    print(f"{name}, peak {peak or 0:.0f} TFLOP/s dense bf16 (measured matmul "
          f"{meta['measured_bf16_matmul_tflops'] or 0:.0f}), seq {args.seq}, vocab {args.vocab}, bf16 autocast, "
          f"median of {args.steps} steps after {args.warmup} warm-up", flush=True)
    # a profile of the first size's best variant runs before the later sizes: keep time for it
    profile_reserve = 30.0 if args.profile else 0.0
    for i, size in enumerate(args.size_list):
        sb = SizeBench(size, args, dev, peak * 1e12 if peak else None,
                       deadline - (profile_reserve if i == 0 else 0.0), save)
        out["sizes"].append(sb.record)
        sb.first_losses()
        sb.baseline()
        sb._print(sb.record["variants"][-1])
        if (sb.record["transformers"] or {}).get("tokens_per_s"):
            t = sb.record["transformers"]
            mfu = f"{t['mfu_useful']:6.1%} useful, {t['mfu_executed']:6.1%} executed" if t["mfu_useful"] else "-"
            print(f"{size:<6} {'transformers b' + str(t['batch']):<48} {t['tokens_per_s']:10.0f} tok/s  MFU {mfu}  "
                  f"paired speed-up of ours {t['paired_speedup']:.2f}x", flush=True)
        save()
        for spec in args.variant:
            sb.run(parse_variant(spec, sb.base))
        if args.like is not None:
            for v in like_variants(args.like, sb.batch):
                sb.run(v)
        first_with_profile = args.profile is not None and i == 0
        if args.tune:
            sb.tune(before_compile=functools.partial(profile_best, sb, out, save) if first_with_profile else None)
        sb.finish()
        save()
        if first_with_profile:
            sb.deadline = deadline  # the time kept for this profile
            profile_best(sb, out, save)
        del sb
        free(dev)
    save()
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UsageError as e:
        print(f"benchmarks/gpu.py: error: {e}", file=sys.stderr)
        sys.exit(2)
