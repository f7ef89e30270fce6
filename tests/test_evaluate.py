"""Evaluation: bits per byte, retrieval on real parallel text, PLL, and ``xlmr eval`` on a trained debug run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xlmr_core.cli import main
from xlmr_core.config import DataConfig, load_config
from xlmr_core.data import MaskConfig, heldout_blocks, mask_block
from xlmr_core.data.tokenizer import tokenizer_for
from xlmr_core.errors import XlmrError
from xlmr_core.evaluate.heldout import paired_difference
from xlmr_core.evaluate.suites import (
    embed,
    eval_texts,
    evaluate_run,
    mlm_eval,
    pseudo_log_likelihood,
    read_tsv,
    retrieval_scores,
    retrieval_suite,
)
from xlmr_core.model.encoder import XLMRForMaskedLM, model_config
from xlmr_core.train.rundir import load_run
from xlmr_core.train.trainer import train

VOCAB = 2000  # SentencePiece pieces (conftest's VOCAB)
V = VOCAB + 2  # model vocabulary: + <pad>, <mask>
SPECIALS = (0, 1, 2, 3, V - 1)
RUN_LANGS = ["en", "de", "fr", "ru"]  # the trainer tests' languages and vocabulary: the cached tokenizer is shared


@pytest.fixture(scope="module")
def run_tokenizer(demo_corpus):
    """The tokenizer of the runs below (and of the trainer's tests): 2,000 pieces on four languages."""
    return tokenizer_for(demo_corpus, RUN_LANGS, VOCAB, sample_lines=DataConfig().tokenizer_sample_lines)


def debug_model(seed: int = 0, **over) -> XLMRForMaskedLM:
    torch.manual_seed(seed)
    return XLMRForMaskedLM(model_config("debug", V, **over))


def random_blocks(n: int = 6, T: int = 64, seed: int = 0) -> np.ndarray:
    blocks = np.random.default_rng(seed).integers(4, V - 1, size=(n, T))
    blocks[:, 0] = 0  # <s>
    return blocks


# ---------------------------------------------------------------------------------------------
# mlm_eval


def test_mlm_eval_uniform_head_is_log_v_bits_per_token():
    """A head that outputs equal logits for every id: loss = ln V exactly, bpb = ln V / ln 2 / bytes per token."""
    model = debug_model()
    with torch.no_grad():  # features after the head's LayerNorm are 0, head bias 0: all logits 0
        model.head.norm.weight.zero_()
        model.head.norm.bias.zero_()
    blocks = random_blocks()
    r = mlm_eval(model, blocks, bytes_per_token=3.5, mask_id=V - 1, vocab_size=V, special_ids=SPECIALS,
                 draws=3, seed=7)
    assert r["loss_nats"] == pytest.approx(math.log(V), rel=1e-6)
    assert r["loss_bits"] == pytest.approx(math.log2(V), rel=1e-6)
    assert r["bpb"] == pytest.approx(math.log(V) / math.log(2) / 3.5, rel=1e-6)
    # the masks are the fixed draws default_rng([seed, draw, block]): count them independently
    n = sum(int((mask_block(b, np.random.default_rng([7, d, i]), MaskConfig(), V, V - 1, SPECIALS)[1] != -100).sum())
            for d in range(3) for i, b in enumerate(blocks))
    assert r["n_masked"] == n > 0


def test_mlm_eval_matches_full_logits_and_is_deterministic():
    """Loss and accuracy equal a cross-entropy over the full logits on the same fixed masks; dropout is off."""
    model = debug_model(init_std=0.3)
    blocks = random_blocks(5)
    blocks[:, 1::2] = 5  # half the text is id 5, which a large head bias makes the usual arg-max
    with torch.no_grad():
        model.head.bias[5] = 8.0
    kw = dict(bytes_per_token=2.0, mask_id=V - 1, vocab_size=V, special_ids=SPECIALS, draws=2, seed=3, batch_blocks=3)
    model.train()
    r1 = mlm_eval(model, blocks, **kw)
    assert model.training  # mode restored
    r2 = mlm_eval(model, blocks, **kw)
    assert r1 == r2  # same masks and no dropout: identical, even when called from train mode
    model.eval()
    assert mlm_eval(model, blocks, **kw) == r1 and not model.training

    nll, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for d in range(2):
            for i, b in enumerate(blocks):
                x, y = mask_block(b, np.random.default_rng([3, d, i]), MaskConfig(), V, V - 1, SPECIALS)
                logits = model.logits(torch.from_numpy(x)[None])[0].double()  # (T, V)
                at = torch.from_numpy(y != -100)
                target = torch.from_numpy(y)[at]
                nll += float(F.cross_entropy(logits[at], target, reduction="sum"))
                correct += int((logits[at].argmax(-1) == target).sum())
                n += int(at.sum())
    assert r1["n_masked"] == n
    assert r1["loss_nats"] == pytest.approx(nll / n, rel=1e-5)
    assert r1["acc"] == pytest.approx(correct / n) and 0.2 < r1["acc"] < 0.8
    assert r1["bpb"] == pytest.approx(nll / n / math.log(2) / 2.0, rel=1e-5)
    assert mlm_eval(model, blocks, **{**kw, "seed": 4})["loss_nats"] != r1["loss_nats"]  # the seed matters


# ---------------------------------------------------------------------------------------------
# retrieval scoring


def test_retrieval_scores_identity_permutation_and_chance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 16))
    assert retrieval_scores(a, a) == dict(src2tgt=1.0, tgt2src=1.0, n=300)
    # misaligned targets: only the fixed points of the permutation can be right
    perm = rng.permutation(300)
    fixed = float((perm == np.arange(300)).mean())
    r = retrieval_scores(a, a[perm])
    assert r["src2tgt"] == pytest.approx(fixed) and r["tgt2src"] == pytest.approx(fixed)
    # independent random embeddings: chance is 1/300, so about one hit; 8 or more has p < 1e-4
    r = retrieval_scores(a, rng.normal(size=(300, 16)))
    assert r["src2tgt"] <= 8 / 300 and r["tgt2src"] <= 8 / 300
    # cosine ignores the scale of a vector
    assert retrieval_scores(a, a * rng.uniform(0.1, 10, size=(300, 1)))["src2tgt"] == 1.0


