"""Token shards, batches and masking (xlmr_core.data) on the real demo corpus and tokenizer.

Runtime: about 40 s on 2 cores once conftest's demo tokenizer is cached (the shard encodes and the
subprocesses that race for a cache entry or rebuild batches dominate).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import subprocess
import sys
import textwrap
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from xlmr_core import data
from xlmr_core.data import HeldoutSplit, MaskConfig, ShardSet, make_batch, mask_block
from xlmr_core.data.corpus import language_stats, open_lines, sampling_probs
from xlmr_core.data.tokenizer import Tokenizer
from xlmr_core.errors import XlmrError

SEQ = 128  # block length in the batch tests (the masking rule does not depend on it)
SMALL_LANGS = ["ar", "el", "fi"]  # the smallest test languages, for the tests that encode again


@pytest.fixture(scope="module")
def shards(demo_tokenizer, demo_corpus, test_langs, tmp_path_factory) -> ShardSet:
    # small chunks, so that the chunked path with its line-boundary rule is what the tests exercise
    root = tmp_path_factory.mktemp("shard-cache")
    return data.shards_for(demo_tokenizer, demo_corpus, test_langs, cache_root=root, workers=2,
                           chunk_bytes=48 << 10)


def _docs(stream: np.ndarray) -> list[list[int]]:
    """Split a shard stream back into documents at </s>."""
    ends = np.flatnonzero(stream == data.EOS)
    assert len(stream) == 0 or ends[-1] == len(stream) - 1, "a stream ends with </s>"
    return [part.tolist() for part in np.split(np.asarray(stream, dtype=np.int64), ends + 1)[:-1]]


def _random_blocks(n: int, length: int, vocab: int, seed: int = 0) -> np.ndarray:
    """Blocks like ours: <s> first, then text ids with a </s> every ~40 tokens."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(4, vocab - 1, size=(n, length))
    blocks[rng.random((n, length)) < 1 / 40] = data.EOS
    blocks[:, 0] = data.BOS
    return blocks


# ----------------------------------------------------------------------------------------------
# masking


def test_mask_count_rule_exact_per_block():
    vocab, mask_id, cfg = 1002, 1001, MaskConfig()
    for i, block in enumerate(_random_blocks(300, 96, vocab)):
        maskable = int((block > data.UNK).sum())
        u = np.random.default_rng(i).random()  # the first draw of the block's generator
        _, labels = mask_block(block, np.random.default_rng(i), cfg, vocab, mask_id)
        assert (labels != -100).sum() == int(0.15 * maskable + u)


def test_mask_statistics_80_10_10():
    vocab, mask_id = 1002, 1001
    specials = (0, 1, 2, 3, mask_id)
    blocks = _random_blocks(2000, 512, vocab, seed=1)
    chosen = masked = randomised = kept = maskable = 0
    rng = np.random.default_rng(123)
    for block in blocks:
        inputs, labels = mask_block(block, rng, MaskConfig(), vocab, mask_id, specials)
        sel = labels != -100
        assert np.array_equal(labels[sel], block[sel]), "labels hold the original ids"
        assert not np.isin(block[sel], specials).any(), "special tokens are never chosen"
        assert np.array_equal(inputs[~sel], block[~sel]), "only chosen positions change"
        rand = sel & (inputs != mask_id) & (inputs != block)
        assert not np.isin(inputs[rand], specials).any(), "random replacements are never special"
        maskable += int((~np.isin(block, specials)).sum())
        chosen += int(sel.sum())
        masked += int((inputs[sel] == mask_id).sum())
        randomised += int(rand.sum())
        kept += int((sel & (inputs == block)).sum())
    # ~150K chosen positions: the binomial std of each share is <= 0.0013, the tolerance 0.01 is > 7 std
    assert abs(chosen / maskable - 0.15) < 0.01 * 0.15  # the count rule is exact in expectation
    assert abs(masked / chosen - 0.8) < 0.01
    # a random draw equal to the original (1 in ~1000) counts as kept
    assert abs(randomised / chosen - 0.1) < 0.01
    assert abs(kept / chosen - 0.1) < 0.01


