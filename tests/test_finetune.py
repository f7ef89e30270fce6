"""Downstream readers, QA span mapping and short fine-tuning runs that must learn each task format.

Every dataset here is written by the test in the benchmark's official layout, small and learnable
(the label follows from a keyword, entities are known capitalised names, the answer is a colour
after "is"), and a randomly initialised ``debug`` encoder must score clearly above chance on it.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from xlmr_core.errors import XlmrError
from xlmr_core.evaluate import finetune as FT

FILLER = ("river stone table window garden yellow paper music quiet morning coffee bridge letter "
          "forest engine silver market winter cotton basket ladder pencil harbor meadow").split()
FILLER_DE = "fluss stein tisch fenster garten papier musik morgen kaffee brücke brief wald motor".split()
PERSONS = ["Alice", "Bob", "Carol", "David", "Erik", "Fiona"]
PLACES = ["Paris", "Berlin", "Tokyo", "Lima", "Oslo", "Cairo"]
COLOURS = ["red", "green", "blue", "orange", "purple", "brown", "black", "white"]
NLI_KEYWORD = {"entailment": "yes", "neutral": "maybe", "contradiction": "no"}

# XNLI-1.0 xnli.{dev,test}.tsv and MultiNLI 1.0 multinli_1.0_train.txt headers, as distributed
XNLI_HEADER = ("language gold_label sentence1_binary_parse sentence2_binary_parse sentence1_parse "
               "sentence2_parse sentence1 sentence2 promptID pairID genre label1 label2 label3 label4 "
               "label5 sentence1_tokenized sentence2_tokenized match").split()
MNLI_HEADER = ("gold_label sentence1_binary_parse sentence2_binary_parse sentence1_parse sentence2_parse "
               "sentence1 sentence2 promptID pairID genre label1 label2 label3 label4 label5").split()
STSB_HEADER = "index genre filename year old_index source1 source2 sentence1 sentence2 score".split()

# fast, high learning-rate settings for a randomly initialised debug encoder
FAST = FT.FinetuneConfig(lr=2e-3, epochs=4, batch_size=8, max_len=64, warmup_ratio=0.1, weight_decay=0.0,
                         dropout=0.0, seeds=(0,), device="cpu")


def _words(rng: random.Random, n: int, vocab=FILLER) -> list[str]:
    return [rng.choice(vocab) for _ in range(n)]


def _tsv(path: Path, header: list[str] | None, rows: list[dict | list]) -> Path:
    lines = [] if header is None else ["\t".join(header)]
    for r in rows:
        lines.append("\t".join(r) if isinstance(r, list) else "\t".join(str(r.get(c, "")) for c in header))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _nli_pair(rng: random.Random, label: str, vocab=FILLER) -> tuple[str, str]:
    hyp = _words(rng, 4, vocab)
    hyp.insert(0, NLI_KEYWORD[label])  # first word of the hypothesis: quick to learn from scratch
    return " ".join(_words(rng, 6, vocab)) + " .", " ".join(hyp) + " ."


def _write_xnli(root: Path, n_train: int, n_eval: int, seed: int = 0) -> tuple[Path, Path]:
    rng = random.Random(seed)
    train = []
    for i in range(n_train):
        label = rng.choice(list(NLI_KEYWORD))
        a, b = _nli_pair(rng, label)
        train.append(dict(gold_label=label, sentence1=a, sentence2=b, sentence1_binary_parse=f"( {a} )",
                          promptID=i, pairID=f"{i}e", genre="fiction", label1=label))
    evals = []
    for lang, vocab in (("en", FILLER), ("de", FILLER_DE)):
        for i in range(n_eval):
            label = rng.choice(list(NLI_KEYWORD))
            a, b = _nli_pair(rng, label, vocab)
            evals.append(dict(language=lang, gold_label=label, sentence1=a, sentence2=b, promptID=i,
                              pairID=i, genre="facetoface", label1=label, sentence1_tokenized=a,
                              sentence2_tokenized=b, match="True"))
    return (_tsv(root / "multinli_1.0" / "multinli_1.0_train.txt", MNLI_HEADER, train),
            _tsv(root / "XNLI-1.0" / "xnli.test.tsv", XNLI_HEADER, evals))


def _sst_rows(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        y = rng.randrange(2)
        words = _words(rng, rng.randint(4, 8))
        words.insert(rng.randrange(len(words) + 1), "good" if y else "bad")
        rows.append(dict(sentence=" ".join(words), label=y))
    return rows


STS_KEYWORD = {"alpha": 0.0, "beta": 2.5, "gamma": 5.0}


def _sts_rows(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        key = rng.choice(list(STS_KEYWORD))
        b = _words(rng, 4)
        b.insert(rng.randrange(5), key)
        rows.append(dict(index=i, genre="main-captions", filename="MSRvid", year="2012test", old_index=i,
                         source1="none", source2="none", sentence1=" ".join(_words(rng, 5)),
                         sentence2=" ".join(b), score=f"{STS_KEYWORD[key] + rng.uniform(-0.2, 0.2):.3f}"))
    return rows


def _ner_sentences(rng: random.Random, n: int) -> list[list[tuple[str, str]]]:
    out = []
    for _ in range(n):
        sent = [(w, "O") for w in _words(rng, rng.randint(4, 8))]
        for _ in range(rng.randint(1, 2)):
            pos = rng.randrange(len(sent) + 1)
            if rng.random() < 0.5:
                ent = [(rng.choice(PERSONS), "B-PER")]
            elif rng.random() < 0.5:
                ent = [(rng.choice(PLACES), "B-LOC")]
            else:  # a two-word location: B- then I-
                ent = [("New", "B-LOC"), (rng.choice(PLACES), "I-LOC")]
            sent[pos:pos] = ent
        out.append(sent)
    return out


def _write_conll(path: Path, sentences, *, wikiann_lang: str | None = None, docstart: bool = False) -> Path:
    lines = ["-DOCSTART- -X- -X- O", ""] if docstart else []
    for sent in sentences:
        for word, tag in sent:
            if wikiann_lang:
                lines.append(f"{wikiann_lang}:{word}\t{tag}")
            else:  # CoNLL-2003: token POS chunk NE
                lines.append(f"{word} NN I-NP {tag}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _squad(rng: random.Random, n: int, prefix: str) -> dict:
    paragraphs = []
    for i in range(n):
        colour = rng.choice(COLOURS)
        before = " ".join(_words(rng, rng.randint(2, 8)))
        after = " ".join(_words(rng, rng.randint(2, 8)))
        context = f"{before} . the {rng.choice(['car', 'house', 'door'])} is {colour} . {after} ."
        start = context.index(f" is {colour} ") + 4
        assert context[start:start + len(colour)] == colour
        qas = [{"question": "what colour is it ?", "id": f"{prefix}{i}",
                "answers": [{"text": colour, "answer_start": start}]}]
        paragraphs.append({"context": context, "qas": qas})
    return {"version": "1.0", "data": [{"title": "synthetic", "paragraphs": paragraphs}]}


def _corpus_text() -> str:
    """Text for the test tokenizer: every word of the synthetic tasks, uniformly mixed, so most become one piece."""
    rng = random.Random(1)
    words = [*FILLER, *FILLER_DE, *PERSONS, *PLACES, *COLOURS, *NLI_KEYWORD.values(), *STS_KEYWORD, "good",
             "bad", "New", "the", "is", "what", "colour", "it", "car", "house", "door", "?", "."]
    return "".join(" ".join(rng.choice(words) for _ in range(10)) + "\n" for _ in range(2000))


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    """A small SentencePiece unigram tokenizer trained on the synthetic tasks' words."""
    from xlmr_core.data.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("ft-tok")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "en.txt").write_text(_corpus_text(), encoding="utf-8")
    return train_tokenizer(corpus, ["en"], 100, root / "tok", threads=1)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The debug encoder is too small to gain from threads; on a shared 2-core box they only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _debug_model(tok, seed: int = 0):
    from xlmr_core.model.encoder import XLMRForMaskedLM, model_config

    torch.manual_seed(seed)
    return XLMRForMaskedLM(model_config("debug", tok.vocab_size))