def test_margin_discounts_a_hub():
    """A target close to every source (a hub) wins by cosine; the ratio margin retrieves the true pairs.

    Sources e_0..e_3; targets hub = (e_0+e_1+e_2+e_3)/2 (gold for e_0) and y_i = 0.4 e_i + 0.917 e_4:
    cos(x_i, hub) = 0.5 > cos(x_i, y_i) = 0.4. With k = 2 the margin of (x_i, hub) is 0.5 / ((0.45 + 0.5) / 2)
    = 1.05 and that of (x_i, y_i) is 0.4 / ((0.45 + 0.2) / 2) = 1.23.
    """
    eye = np.eye(5)
    src = eye[:4]
    tgt = np.stack([eye[:4].sum(0) / 2] + [0.4 * eye[i] + math.sqrt(1 - 0.16) * eye[4] for i in range(1, 4)])
    cos = retrieval_scores(src, tgt, k=2)
    assert cos["src2tgt"] == 0.25  # every source picks the hub
    assert retrieval_scores(src, tgt, margin=True, k=2)["src2tgt"] == 1.0


def test_read_tsv_errors_name_file_and_line(tmp_path):
    p = tmp_path / "xx.tsv"
    p.write_text("a\tfirst\nno tab here\n", encoding="utf-8")
    with pytest.raises(XlmrError, match=r"xx\.tsv:2: expected 'id<TAB>text'"):
        read_tsv(p)
    p.write_text("a\tfirst\na\tagain\n", encoding="utf-8")
    with pytest.raises(XlmrError, match=r"xx\.tsv:2: id 'a' appears twice"):
        read_tsv(p)