@pytest.mark.parametrize("kwargs", [dict(mask_prob=0.0), dict(mask_prob=1.0), dict(leave_unmasked_prob=-0.1),
                                    dict(random_token_prob=0.6, leave_unmasked_prob=0.5)])
def test_mask_config_rejects_bad_values(kwargs):
    with pytest.raises(XlmrError):
        MaskConfig(**kwargs)


def test_mask_rate_is_configurable_and_zero_probs_follow_fairseq():
    vocab, mask_id = 1002, 1001
    cfg = MaskConfig(mask_prob=0.4, leave_unmasked_prob=0.0, random_token_prob=0.0)
    block = _random_blocks(1, 512, vocab)[0]
    inputs, labels = mask_block(block, np.random.default_rng(0), cfg, vocab, mask_id)
    sel = labels != -100
    assert abs(sel.sum() - 0.4 * (block > data.UNK).sum()) <= 1
    assert (inputs[sel] == mask_id).all()  # all chosen become <mask> when both other shares are 0


def test_whole_word_masking_masks_complete_words(demo_tokenizer, demo_corpus):
    tok = demo_tokenizer
    ws = tok.is_word_start
    lines = [x for x in open_lines(Path(demo_corpus) / "en.txt") if x][:400]
    ids, lengths = tok.encode_flat(lines)
    stream = np.insert(ids, np.cumsum(lengths), data.EOS)  # documents followed by </s>
    cfg = MaskConfig(whole_word=True)
    n_words_total = n_chosen_words = 0
    for i, start in enumerate(range(0, len(stream) - 255, 255)):
        block = np.concatenate([[data.BOS], stream[start: start + 255]])
        rng_copy = np.random.default_rng([7, i])
        inputs, labels = mask_block(block, np.random.default_rng([7, i]), cfg, tok.vocab_size, tok.mask_id,
                                    tok.special_ids, ws)
        # words: a maximal run of non-special pieces starting at a word-start piece (or after a special)
        special = np.isin(block, tok.special_ids)
        words, cur = [], None
        for p, t in enumerate(block):
            if special[p]:
                cur = None
                continue
            if cur is None or ws[t]:
                cur = []
                words.append(cur)
            cur.append(p)
        n_chosen = 0
        for w in words:
            sel = labels[w] != -100
            assert sel.all() or not sel.any(), f"word {block[w]} partly chosen"
            if sel.all():
                n_chosen += 1
                kinds = {"mask" if inputs[p] == tok.mask_id else "keep" if inputs[p] == block[p] else "rand"
                         for p in w}
                # one decision per word (a random draw can equal the original id, rarely)
                assert len(kinds) == 1 or kinds == {"rand", "keep"}
        assert n_chosen == int(0.15 * len(words) + rng_copy.random())
        n_words_total += len(words)
        n_chosen_words += n_chosen
    assert n_words_total > 2000
    assert any(len(w) > 1 for w in words), "the text has multi-piece words"
    assert abs(n_chosen_words / n_words_total - 0.15) < 0.01


# ----------------------------------------------------------------------------------------------
# shards


def test_token_dtype_choice():
    assert data.token_dtype(250_002) == np.uint32
    assert data.token_dtype(65_536) == np.uint16
    assert data.token_dtype(65_537) == np.uint32


def _held_hashes(lines: list[str], split: HeldoutSplit) -> set[int]:
    """The documented rule, computed directly: the k lines with the smallest hashes (ties included)."""
    hashes = sorted(data.line_hash(x.encode()) for x in lines)
    k = split.count(len(lines))
    return {h for h in hashes if k and h <= hashes[k - 1]}


