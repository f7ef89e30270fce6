"""Masked-LM batches: a pure function of (seed, step, rank, world size), built ahead in the background.

A pretraining block is ``<s>`` + (T-1) consecutive tokens of one language's stream, so documents inside a
block are separated by ``</s>`` and there is no padding (fairseq ``TokenBlockDataset(break_mode="none")`` +
``PrependTokenDataset(bos)``; Conneau et al. 2019, section 3). Block g of step s is built from its own random
generator ``default_rng([seed, s, g])`` (:func:`block_rng`), which draws the language with the sampling
probabilities q_i, the block's offset in that language, and the mask. Resuming needs only the step, and the
global batch is the same for any number of processes.

:class:`BatchIterator` builds the batches in a thread or in worker processes (spawn): those receive
``_init_batch_worker`` and ``_worker_batch`` by qualified name, and the state they share (``_WORKER_ARGS``)
lives here, beside them.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np

from xlmr_core.data.masking import MaskConfig, mask_block
from xlmr_core.data.shards import BOS, ShardSet
from xlmr_core.errors import XlmrError


def _lang_table(shards: ShardSet, probs: dict[str, float], seq_len: int) -> tuple[list[str], np.ndarray]:
    langs = sorted(lang for lang, p in probs.items() if p > 0)  # sorted: independent of dict order
    if not langs:
        raise XlmrError(f"language probabilities {probs} are all zero")
    for lang in langs:
        n = shards.meta[lang]["train_tokens"] if lang in shards.meta else None
        if n is None:
            raise XlmrError(f"language {lang!r} has a sampling probability but no shards in {shards.root} "
                            f"(available: {', '.join(shards.langs)})")
        if n < seq_len - 1:
            raise XlmrError(f"language {lang!r} has {n} training tokens, fewer than one block of {seq_len}; "
                            "use a shorter seq_len, more text, or leave the language out")
    p = np.array([probs[lang] for lang in langs], dtype=np.float64)
    return langs, np.cumsum(p / p.sum())


def block_rng(seed: int, step: int, block: int) -> np.random.Generator:
    """The random generator of global block ``block`` of ``step``: independent of ranks and world size."""
    return np.random.default_rng([seed, step, block])


def make_batch(shards: ShardSet, probs: dict[str, float], *, seed: int, step: int, rank: int, world_size: int,
               batch_blocks: int, seq_len: int, mask: MaskConfig, vocab_size: int, mask_id: int,
               special_ids: Sequence[int] | None = None, word_starts: np.ndarray | None = None) -> dict:
    """This rank's share of the global batch of ``step``: a pure function of (seed, step, rank, world_size).

    ``batch_blocks`` is the number of blocks of THIS rank (the global batch is batch_blocks ×
    world_size); rank r gets global blocks r·B … (r+1)·B - 1, so the union over ranks is the same
    for any split of a fixed global batch. Each block draws its language with ``probs`` (q_i), a
    uniform offset into that language's training stream and its mask from :func:`block_rng`.
    Returns ``input_ids`` and ``labels`` (LongTensor (B, T); labels -100 except at chosen
    positions) and ``lang`` (list of B language codes).
    """
    import torch  # here, not at the top: encoding workers never need it and it takes seconds to import

    if world_size < 1 or not 0 <= rank < world_size or batch_blocks < 1:
        raise XlmrError(f"rank {rank} of world_size={world_size} with batch_blocks={batch_blocks}: "
                        "need 0 <= rank < world_size and at least one block per rank")
    langs, cdf = _lang_table(shards, probs, seq_len)
    inputs = np.empty((batch_blocks, seq_len), dtype=np.int64)
    labels = np.empty((batch_blocks, seq_len), dtype=np.int64)
    block_langs = []
    for j in range(batch_blocks):
        rng = block_rng(seed, step, rank * batch_blocks + j)
        lang = langs[min(int(np.searchsorted(cdf, rng.random(), side="right")), len(langs) - 1)]
        stream = shards.train_tokens(lang)
        off = int(rng.integers(0, len(stream) - (seq_len - 1) + 1))
        block = np.empty(seq_len, dtype=np.int64)
        block[0] = BOS
        block[1:] = stream[off: off + seq_len - 1]
        inputs[j], labels[j] = mask_block(block, rng, mask, vocab_size, mask_id, special_ids, word_starts)
        block_langs.append(lang)
    return {"input_ids": torch.from_numpy(inputs), "labels": torch.from_numpy(labels), "lang": block_langs}


_WORKER_ARGS: tuple = ()


def _as_tensors(item):
    import torch

    if isinstance(item, list):
        return [_as_tensors(b) for b in item]
    return {k: torch.from_numpy(v) if k != "lang" else v for k, v in item.items()}


def _as_numpy(item):
    """The inverse of ``_as_tensors``, for a batch (or a step's list of them) leaving a worker process."""
    if isinstance(item, list):
        return [_as_numpy(b) for b in item]
    return {k: v.numpy() if k != "lang" else v for k, v in item.items()}


def _init_batch_worker(shards: ShardSet, probs: dict[str, float], kwargs: dict, accum: int | None) -> None:
    global _WORKER_ARGS
    _WORKER_ARGS = (shards, probs, kwargs, accum)


def step_batches(shards: ShardSet, probs: dict[str, float], *, step: int, accum: int, rank: int = 0,
                 world_size: int = 1, **kwargs) -> list[dict]:
    """This rank's share of step ``step`` as ``accum`` micro-batches of ``make_batch``.

    Micro-batch m of rank r is "rank" r·accum + m of world_size·accum, so the global batch of a step is the
    same whatever its split into processes and accumulation steps.
    """
    return [make_batch(shards, probs, step=step, rank=rank * accum + m, world_size=world_size * accum, **kwargs)
            for m in range(accum)]


def _step_item(shards: ShardSet, probs: dict[str, float], step: int, kwargs: dict, accum: int | None):
    if accum is None:
        return make_batch(shards, probs, step=step, **kwargs)
    return step_batches(shards, probs, step=step, accum=accum, **kwargs)


def _worker_batch(step: int):
    # numpy arrays travel by plain pickling; tensors would go through torch's shared-memory handles
    shards, probs, kwargs, accum = _WORKER_ARGS
    return _as_numpy(_step_item(shards, probs, step, kwargs, accum))


class BatchIterator:
    """Yields ``(step, make_batch(...))`` for steps start … end-1, computed ahead in the background.

    With ``workers=0`` one background thread builds the batches; with ``workers=N`` N processes
    build them (batches are pure functions of the step, so any process can build any step) and
    they are yielded in step order. Resuming at step s is ``BatchIterator(..., start=s)``. With ``accum=k``
    each step is this rank's list of k micro-batches (``step_batches``), as the trainer consumes it.
    """

    def __init__(self, shards: ShardSet, probs: dict[str, float], *, start: int, end: int, prefetch: int = 4,
                 workers: int = 0, pin_memory: bool = False, accum: int | None = None, **batch_kwargs):
        self.start, self.end = start, end
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._stop = threading.Event()
        self._accum = accum
        self._args = (shards, probs, batch_kwargs, pin_memory, workers, max(1, prefetch))
        self._thread = threading.Thread(target=self._work, daemon=True, name="xlmr-batches")
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _batches(self) -> Iterator[dict]:
        shards, probs, kwargs, _, workers, prefetch = self._args
        if workers <= 0:
            for step in range(self.start, self.end):
                yield _step_item(shards, probs, step, kwargs, self._accum)
            return
        # the shard set and settings go to each worker once; a task is then just a step number
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_batch_worker,
                                 initargs=(shards, probs, kwargs, self._accum)) as pool:
            pending: collections.deque = collections.deque()
            for step in range(self.start, self.end):
                pending.append(pool.submit(_worker_batch, step))
                if len(pending) >= workers + prefetch:  # bounded look-ahead, results in step order
                    yield _as_tensors(pending.popleft().result())
                if self._stop.is_set():
                    break
            while pending and not self._stop.is_set():
                yield _as_tensors(pending.popleft().result())
            for fut in pending:
                fut.cancel()

    def _work(self) -> None:
        pin = self._args[3]
        batches = self._batches()
        try:
            for step, batch in enumerate(batches, self.start):
                for b in (batch if isinstance(batch, list) else [batch]) if pin else ():
                    b["input_ids"] = b["input_ids"].pin_memory()
                    b["labels"] = b["labels"].pin_memory()
                if not self._put((step, batch, None)):
                    return
        except BaseException as e:  # handed to the consumer, raised there
            self._put((None, None, e))
            return
        finally:
            batches.close()  # shuts the worker processes down
        self._put((None, None, StopIteration()))

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> tuple[int, dict | list[dict]]:
        if self._stop.is_set():
            raise StopIteration
        step, batch, err = self._queue.get()
        if err is not None:
            self._stop.set()
            raise err
        return step, batch

    def close(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        self._thread.join(timeout=30)

    def __enter__(self) -> BatchIterator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