# ---------------------------------------------------------------------------------------------
# embeddings and retrieval on real parallel text


def short_texts(corpus: Path, lang: str, n: int) -> list[str]:
    texts = [t for t in dict.fromkeys(read_tsv(corpus / "eval" / "instguide" / f"{lang}.tsv").values())
             if 20 <= len(t) <= 200]
    return texts[:n]


@pytest.mark.timeout(120)
def test_embed_is_order_and_padding_invariant(demo_corpus, run_tokenizer):
    model = debug_model()
    texts = short_texts(demo_corpus, "de", 40)
    full = embed(model, run_tokenizer, texts, batch_size=16)
    assert full.shape == (40, 64) and full.dtype == np.float32
    # each text alone (no padding, no batch neighbours) gives the same vector as inside a sorted, padded batch
    alone = np.stack([embed(model, run_tokenizer, [t])[0] for t in texts[:8]])
    np.testing.assert_allclose(full[:8], alone, rtol=1e-4, atol=1e-5)
    # layer 0 is the mean of the embedding output over <s> text </s>
    ids = torch.tensor([[0, *run_tokenizer.encode(texts[0]), 2]])
    model.eval()  # embed() runs without dropout
    with torch.no_grad():
        ref = model.encode(ids, all_layers=True)[0][0].mean(0).numpy()
    np.testing.assert_allclose(embed(model, run_tokenizer, texts[:1], layer=0)[0], ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(XlmrError, match="layer 3 out of range"):
        embed(model, run_tokenizer, texts[:1], layer=3)


@pytest.mark.timeout(120)
def test_identical_inputs_retrieve_perfectly(demo_corpus, run_tokenizer):
    """A random-init model that sees the same texts on both sides finds every one (texts are distinct)."""
    model = debug_model()
    texts = short_texts(demo_corpus, "fr", 150)
    e = embed(model, run_tokenizer, texts)
    assert retrieval_scores(e, embed(model, run_tokenizer, texts)) == dict(src2tgt=1.0, tgt2src=1.0, n=150)


class RandomEncoder(torch.nn.Module):
    """An encoder whose hidden states ignore the input: no retrieval above chance is possible."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.config = SimpleNamespace(num_layers=2, hidden_size=hidden, max_positions=128)
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the module a device
        self.gen = torch.Generator().manual_seed(0)

    def encode(self, input_ids, attention_mask=None, all_layers=False):
        B, T = input_ids.shape
        states = [torch.randn(B, T, self.config.hidden_size, generator=self.gen) for _ in range(3)]
        return states if all_layers else states[-1]


@pytest.mark.timeout(120)
def test_retrieval_suite_random_embeddings_score_chance(demo_corpus, run_tokenizer):
    """On real parallel text, embeddings that carry no information retrieve at chance in every language and set."""
    res = retrieval_suite(RandomEncoder(), run_tokenizer, demo_corpus, sets=("instguide", "udhr_para"),
                          langs=["de", "ja", "sw"], max_items=200, train_langs=["de"])
    assert set(res) == {"instguide", "udhr_para"}
    assert set(res["udhr_para"]) == {"de", "ja", "sw"}  # sw: a UDHR-only language, never trained on
    for per_lang in res.values():
        for lang, r in per_lang.items():
            assert r["seen"] == (lang == "de")
            assert r["n"] >= 40
            # chance is 1/n; with n >= 40 a score of 12/n or more has probability < 1e-8
            assert r["to_pivot"] <= 12 / r["n"] and r["from_pivot"] <= 12 / r["n"], (lang, r)


# ---------------------------------------------------------------------------------------------
# pseudo-log-likelihood


@pytest.mark.timeout(120)
def test_pll_equals_naive_loop(run_tokenizer):
    model = debug_model(init_std=0.3)
    texts = ["The cat sat on the mat.", "Der Hund schläft.", "Ein längerer Satz, mit Komma und Zahlen 1234.",
             "x " * 200]  # the last is longer than max_len: skipped
    r = pseudo_log_likelihood(model, run_tokenizer, texts, max_len=64, batch_rows=5)
    pll, tokens = 0.0, 0
    model.eval()
    with torch.no_grad():
        for text in texts[:3]:
            seq = torch.tensor([0, *run_tokenizer.encode(text), 2])
            for t in range(1, len(seq) - 1):
                x = seq.clone()
                x[t] = run_tokenizer.mask_id
                pll += float(torch.log_softmax(model.logits(x[None])[0, t].double(), -1)[seq[t]])
                tokens += 1
    nbytes = sum(len(t.encode("utf-8")) for t in texts[:3])
    assert r["texts"] == 3 and r["skipped"] == 1 and r["tokens"] == tokens and r["bytes"] == nbytes
    assert r["pll_nats"] == pytest.approx(pll, rel=1e-5)
    assert r["bpb"] == pytest.approx(-pll / math.log(2) / nbytes, rel=1e-5)
    # batching (rows of different texts padded together) does not change the sum
    assert pseudo_log_likelihood(model, run_tokenizer, texts, max_len=64, batch_rows=64)["pll_nats"] == \
        pytest.approx(pll, rel=1e-5)
    # max_texts: the first texts that fit; the long one is passed over, not counted
    r2 = pseudo_log_likelihood(model, run_tokenizer, [texts[3], *texts[:3]], max_texts=2, max_len=64)
    assert r2["texts"] == 2 and r2["skipped"] == 1 and r2["bytes"] == sum(len(t.encode()) for t in texts[:2])


# ---------------------------------------------------------------------------------------------
# a trained debug run, end to end


@pytest.fixture(scope="module")
def trained_run(demo_corpus, tmp_path_factory) -> Path:
    """A debug model trained for 40 steps on four demo languages."""
    run_dir = tmp_path_factory.mktemp("eval") / "run"
    cfg = load_config(None, [
        f"run_dir={run_dir}", "model.size=debug", f"data.corpus={demo_corpus}", f"data.langs={','.join(RUN_LANGS)}",
        f"data.vocab_size={VOCAB}", "data.seq_len=64", "data.batch_tokens=1024", "schedule.steps=40",
        "schedule.warmup_steps=4", "optim.lr=2e-3", "checkpoint.interval=40", "precision.device=cpu"])
    train(cfg)  # held-out scoring at its default size: ≥ 4,000 masked tokens per language where the text has them
    return run_dir


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_evaluate_run_end_to_end(trained_run, demo_corpus):
    final_before = json.loads((trained_run / "final.json").read_text())
    res = evaluate_run(trained_run, ("bpb", "retrieval", "pll", "tokenizer"), extra_langs=["ja"],
                       unseen=["sw", "fi"], sets=("instguide", "udhr_para"), max_items=60, pll_texts=3,
                       tokenizer_lines=50, quiet=True)
    final = json.loads((trained_run / "final.json").read_text())
    assert set(final["eval"]) == {"bpb", "retrieval", "pll", "tokenizer"}
    assert final["per_lang"] == final_before["per_lang"] and final["checkpoint"] == final_before["checkpoint"]
    assert json.loads(json.dumps(res)) == final["eval"]

    bpb = res["bpb"]["per_lang"]
    assert list(bpb) == [*RUN_LANGS, "ja"] and not bpb["ja"]["seen"] and bpb["en"]["seen"]
    for lang in RUN_LANGS:  # the same fixed blocks and masks as the trainer's own final evaluation
        assert bpb[lang]["bpb"] == pytest.approx(final["per_lang"][lang]["bpb"], rel=1e-5)
        assert bpb[lang]["blocks"] == final["per_lang"][lang]["blocks"]
        r = final["per_lang"][lang]
        # every target scored on ≥ 4,000 masked tokens, or on every held-out block with the most draws
        assert r["n_masked"] >= 4000 or r["draws"] == 4, (lang, r["n_masked"], r["draws"])
        assert 0 < r["bpb_se"] < 0.1 and 0 < r["bpb_below_unigram_se"] < r["unigram_bpb_se"] + r["bpb_se"]
    # training helps: lower held-out bits per byte than the same architecture at initialisation
    model, tok, cfg = load_run(trained_run)
    from xlmr_core.data import shards_for
    shards = shards_for(tok, demo_corpus, RUN_LANGS)
    fresh = XLMRForMaskedLM(model.config)
    for lang in RUN_LANGS:  # on the same blocks and masks: a paired difference, many standard errors from 0
        ids = bpb[lang]["blocks"]["ids"]
        r = mlm_eval(fresh, heldout_blocks(shards, lang, 64)[ids], bytes_per_token=shards.bytes_per_token(lang),
                     mask_id=tok.mask_id, vocab_size=tok.vocab_size, special_ids=tok.special_ids,
                     draws=bpb[lang]["draws"], block_ids=ids)
        gain, se = paired_difference(r, bpb[lang])
        assert gain > max(0.15, 10 * se), (lang, gain, se)

    ret = res["retrieval"]
    assert ret["settings"]["layer"] == 1 and ret["settings"]["scoring"] == "cosine"
    for per_lang in ret["sets"].values():
        assert "en" not in per_lang
        for lang, r in per_lang.items():
            assert 0 <= r["to_pivot"] <= 1 and 0 <= r["from_pivot"] <= 1 and 2 <= r["n"] <= 60
            assert r["seen"] == (lang in RUN_LANGS)
    assert {"de", "fr", "ru", "sw"} <= set(ret["sets"]["udhr_para"])  # sw never seen in training
    for r in res["pll"]["per_lang"].values():
        assert r["bpb"] > 0 and r["texts"] == 3 and r["source"] in ("docs_heldout", "udhr_para")
    tk = res["tokenizer"]["per_lang"]
    assert tk["en"]["tokens_per_char"] < tk["sw"]["tokens_per_char"]  # an unseen language fragments more


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_cli_eval_merges_and_prints_tables(trained_run, capsys):
    assert main(["eval", str(trained_run), "--suite", "tokenizer,retrieval", "--langs", "de,ru,sw",
                 "--sets", "udhr_para", "--max-items", "30", "--margin"]) == 0
    out = capsys.readouterr().out
    assert "retrieval on udhr_para (layer 1, margin-k4)" in out and "xx→en" in out
    assert "sw " in out and "tok/char" in out
    ev = json.loads((trained_run / "final.json").read_text())["eval"]
    assert set(ev["tokenizer"]["per_lang"]) == {"de", "ru", "sw"}
    # a margin run is stored beside the cosine one, not over it
    assert "retrieval-margin" in ev and set(ev["retrieval-margin"]["sets"]) == {"udhr_para"}
    with pytest.raises(XlmrError, match="no parallel set 'nope'"):
        evaluate_run(trained_run, ["retrieval"], sets=("nope",), quiet=True)


@pytest.mark.timeout(60)
def test_unfinished_run_and_bad_suite(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    with pytest.raises(XlmrError, match="no final.json: the run is not finished; train it first"):
        evaluate_run(run)
    (run / "final.json").write_text("{}")  # the checks below come before the model is loaded
    with pytest.raises(XlmrError, match="unknown eval suite 'bleu'"):
        evaluate_run(run, ["bpb", "bleu"])
    with pytest.raises(XlmrError, match="fine-tune on your data: give its directory with --data"):
        evaluate_run(run, ["glue-sst2"])
    assert eval_texts(tmp_path, "en") is None