def test_shard_round_trip(shards, demo_tokenizer, demo_corpus, test_langs):
    tok = demo_tokenizer
    stats = language_stats(demo_corpus, test_langs)
    assert shards.langs == sorted(test_langs) and shards.dtype == np.uint16
    for lang in SMALL_LANGS + ["en", "ru", "zh"]:  # four scripts; the larger files only add time
        lines = [x for x in open_lines(stats[lang].path) if x]
        held_hashes = _held_hashes(lines, HeldoutSplit())
        is_held = [data.line_hash(x.encode()) in held_hashes for x in lines]
        train, held = _docs(shards.train_tokens(lang)), _docs(shards.heldout_tokens(lang))
        m = shards.meta[lang]
        assert (m["train_docs"], m["heldout_docs"]) == (len(train), len(held))
        assert m["train_docs"] + m["heldout_docs"] == stats[lang].lines
        assert m["train_bytes"] + m["heldout_bytes"] == stats[lang].bytes
        assert len(held) >= HeldoutSplit().count(len(lines)) > 0
        # every line lands in exactly one split, in corpus order, encoded as the tokenizer does
        encoded = [ids + [data.EOS] for ids in tok.encode_batch(lines)]
        assert held == [ids for ids, h in zip(encoded, is_held) if h]
        assert train == [ids for ids, h in zip(encoded, is_held) if not h]
        assert not {tuple(d) for d in held} & {tuple(d) for d in train}, "no document in both splits"
        held_bytes = sum(len(x.encode()) for x, h in zip(lines, is_held) if h)
        assert m["heldout_bytes"] == held_bytes
        assert shards.bytes_per_token(lang, "heldout") == pytest.approx(
            held_bytes / (m["heldout_tokens"] - m["heldout_docs"]))
        # decoding gives back the text where nothing is <unk>, up to SentencePiece's nmt_nfkc
        # normalisation (NFKC, runs of whitespace collapsed, plus a few rules of its own)
        pairs = [(d, x) for d, x in zip(train, (x for x, h in zip(lines, is_held) if not h))
                 if data.UNK not in d][:300]
        assert len(pairs) >= 20
        same = sum(tok.decode(d) == " ".join(unicodedata.normalize("NFKC", x).split()) for d, x in pairs)
        assert same >= 0.75 * len(pairs), (lang, same, len(pairs))


def test_heldout_split_bounds():
    s = HeldoutSplit(fraction=0.01, min_lines=100, max_lines=20_000, max_share=0.2)
    assert s.count(1_000_000) == 10_000
    assert s.count(10_000_000) == 20_000
    assert s.count(2_000) == 100
    assert s.count(300) == 60  # max_share caps the minimum for tiny languages
    with pytest.raises(XlmrError):
        HeldoutSplit(min_lines=10, max_lines=5)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    data.add_cli(parser.add_subparsers())
    return parser


def _run_cli(*argv) -> int:
    args = _parser().parse_args(["prepare", *map(str, argv)])
    return args.func(args)


def test_chunked_encode_and_merge_equal_single_shot(shards, demo_tokenizer, demo_corpus, tmp_path):
    # a corpus of three languages, one of them gzip-compressed (a compressed file is one chunk)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for lang in ("el", "fi"):
        os.symlink(Path(demo_corpus) / f"{lang}.txt", corpus / f"{lang}.txt")
    with gzip.open(corpus / "ar.txt.gz", "wb") as f:
        f.write((Path(demo_corpus) / "ar.txt").read_bytes())
    spm = demo_tokenizer.model_file
    common = ["--tokenizer", spm, "--corpus", corpus, "--langs", "ar,el,fi", "--workers", "1"]
    assert _run_cli(*common, "--out", tmp_path / "single") == 0
    for i in range(5):  # as five array tasks would
        assert _run_cli(*common, "--out", tmp_path / "chunked", "--chunk", i, "--num-chunks", 5) == 0
    assert _run_cli(*common, "--out", tmp_path / "chunked", "--merge", "--num-chunks", 5) == 0
    assert not (tmp_path / "chunked" / "chunks").exists()
    single, chunked = ShardSet(tmp_path / "single"), ShardSet(tmp_path / "chunked")
    assert single.meta == chunked.meta
    for lang in SMALL_LANGS:
        for split in data.SPLITS:
            a = (tmp_path / "single" / f"{lang}.{split}.bin").read_bytes()
            assert a == (tmp_path / "chunked" / f"{lang}.{split}.bin").read_bytes()
            # and the same as the cached shards built with 48 KiB chunks by a process pool
            assert np.array_equal(np.frombuffer(a, np.uint16), shards.tokens(lang, split))
    # the plain files really were cut into several non-empty chunks, each line owned by one of them
    dirs = [data.encode_chunk(spm, corpus / "el.txt", i, 5, tmp_path / "probe") for i in range(5)]
    counts = [json.loads((d / data.CHUNK_FILE).read_text())["lines"] for d in dirs]
    assert min(counts) > 0
    assert sum(counts) == single.meta["el"]["train_docs"] + single.meta["el"]["heldout_docs"]


