"""The data stage: language files and α-sampling (``corpus``), SentencePiece tokenizers (``tokenizer``), derived
languages (``derived``), the content-addressed cache (``cache``), and token shards, pretraining blocks and
masked-LM batches following fairseq's XLM-R recipe (``shards``, ``batches``, ``masking``; their names are
importable from ``xlmr_core.data`` itself).

A corpus is encoded once per tokenizer into memory-mapped token streams, one per language and
split (``<lang>.train.bin``, ``<lang>.heldout.bin``): every line is a document, each followed by
``</s>``. A pretraining block is ``<s>`` + (T-1) consecutive tokens of one language's stream, so
documents inside a block are separated by ``</s>`` and there is no padding (fairseq
``TokenBlockDataset(break_mode="none")`` + ``PrependTokenDataset(bos)``; Conneau et al. 2019, §3).

Batches are a pure function of (seed, step, rank, world size): block g of step s is built from
its own random generator ``default_rng([seed, s, g])``, which draws the language with the
sampling probabilities q_i, the block's offset in that language, and the mask. Resuming needs
only the step, and the global batch is the same for any number of processes.

Encoding is split into independent chunks (:func:`encode_chunk`) and a merge
(:func:`merge_chunks`), so a terabyte corpus can be encoded by a job array; :func:`shards_for`
runs the same two steps in a local process pool and caches the result.

Modules: ``shards`` (held-out split, encoding, merging, :class:`ShardSet`, held-out blocks), ``masking``
(:class:`MaskConfig`, :func:`mask_block`), ``batches`` (:func:`make_batch`, :class:`BatchIterator`), ``cli``
(``xlmr prepare``). Every name is importable from ``xlmr_core.data`` itself, the private helpers too (as
before the split), except the worker state ``_WORKER_ARGS``, which lives in ``batches`` only.
"""

from xlmr_core.data.batches import BatchIterator, block_rng, make_batch, step_batches
from xlmr_core.data.batches import _as_numpy as _as_numpy
from xlmr_core.data.batches import _as_tensors as _as_tensors
from xlmr_core.data.batches import _init_batch_worker as _init_batch_worker
from xlmr_core.data.batches import _lang_table as _lang_table
from xlmr_core.data.batches import _step_item as _step_item
from xlmr_core.data.batches import _worker_batch as _worker_batch
from xlmr_core.data.cli import _prepare as _prepare
from xlmr_core.data.cli import add_cli
from xlmr_core.data.masking import MaskConfig, mask_block
from xlmr_core.data.masking import _replacement_ids as _replacement_ids
from xlmr_core.data.masking import _special_table as _special_table
from xlmr_core.data.masking import _specials as _specials
from xlmr_core.data.shards import _COMPRESSED as _COMPRESSED
from xlmr_core.data.shards import (
           BOS,
           CHUNK_FILE,
           EOS,
           FORMAT_VERSION,
           PAD,
           SHARDS_FILE,
           SPLITS,
           UNK,
           HeldoutSplit,
           ShardSet,
           encode_chunk,
           encode_corpus,
           file_fingerprint,
           heldout_blocks,
           line_hash,
           merge_chunks,
           repetition,
           shards_for,
           token_dtype,
           unique_tokens,
)
from xlmr_core.data.shards import _chunk_dir as _chunk_dir
from xlmr_core.data.shards import _compressed_chunk_lines as _compressed_chunk_lines
from xlmr_core.data.shards import _default_workers as _default_workers
from xlmr_core.data.shards import _lang_of as _lang_of
from xlmr_core.data.shards import _load_tokenizer as _load_tokenizer
from xlmr_core.data.shards import _merge_language as _merge_language
from xlmr_core.data.shards import _plain_chunk_lines as _plain_chunk_lines
from xlmr_core.data.shards import _read_chunks as _read_chunks

__all__ = ["BOS", "CHUNK_FILE", "EOS", "FORMAT_VERSION", "PAD", "SHARDS_FILE", "SPLITS", "UNK", "BatchIterator",
           "HeldoutSplit", "MaskConfig", "ShardSet", "add_cli", "block_rng", "encode_chunk", "encode_corpus",
           "file_fingerprint", "heldout_blocks", "line_hash", "make_batch", "mask_block", "merge_chunks",
           "repetition", "shards_for", "step_batches", "token_dtype", "unique_tokens"]