# ---------------------------------------------------------------------------------------------
# readers: official layouts parse; a malformed line names file and line; a missing file is clear


def test_read_xnli_and_multinli(tmp_path):
    train, test = _write_xnli(tmp_path, 5, 3)
    per_lang = FT.read_xnli(test)
    assert list(per_lang) == ["de", "en"] and all(len(v) == 3 for v in per_lang.values())
    ex = per_lang["en"][0]
    assert ex.label in NLI_KEYWORD and NLI_KEYWORD[ex.label] in ex.text_b.split()
    rows = FT.read_nli_train(train)
    assert len(rows) == 5 and rows[0].text_a.endswith(" .")
    # XNLI-MT translate-train layout: premise, hypo, label with 'contradictory'
    mt = _tsv(tmp_path / "multinli.train.de.tsv", ["premise", "hypo", "label"],
              [["der fluss", "kein stein", "contradictory"], ["ein tisch", "ein tisch", "entailment"]])
    assert [e.label for e in FT.read_nli_train(mt)] == ["contradiction", "entailment"]


def test_read_xnli_errors_name_file_and_line(tmp_path):
    _, test = _write_xnli(tmp_path, 2, 2)
    lines = test.read_text(encoding="utf-8").splitlines()
    lines[3] = "en\tentailment\tonly three fields"
    test.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(XlmrError, match=rf"{test}:4: expected at least"):
        FT.read_xnli(test)
    lines[3] = lines[2].replace("\t" + lines[2].split("\t")[1] + "\t", "\tmaybe\t", 1)
    test.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(XlmrError, match=rf"{test}:4: label 'maybe' is not one of"):
        FT.read_xnli(test)
    bad_header = _tsv(tmp_path / "x.tsv", ["language", "sentence1"], [["en", "a"]])
    with pytest.raises(XlmrError, match=r"x.tsv:1: XNLI header lacks column\(s\) gold_label, sentence2"):
        FT.read_xnli(bad_header)
    with pytest.raises(XlmrError, match=r"XNLI file .*nope.tsv not found"):
        FT.read_xnli(tmp_path / "nope.tsv")
    (tmp_path / "latin1.tsv").write_bytes("\t".join(XNLI_HEADER).encode() + b"\nen\tneutral\tcaf\xe9\n")
    with pytest.raises(XlmrError, match=r"latin1.tsv:2: not valid UTF-8"):
        FT.read_xnli(tmp_path / "latin1.tsv")