def test_merge_reports_missing_chunks(demo_tokenizer, demo_corpus, tmp_path):
    data.encode_chunk(demo_tokenizer.model_file, Path(demo_corpus) / "fi.txt", 0, 3, tmp_path / "chunks")
    data.encode_chunk(demo_tokenizer.model_file, Path(demo_corpus) / "fi.txt", 2, 3, tmp_path / "chunks")
    with pytest.raises(XlmrError, match=r"chunks 1 of 3 are missing"):
        data.merge_chunks(tmp_path / "chunks", tmp_path / "out", ["fi"], 3)
    assert not (tmp_path / "out" / data.SHARDS_FILE).exists()


def test_invalid_utf8_names_file(demo_tokenizer, tmp_path):
    bad = tmp_path / "xx.txt"
    bad.write_bytes(b"good line\nbad \xff\xfe line\n")
    with pytest.raises(XlmrError, match=r"xx\.txt: invalid UTF-8 .* byte offset 10"):
        data.encode_chunk(demo_tokenizer.model_file, bad, 0, 1, tmp_path / "chunks")
    assert not (tmp_path / "chunks" / "xx").exists() or not any((tmp_path / "chunks" / "xx").iterdir())


def test_incomplete_shard_dir_is_refused(tmp_path):
    (tmp_path / "en.train.bin").write_bytes(b"\0\0")
    with pytest.raises(XlmrError, match="no shards.json"):
        ShardSet(tmp_path)


def test_large_vocabulary_uses_uint32(shards, demo_tokenizer, demo_corpus, tmp_path):
    # the same model with 70,000 extra control pieces (never produced by encoding): > 65,536 ids
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(demo_tokenizer.model_file.read_bytes())
    for i in range(70_000):
        piece = proto.pieces.add()
        piece.piece, piece.score, piece.type = f"<extra{i}>", 0.0, pb.ModelProto.SentencePiece.CONTROL
    (tmp_path / "big").mkdir()
    big_model = tmp_path / "big" / "spm.model"
    big_model.write_bytes(proto.SerializeToString())
    big = Tokenizer(big_model)
    assert big.vocab_size > 65_536
    big_shards = data.shards_for(big, demo_corpus, ["el"], cache_root=tmp_path / "cache", workers=1)
    assert big_shards.dtype == np.uint32 and big_shards.train_tokens("el").dtype == np.uint32
    assert (tmp_path / "cache").joinpath("shards").exists()
    assert np.array_equal(big_shards.train_tokens("el"), shards.train_tokens("el"))
    assert big_shards.meta["el"] == shards.meta["el"]


_RACE = textwrap.dedent("""
    import sys
    from xlmr_core import data
    from xlmr_core.data.tokenizer import Tokenizer
    s = data.shards_for(Tokenizer(sys.argv[1]), sys.argv[2], sys.argv[3].split(","), cache_root=sys.argv[4],
                        workers=1, chunk_bytes=1 << 16)
    print(s.root)
""")


@pytest.mark.timeout(240)
def test_two_processes_racing_build_one_intact_entry(shards, demo_tokenizer, demo_corpus, test_langs, tmp_path):
    cache_root = tmp_path / "cache"
    langs = ",".join(SMALL_LANGS)
    cmd = [sys.executable, "-c", _RACE, str(demo_tokenizer.model_file), str(demo_corpus), langs, str(cache_root)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=220) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    roots = {out.strip() for out, _ in outs}
    assert len(roots) == 1, "both processes got the same entry"
    assert sum("encoding" in err for _, err in outs) == 1, "exactly one process built it"
    entries = list((cache_root / "shards").iterdir())
    assert [e for e in entries if not e.name.endswith(".lock")] == [Path(roots.pop())]
    raced = ShardSet(entries[0] if entries[0].is_dir() else entries[1])
    for lang in SMALL_LANGS:
        assert raced.meta[lang] == shards.meta[lang]
        for split in data.SPLITS:
            assert np.array_equal(raced.tokens(lang, split), shards.tokens(lang, split))


