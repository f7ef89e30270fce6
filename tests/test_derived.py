"""Derived languages (xlmr_core.data.derived): text transforms, the derived tokenizer's id maps, the derived corpus and
its held-out split, and a derived run trained and scored like any other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xlmr_core.config import DeriveConfig, load_config
from xlmr_core.data import derived as D
from xlmr_core.data import shards_for
from xlmr_core.data.tokenizer import Tokenizer, tokenizer_for
from xlmr_core.errors import XlmrError

WORDS = ("the kernel maps each page of memory once and frees it when the last user goes away "
         "drivers register their devices with the bus which probes them in order").split()


def _source(path: Path, n: int = 1200, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        sents = [" ".join(rng.choice(WORDS, size=rng.integers(4, 12))).capitalize() + "." for _ in range(3)]
        lines.append(f"Line {i}: " + " ".join(sents))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return _source(tmp_path_factory.mktemp("src") / "en.txt")


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_shift_round_trip_and_language_of_text():
    text = "Grüße, world: naïve café (ok)."
    for k in range(D.MAX_K):
        s = D.shift(text, k)
        assert D.unshift(s) == (text, k)
        assert len(s.encode("utf-8")) >= len(text.encode("utf-8"))
        assert s.split(" ")[0] != text.split(" ")[0] or k == 0
    assert D.normalize("a \t b\n") == "a b" and D.normalize("emoji \U0001F600") is None


def test_word_orders_are_within_sentences_and_fixed_per_language():
    text = "one two three. four five six seven! eight nine"
    assert D.reorder(text, "inverted") == "three. two one seven! six five four nine eight"
    cfg = DeriveConfig(k=3, source="x.txt", order="permuted", seed=5)
    a, b = D.Deriver(cfg), D.Deriver(cfg)
    assert a(text, 1) == b(text, 1) != a(text, 2)  # one permutation per language, the same on every call
    words = D.unshift(a(text, 1))[0].split(" ")
    assert sorted(words) == sorted(text.split(" "))
    # the key of a line is the same in every language: word order and plane do not change it
    assert len({D.line_key(D.Deriver(DeriveConfig(k=4, source="x.txt", order=o))(text, k))
                for o in D.ORDERS for k in range(4)}) == 1


@pytest.mark.parametrize("bad, match", [
    (dict(k=17), "derive.k=17 is out of range"),
    (dict(k=4, share=1.5), "derive.share=1.5 is out of range"),
    (dict(k=4, order="sideways"), "derive.order='sideways'"),
    (dict(k=8, slices=4), "derive.k=8 needs as many slices"),
])
def test_bad_settings_get_one_clear_error(bad, match):
    with pytest.raises(XlmrError, match=match):
        DeriveConfig(source="en.txt", **bad)


def test_tokenizer_id_maps(source, cache_root):
    src = tokenizer_for(source.parent, ["en"], 150, sample_lines=5000, cache_root=cache_root)
    text = "the kernel maps each page of memory once."
    for share in (0.0, 0.5, 1.0):
        tok = D.derived_tokenizer(src, 4, share, 0, cache_root=cache_root)
        assert isinstance(Tokenizer(tok.model_file), D.DerivedTokenizer)  # Tokenizer(path) opens either kind
        V, M = src.vocab_size, tok.own_pieces
        ordinary = V - len(set(src.special_ids))
        assert M == ordinary - round(share * ordinary) and tok.vocab_size == V + 3 * M
        base = np.array(src.encode(text))
        assert tok.encode(text) == base.tolist()  # language 0 is the source
        for k in range(1, 4):
            ids = np.array(tok.encode(D.shift(text, k)))
            assert len(ids) == len(base)
            own = ids >= V
            assert np.all(ids[~own] == base[~own]) and np.all(tok.src_of[ids] == base)
            assert np.all((ids[own] - V) // M == k - 1) if M else not own.any()
            # decoding finds the language from its own ids (with share 1 there are none: the source's text)
            assert tok.decode(ids) == D.shift(src.decode(base), k if M else 0)
        # the share of piece *types* that keep their id is `share`, over every non-special piece
        assert abs(1 - M / ordinary - share) < 1e-9 + 1 / ordinary
    with pytest.raises(XlmrError, match="derived language 5"):
        tok.encode(D.shift(text, 5))


def test_derived_corpus_heldout_is_the_same_documents_in_every_language(source, cache_root):
    cfg = DeriveConfig(k=4, source=str(source), order="inverted", share=0.0, slices=4, heldout_lines=50)
    corpus = D.derived_corpus(cfg, cache_root=cache_root)
    info = json.loads((corpus / "derive.json").read_text())
    assert info["heldout_lines"] == 50 and len(info["languages"]) == 4
    src = tokenizer_for(source.parent, ["en"], 150, sample_lines=5000, cache_root=cache_root)
    tok = D.derived_tokenizer(src, 4, 0.0, 0, cache_root=cache_root)
    shards = shards_for(tok, corpus, cfg.codes(), cache_root=cache_root, heldout=D.heldout_split(corpus))
    meta = [shards.meta[c] for c in cfg.codes()]
    # every language holds out the same 50 source documents: the same source bytes and token counts
    assert len({m["heldout_bytes"] for m in meta}) == 1, meta
    assert len({len(shards.heldout_tokens(c)) for c in cfg.codes()}) == 1
    assert len({round(shards.bytes_per_token(c), 9) for c in cfg.codes()}) == 1
    # held-out text never trains: no training slice shares a document with it or with another slice
    keys = [{D.line_key(x) for x in (corpus / f"{c}.txt").read_text().splitlines()} for c in cfg.codes()]
    held = {D.line_key(x.split("\t", 1)[1]) for x in (corpus / "eval/docs_heldout/x00.tsv").read_text().splitlines()}
    trains = [k - held for k in keys]
    assert all(held <= k for k in keys) and all(len(t) > 200 for t in trains)
    assert all(not (trains[i] & trains[j]) for i in range(4) for j in range(i + 1, 4))
    # language 1's training tokens use its own ids only (share 0), language 0's the source's
    ids0, ids1 = np.asarray(shards.train_tokens("x00")), np.asarray(shards.train_tokens("x01"))
    assert ids0.max() < src.vocab_size and (ids1[ids1 > 3] >= src.vocab_size).mean() > 0.99


def test_parallel_slices_and_a_source_too_small(source, tmp_path, cache_root):
    cfg = DeriveConfig(k=3, source=str(source), parallel=True, slices=4, heldout_lines=50)
    corpus = D.derived_corpus(cfg, cache_root=cache_root)
    a, b = ((corpus / f"x0{i}.txt").read_text().splitlines() for i in (0, 2))
    assert [D.line_key(x) for x in a] == [D.line_key(x) for x in b]  # the same documents, other words
    small = _source(tmp_path / "small" / "en.txt", n=60)
    with pytest.raises(XlmrError, match="too few for 50 held-out lines"):
        D.derived_corpus(DeriveConfig(k=2, source=str(small), heldout_lines=50), cache_root=cache_root)
    with pytest.raises(XlmrError, match="not a language file"):
        D.derived_corpus(DeriveConfig(k=2, source=str(tmp_path / "nothing.txt")), cache_root=cache_root)


def test_a_derived_run_trains_and_scores_per_source_byte(source, cache_root, tmp_path):
    from xlmr_core.train.trainer import train

    cfg = load_config(None, [
        f"run_dir={tmp_path / 'run'}", "model.size=debug", "model.hidden_size=32", "model.num_heads=2",
        "model.ffn_size=64", "model.num_layers=1", "data.vocab_size=150", "data.seq_len=64", "data.batch_tokens=512",
        "data.tokenizer_sample_lines=5000", f"data.cache_dir={cache_root}", "schedule.steps=30",
        "schedule.warmup_steps=3", "eval.max_masked=600", "checkpoint.interval=30",
        "derive.k=3", f"derive.source={source}", "derive.share=0.5", "derive.slices=4", "derive.heldout_lines=50"])
    final = train(cfg)
    per = final["per_lang"]
    assert set(per) == {"x00", "x01", "x02"}
    bpt = {lang: per[lang]["bytes_per_token"] for lang in per}
    assert len({round(v, 6) for v in bpt.values()}) == 1  # every language encodes the same source bytes
    for r in per.values():
        assert 0 < r["bpb"] < 3 * r["unigram_bpb"] and r["unigram_bpb"] > 0
    saved = json.loads((Path(cfg.run_dir) / "config.json").read_text())
    assert saved["config"]["derive"]["k"] == 3 and saved["config"]["derive"]["share"] == 0.5