def test_read_glue_column_conventions(tmp_path):
    sst = FT.read_glue("glue-sst-2", _tsv(tmp_path / "SST-2/train.tsv", ["sentence", "label"],
                                           [["a good film", "1"], ["a bad one", "0"]]))
    assert [(e.text_a, e.text_b, e.label) for e in sst] == [("a good film", None, "1"), ("a bad one", None, "0")]
    mrpc = FT.read_glue("mrpc", _tsv(tmp_path / "MRPC/train.tsv",
                                     ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                                     [["1", "11", "12", "He said .", "He stated ."]]))
    assert (mrpc[0].text_a, mrpc[0].text_b, mrpc[0].label) == ("He said .", "He stated .", "1")
    qqp_cols = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    qqp = FT.read_glue("qqp", _tsv(tmp_path / "QQP/dev.tsv", qqp_cols, [["0", "1", "2", "q1 ?", "q2 ?", "0"]]))
    assert (qqp[0].text_a, qqp[0].text_b, qqp[0].label) == ("q1 ?", "q2 ?", "0")
    qnli = FT.read_glue("qnli", _tsv(tmp_path / "QNLI/dev.tsv", ["index", "question", "sentence", "label"],
                                     [["0", "who ?", "him .", "not_entailment"]]))
    assert qnli[0].label == "not_entailment" and qnli[0].text_a == "who ?"
    rte = FT.read_glue("rte", _tsv(tmp_path / "RTE/dev.tsv", ["index", "sentence1", "sentence2", "label"],
                                   [["0", "a", "b", "entailment"]]))
    assert (rte[0].text_a, rte[0].text_b) == ("a", "b")
    mnli = FT.read_glue("mnli", _tsv(tmp_path / "MNLI/dev_matched.tsv",
                                     ["index", "promptID", "pairID", "genre", *MNLI_HEADER[1:7], "label1",
                                      "gold_label"], [{"sentence1": "p", "sentence2": "h", "gold_label": "neutral"}]))
    assert (mnli[0].text_a, mnli[0].text_b, mnli[0].label) == ("p", "h", "neutral")
    # CoLA: no header; source, label, original annotation, sentence
    cola_path = _tsv(tmp_path / "CoLA/train.tsv", None, [["gj04", "1", "", "The cat sat ."],
                                                        ["gj04", "0", "*", "Cat the sat ."]])
    cola = FT.read_glue("cola", cola_path)
    assert [(e.text_a, e.label) for e in cola] == [("The cat sat .", "1"), ("Cat the sat .", "0")]
    rows = _sts_rows(random.Random(0), 3)
    sts = FT.read_glue("glue-sts-b", _tsv(tmp_path / "STS-B/dev.tsv", STSB_HEADER, rows))
    assert [e.label for e in sts] == [pytest.approx(float(r["score"])) for r in rows]
    assert sts[0].text_b == rows[0]["sentence2"]