# ----------------------------------------------------------------------------------------------
# batches


def _batch(shards, tok, probs, *, step, rank=0, world=1, blocks=8, seed=0, **kw):
    return make_batch(shards, probs, seed=seed, step=step, rank=rank, world_size=world, batch_blocks=blocks,
                      seq_len=SEQ, mask=MaskConfig(), vocab_size=tok.vocab_size, mask_id=tok.mask_id,
                      special_ids=tok.special_ids, **kw)


def test_batch_layout(shards, demo_tokenizer):
    tok = demo_tokenizer
    probs = {lang: 1 / len(shards.langs) for lang in shards.langs}
    b = _batch(shards, tok, probs, step=5)
    ids, labels = b["input_ids"].numpy(), b["labels"].numpy()
    assert ids.shape == labels.shape == (8, SEQ) and b["input_ids"].dtype.is_floating_point is False
    assert (ids[:, 0] == data.BOS).all() and (labels[:, 0] == -100).all()
    assert not (ids == data.PAD).any(), "no padding in pretraining blocks"
    for j, lang in enumerate(b["lang"]):
        # the original block is a contiguous slice of that language's training stream
        orig = np.where(labels[j] != -100, labels[j], ids[j])[1:]
        stream = np.asarray(shards.train_tokens(lang))
        starts = np.flatnonzero(stream[: len(stream) - SEQ + 2] == orig[0])
        assert any(np.array_equal(stream[i: i + SEQ - 1], orig) for i in starts)


def test_language_frequencies_match_q(shards, demo_tokenizer, demo_corpus, test_langs):
    stats = language_stats(demo_corpus, test_langs)
    q = sampling_probs({lang: s.lines for lang, s in stats.items()}, 0.3)
    counts = dict.fromkeys(q, 0)
    n = 0
    for step in range(1000):
        for lang in _batch(shards, demo_tokenizer, q, step=step, blocks=16)["lang"]:
            counts[lang] += 1
            n += 1
    for lang, p in q.items():
        # 16,000 draws: within 5 binomial standard deviations for each of ten languages
        assert abs(counts[lang] / n - p) < 5 * math.sqrt(p * (1 - p) / n), (lang, counts[lang] / n, p)


_BATCH = textwrap.dedent("""
    import sys
    import numpy as np
    from xlmr_core import data
    from xlmr_core.data.tokenizer import Tokenizer
    tok, shards = Tokenizer(sys.argv[1]), data.ShardSet(sys.argv[2])
    probs = {lang: 1.0 + i for i, lang in enumerate(shards.langs)}
    out = {}
    for step in (0, 17):
        for world in (1, 2, 4):
            for rank in range(world):
                b = data.make_batch(shards, probs, seed=3, step=step, rank=rank, world_size=world,
                                    batch_blocks=8 // world, seq_len=64, mask=data.MaskConfig(whole_word=True),
                                    vocab_size=tok.vocab_size, mask_id=tok.mask_id,
                                    special_ids=tok.special_ids, word_starts=tok.is_word_start)
                out[f"{step}.{world}.{rank}.ids"] = b["input_ids"].numpy()
                out[f"{step}.{world}.{rank}.labels"] = b["labels"].numpy()
    np.savez(sys.argv[3], **out)
""")


@pytest.mark.timeout(120)
def test_batches_identical_across_processes_and_world_sizes(shards, demo_tokenizer, tmp_path):
    procs, outs = [], [tmp_path / f"b{i}.npz" for i in range(2)]
    for i, out in enumerate(outs):
        env = dict(os.environ, PYTHONHASHSEED=str(i))  # different set/dict orders must not matter
        procs.append(subprocess.Popen([sys.executable, "-c", _BATCH, str(demo_tokenizer.model_file),
                                       str(shards.root), str(out)], env=env))
    assert [p.wait(timeout=100) for p in procs] == [0, 0]
    results = []
    for out in outs:
        with np.load(out) as f:
            results.append({k: f[k] for k in f.files})
    a, b = results
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    for step in (0, 17):
        for kind in ("ids", "labels"):
            whole = a[f"{step}.1.0.{kind}"]
            for world in (2, 4):
                union = np.concatenate([a[f"{step}.{world}.{r}.{kind}"] for r in range(world)])
                assert np.array_equal(union, whole)
    assert not np.array_equal(a["0.1.0.ids"], a["17.1.0.ids"])


@pytest.mark.timeout(120)
def test_batch_iterator_resumes_by_step(shards, demo_tokenizer):
    tok = demo_tokenizer
    probs = {"en": 0.5, "zh": 0.5}
    kw = dict(seed=1, rank=0, world_size=1, batch_blocks=4, seq_len=SEQ, mask=MaskConfig(),
              vocab_size=tok.vocab_size, mask_id=tok.mask_id, special_ids=tok.special_ids)
    with data.BatchIterator(shards, probs, start=0, end=6, prefetch=2, **kw) as it:
        full = list(it)
    assert [s for s, _ in full] == list(range(6))
    with data.BatchIterator(shards, probs, start=4, end=6, **kw) as it:
        resumed = list(it)
    with data.BatchIterator(shards, probs, start=2, end=6, workers=2, prefetch=1, **kw) as it:
        from_processes = list(it)
    assert [s for s, _ in from_processes] == [2, 3, 4, 5]
    for (s1, b1), (s2, b2) in [*zip(full[4:], resumed), *zip(full[2:], from_processes)]:
        assert s1 == s2 and b1["input_ids"].equal(b2["input_ids"]) and b1["labels"].equal(b2["labels"])
        assert b1["lang"] == b2["lang"]
    # errors in the background thread reach the consumer
    with data.BatchIterator(shards, {"xx": 1.0}, start=0, end=3, **kw) as it, \
            pytest.raises(XlmrError, match="'xx'"):
        next(it)


def test_batch_bad_inputs(shards, demo_tokenizer):
    tok = demo_tokenizer
    with pytest.raises(XlmrError, match="rank 2 of world_size=2"):
        _batch(shards, tok, {"en": 1.0}, step=0, rank=2, world=2, blocks=8)
    with pytest.raises(XlmrError, match="'sw'.*available"):
        _batch(shards, tok, {"en": 0.5, "sw": 0.5}, step=0)
    with pytest.raises(XlmrError, match="fewer than one block"):
        make_batch(shards, {"en": 1.0}, seed=0, step=0, rank=0, world_size=1, batch_blocks=1,
                   seq_len=shards.meta["en"]["train_tokens"] + 2, mask=MaskConfig(),
                   vocab_size=tok.vocab_size, mask_id=tok.mask_id)


# ----------------------------------------------------------------------------------------------
# held-out blocks


def test_heldout_blocks(shards):
    stream = np.asarray(shards.heldout_tokens("de"), dtype=np.int64)
    blocks = data.heldout_blocks(shards, "de", SEQ)
    n = len(stream) // (SEQ - 1)
    assert blocks.shape == (n, SEQ) and n >= 2
    assert (blocks[:, 0] == data.BOS).all()
    assert np.array_equal(blocks[:, 1:].reshape(-1), stream[: n * (SEQ - 1)])
    few = data.heldout_blocks(shards, "de", SEQ, max_blocks=2)
    assert np.array_equal(few, blocks[[0, n // 2]])
    assert np.array_equal(few, data.heldout_blocks(shards, "de", SEQ, max_blocks=2))
    # a stream shorter than one block: one block padded with <pad>
    long = len(stream) + 10
    (one,) = data.heldout_blocks(shards, "de", long)
    assert one[0] == data.BOS and np.array_equal(one[1: len(stream) + 1], stream)
    assert (one[len(stream) + 1:] == data.PAD).all()