def test_read_glue_errors(tmp_path):
    bad = _tsv(tmp_path / "CoLA/train.tsv", None, [["gj04", "1", "", "ok ."], ["gj04", "1", "three fields"]])
    with pytest.raises(XlmrError, match=rf"{bad}:2: expected 4 tab-separated fields"):
        FT.read_glue("glue-cola", bad)
    sts = _tsv(tmp_path / "STS-B/train.tsv", STSB_HEADER,
               [{"sentence1": "a", "sentence2": "b", "score": "3.2"}, {"sentence1": "a", "sentence2": "b",
                                                                       "score": "high"}])
    with pytest.raises(XlmrError, match=rf"{sts}:3: score 'high' is not a number"):
        FT.read_glue("glue-sts-b", sts)
    sst = _tsv(tmp_path / "SST-2/train.tsv", ["sentence", "label"], [["fine", "1"], ["meh", "2"]])
    with pytest.raises(XlmrError, match=rf"{sst}:3: label '2' is not one of 0, 1"):
        FT.read_glue("sst-2", sst)
    with pytest.raises(XlmrError, match="unknown downstream suite 'glue-foo'"):
        FT.read_glue("glue-foo", sst)


def test_read_conll_and_wikiann(tmp_path):
    sents = [[("EU", "B-ORG"), ("rejects", "O"), ("German", "B-MISC"), ("call", "O")],
             [("Peter", "B-PER"), ("Blackburn", "I-PER")]]
    path = _write_conll(tmp_path / "eng.train", sents, docstart=True)
    got, lang = FT.read_conll(path)
    assert lang is None
    assert [list(zip(s.words, s.tags)) for s in got] == sents
    # CoNLL-2002 (token TAG) with a document break mid-file
    path2 = tmp_path / "esp.testa"
    path2.write_text("La B-LOC\nCoruña I-LOC\n\n-DOCSTART- O\n\nEl O\n", encoding="utf-8")
    got2, _ = FT.read_conll(path2)
    assert [s.words for s in got2] == [("La", "Coruña"), ("El",)]
    # WikiANN / XTREME PAN-X: lang:token<TAB>TAG; a token may itself contain ':'
    wik = _write_conll(tmp_path / "de" / "test", [[("Berlin", "B-LOC"), ("ist", "O"), ("10:30", "O")]],
                       wikiann_lang="de")
    got3, lang3 = FT.read_conll(wik)
    assert lang3 == "de" and got3[0].words == ("Berlin", "ist", "10:30") and got3[0].tags[0] == "B-LOC"


def test_read_conll_errors(tmp_path):
    p = tmp_path / "eng.testb"
    p.write_text("EU NNP B-ORG\nrejects\n", encoding="utf-8")
    with pytest.raises(XlmrError, match=rf"{p}:2: expected a token and a tag"):
        FT.read_conll(p)
    p.write_text("EU NNP B-ORG\n\nBonn NNP X-LOC\n", encoding="utf-8")
    with pytest.raises(XlmrError, match=rf"{p}:3: tag 'X-LOC' is not O or B-/I-/E-/S-TYPE"):
        FT.read_conll(p)
    p.write_text("en:Paris\tB-LOC\nParis\tB-LOC\n", encoding="utf-8")
    with pytest.raises(XlmrError, match=rf"{p}:2: token 'Paris' lacks the 'en:' prefix"):
        FT.read_conll(p)
    with pytest.raises(XlmrError, match="CoNLL/WikiANN file .*missing not found"):
        FT.read_conll(tmp_path / "missing")


def test_read_squad_mlqa(tmp_path):
    doc = _squad(random.Random(0), 3, "q")
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"].append(
        dict(doc["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]))  # a second (duplicate) gold answer
    path = tmp_path / "test-context-en-question-en.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    got = FT.read_squad(path)
    assert [e.qid for e in got] == ["q0", "q1", "q2"]
    text, start = got[0].answers[0]
    assert len(got[0].answers) == 2 and got[0].context[start:start + len(text)] == text in COLOURS


def test_read_squad_errors(tmp_path):
    path = tmp_path / "dev-context-es-question-es.json"
    path.write_text('{"version": "1.0",\n "data": [\n  {"paragraphs": [}\n]}', encoding="utf-8")
    with pytest.raises(XlmrError, match=rf"{path}:3: not valid JSON"):
        FT.read_squad(path)
    doc = _squad(random.Random(0), 2, "q")
    del doc["data"][0]["paragraphs"][1]["qas"][0]["id"]
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(XlmrError, match=r"data\[0\].paragraphs\[1\].qas\[0\] has no 'id'"):
        FT.read_squad(path)
    doc = _squad(random.Random(0), 2, "q")
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 1
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(XlmrError, match=r"qas\[0\].answers\[0\]: answer_start \d+ does not point"):
        FT.read_squad(path)
    with pytest.raises(XlmrError, match="SQuAD-format file .*none.json not found"):
        FT.read_squad(tmp_path / "none.json")


def test_downstream_files_layouts(tmp_path):
    cfg = FT.FinetuneConfig()
    train, test = _write_xnli(tmp_path / "xnli", 2, 2)
    assert FT.downstream_files("xnli", tmp_path / "xnli", cfg) == (train, test)
    with pytest.raises(XlmrError, match="no xnli.dev.tsv"):
        FT.downstream_files("xnli", tmp_path / "xnli", FT.FinetuneConfig(eval_split="dev"))
    # translate-train-all: XNLI-MT-1.0 per-language training files, English from MultiNLI
    tta = FT.FinetuneConfig(translate_train_all=True)
    with pytest.raises(XlmrError, match="multinli.train.<lang>.tsv"):
        FT.downstream_files("xnli", tmp_path / "xnli", tta)
    for lang in ("de", "fr"):
        _tsv(tmp_path / "xnli/XNLI-MT-1.0/multinli" / f"multinli.train.{lang}.tsv", ["premise", "hypo", "label"],
             [["a", "b", "neutral"]])
    train_mt, _ = FT.downstream_files("xnli", tmp_path / "xnli", tta)
    assert sorted(train_mt) == ["de", "en", "fr"] and train_mt["en"] == train
    _write_conll(tmp_path / "ner" / "en" / "train", [[("Bob", "B-PER")]], wikiann_lang="en")
    for lang in ("en", "de"):
        _write_conll(tmp_path / "ner" / lang / "test", [[("Bob", "B-PER")]], wikiann_lang=lang)
    _write_conll(tmp_path / "ner" / "esp.testb", [[("Lima", "B-LOC")]])
    train, evals = FT.downstream_files("ner", tmp_path / "ner", cfg)
    assert train == tmp_path / "ner/en/train" and sorted(evals) == ["de", "en", "es"]
    mlqa = tmp_path / "mlqa"
    for name in ("MLQA_V1/test/test-context-en-question-en.json", "MLQA_V1/test/test-context-zh-question-zh.json",
                 "MLQA_V1/test/test-context-en-question-zh.json", "squad/train-v1.1.json"):
        (mlqa / name).parent.mkdir(parents=True, exist_ok=True)
        (mlqa / name).write_text("{}", encoding="utf-8")
    train, evals = FT.downstream_files("mlqa", mlqa, cfg)
    assert train.name == "train-v1.1.json" and sorted(evals) == ["en", "zh"]  # cross-language pairs skipped
    with pytest.raises(XlmrError, match=r"GLUE glue-rte train file .*train.tsv not found"):
        FT.downstream_files("glue-rte", tmp_path, cfg)


# ---------------------------------------------------------------------------------------------
# QA windows and span mapping


def test_best_span_respects_order_and_length():
    s = np.array([0.0, 5.0, 1.0, 0.0])
    e = np.array([3.0, 0.0, 1.0, 4.0])  # (1, 0) would score 8 but ends before it starts
    assert FT.best_span(s, e, 30)[1:] == (1, 3)
    assert FT.best_span(s, e, 30)[0] == pytest.approx(9.0)
    assert FT.best_span(s, e, 2)[1:] == (1, 2)  # span length capped at 2 tokens


def test_context_words_cjk_and_spaces():
    ctx = "Rome is  old. 北京大学 in 2008"
    spans = FT.context_words(ctx)
    assert [ctx[a:b] for a, b in spans] == ["Rome", "is", "old.", "北", "京", "大", "学", "in", "2008"]


def test_qa_windows_cover_context_and_map_answer_back(tok):
    rng = random.Random(3)
    words = _words(rng, 60)
    words[47:47] = ["is", "purple"]
    context = " ".join(words) + " ."
    start = context.index(" is purple") + 4
    ex = FT.QAExample("q", "what colour is it ?", context, (("purple", start),))
    cfg = FT.FinetuneConfig(max_len=32, doc_stride=8, max_query_len=8)
    feats, spans = FT.encode_qa(tok, [ex], cfg, train=True)
    assert len(feats) > 3 and all(len(f.ids) <= 32 for f in feats)
    seen = sorted({w for f in feats for w in f.tok_word})
    assert seen == list(range(len(spans[0])))  # every word of the context is in some window
    hits = [f for f in feats if f.start > 0]
    assert hits, "some window must hold the answer"
    for f in hits:  # the target tokens are exactly the answer word's sub-tokens
        assert f.tok_word[f.start - f.ctx_start] == f.tok_word[f.end - f.ctx_start]
        a, b = spans[0][f.tok_word[f.start - f.ctx_start]]
        assert context[a:b] == "purple"
        assert tok.decode(f.ids[f.start:f.end + 1]).strip() == "purple"
    assert any(f.start == 0 and f.end == 0 for f in feats)  # windows without the answer point at <s>
    # logits that peak on the answer in one window (and weaker elsewhere) recover the exact characters
    eval_feats, eval_spans = FT.encode_qa(tok, [ex], cfg, train=False)
    logits = []
    for f in eval_feats:
        lg = np.zeros((len(f.ids), 2))
        lg[f.ctx_start, :] = 1.0  # a weak decoy in every window
        logits.append(lg)
    target = next(k for k, f in enumerate(feats) if f.start > 0)
    logits[target][feats[target].start, 0] = logits[target][feats[target].end, 1] = 10.0
    assert FT.qa_predictions([ex], eval_feats, eval_spans, logits, 30) == {"q": "purple"}


# ---------------------------------------------------------------------------------------------
# learning: short fine-tuning runs on official-format files must beat chance clearly


@pytest.mark.timeout(120)
def test_xnli_pair_classification_learns(tmp_path, tok):
    train, test = _write_xnli(tmp_path, 480, 60)
    model = _debug_model(tok)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = FT.finetune_task(model, tok, "xnli", train, test, FAST)
    assert out["mode"] == "zero-shot" and out["train_langs"] == ["en"]
    assert set(out["per_lang"]) == {"en", "de"} and out["n_eval"] == {"de": 60, "en": 60}
    assert out["per_lang"]["en"]["accuracy"] > 0.75  # chance: 1/3
    assert out["mean"]["accuracy"] == pytest.approx(np.mean([v["accuracy"] for v in out["per_lang"].values()]))
    # the caller's pre-trained model is not modified by fine-tuning
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.timeout(120)
def test_glue_sst2_learns_with_two_seeds(tmp_path, tok):
    rng = random.Random(0)
    glue = tmp_path / "glue_data" / "SST-2"
    _tsv(glue / "train.tsv", ["sentence", "label"], _sst_rows(rng, 320))
    _tsv(glue / "dev.tsv", ["sentence", "label"], _sst_rows(rng, 80))
    cfg = dataclasses.replace(FAST, seeds=(0, 1), epochs=3)
    out = FT.run_downstream(_debug_model(tok), tok, "glue-sst-2", tmp_path / "glue_data", cfg)
    assert out["suite"] == "glue-sst-2" and list(out["per_lang"]) == ["en"]
    assert [s["seed"] for s in out["seeds"]] == [0, 1] and out["n_seeds"] == 2
    accs = [s["mean"]["accuracy"] for s in out["seeds"]]
    assert min(accs) > 0.8  # chance: 1/2
    assert out["mean"]["accuracy"] == pytest.approx(np.mean(accs))
    assert out["mean"]["accuracy_std"] == pytest.approx(np.std(accs, ddof=1))


@pytest.mark.timeout(120)
def test_stsb_regression_learns(tmp_path, tok):
    rng = random.Random(0)
    train = _tsv(tmp_path / "STS-B" / "train.tsv", STSB_HEADER, _sts_rows(rng, 320))
    dev = _tsv(tmp_path / "STS-B" / "dev.tsv", STSB_HEADER, _sts_rows(rng, 80))
    out = FT.finetune_task(_debug_model(tok), tok, "glue-sts-b", train, {"en": dev}, FAST)
    assert out["metric"] == "pearson"
    assert out["per_lang"]["en"]["pearson"] > 0.8 and out["per_lang"]["en"]["spearman"] > 0.7  # chance: 0


@pytest.mark.timeout(120)
def test_ner_learns_entities(tmp_path, tok):
    rng = random.Random(0)
    root = tmp_path / "panx"
    _write_conll(root / "en" / "train", _ner_sentences(rng, 320), wikiann_lang="en")
    _write_conll(root / "en" / "test", _ner_sentences(rng, 60), wikiann_lang="en")
    _write_conll(root / "deu.testb", _ner_sentences(rng, 40), docstart=True)  # CoNLL-2003 layout: German
    out = FT.run_downstream(_debug_model(tok), tok, "ner", root, dataclasses.replace(FAST, epochs=6))
    assert set(out["per_lang"]) == {"en", "de"} and out["n_eval"] == {"de": 40, "en": 60}
    # a tagger that predicts O everywhere scores 0; one that tags every capitalised word B-PER about 0.3
    assert out["per_lang"]["en"]["f1"] > 0.75 and out["per_lang"]["de"]["f1"] > 0.75


@pytest.mark.timeout(120)
def test_mlqa_span_extraction_learns(tmp_path, tok):
    rng = random.Random(0)
    (tmp_path / "squad").mkdir()
    (tmp_path / "squad" / "train-v1.1.json").write_text(json.dumps(_squad(rng, 320, "t")), encoding="utf-8")
    test_dir = tmp_path / "MLQA_V1" / "test"
    test_dir.mkdir(parents=True)
    (test_dir / "test-context-en-question-en.json").write_text(json.dumps(_squad(rng, 60, "e")), encoding="utf-8")
    out = FT.run_downstream(_debug_model(tok), tok, "mlqa", tmp_path, dataclasses.replace(FAST, epochs=6))
    assert out["metric"] == "f1" and list(out["per_lang"]) == ["en"]
    # a random span of one of ~12 words, or the whole context, scores far below this
    assert out["per_lang"]["en"]["exact_match"] > 0.6 and out["per_lang"]["en"]["f1"] > 0.6


def test_finetune_config_checks():
    with pytest.raises(XlmrError, match="lr must be a positive number"):
        FT.FinetuneConfig(lr=0)
    with pytest.raises(XlmrError, match="seeds repeat"):
        FT.FinetuneConfig(seeds=(1, 1))
    with pytest.raises(XlmrError, match="eval_split must be 'dev' or 'test'"):
        FT.FinetuneConfig(eval_split="train")
