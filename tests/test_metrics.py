"""Downstream metrics against hand-computed values and the official scripts' semantics."""

from __future__ import annotations

import math
import warnings

import pytest

from xlmr_core.errors import XlmrError
from xlmr_core.evaluate import metrics as M

# ---------------------------------------------------------------------------------------------
# classification / regression


def test_accuracy_and_f1_hand_computed():
    labels = [1, 1, 1, 0, 0, 0]
    preds = [1, 1, 0, 0, 0, 1]
    assert M.accuracy(preds, labels) == pytest.approx(4 / 6)
    # positive class: tp=2, fp=1, fn=1 -> P=R=2/3 -> F1=2/3
    assert M.binary_f1(preds, labels) == pytest.approx(2 / 3)
    # class 0 also P=R=2/3, so macro F1 = 2/3; an asymmetric case below
    assert M.macro_f1(preds, labels) == pytest.approx(2 / 3)
    # labels a,a,b,c ; preds a,b,b,b: F1(a)=2*1*.5/1.5=2/3, F1(b)=2*(1/3)*1/(4/3)=1/2, F1(c)=0
    assert M.macro_f1(list("abbb"), list("aabc")) == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    # no positive prediction and no positive label: F1 0, not a crash
    assert M.binary_f1([0, 0], [0, 0]) == 0.0


def test_matthews_correlation():
    # binary: TP=2 TN=2 FP=1 FN=1 -> (4-1)/sqrt(3*3*3*3) = 1/3
    assert M.matthews_corr([1, 1, 0, 0, 0, 1], [1, 1, 1, 0, 0, 0]) == pytest.approx(1 / 3)
    assert M.matthews_corr([1, 0, 1, 0], [1, 0, 1, 0]) == pytest.approx(1.0)
    assert M.matthews_corr([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)
    # a constant predictor (CoLA's degenerate case) is defined as 0
    assert M.matthews_corr([1, 1, 1, 1], [1, 0, 1, 0]) == 0.0


def test_pearson_spearman_with_ties_hand_computed():
    x = [1, 2, 3, 4, 5]
    y = [2, 4, 5, 4, 5]
    # dx=[-2,-1,0,1,2], dy=[-2,0,1,0,1]: 6 / sqrt(10*6)
    assert M.pearson(x, y) == pytest.approx(6 / math.sqrt(60))
    # average ranks of y: [1, 2.5, 4.5, 2.5, 4.5] -> 7 / sqrt(10*9)
    assert M.rankdata(y).tolist() == [1.0, 2.5, 4.5, 2.5, 4.5]
    assert M.spearman(x, y) == pytest.approx(7 / math.sqrt(90))
    assert M.pearson([1, 1, 1], [1, 2, 3]) == 0.0  # undefined -> 0
    assert M.spearman([3, 1, 2], [30, 10, 20]) == pytest.approx(1.0)


def test_undefined_correlations_are_zero_without_scipy_warnings():
    # scipy.stats returns NaN and warns (ConstantInputWarning) where a side is constant; the GLUE scores say 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert M.pearson([2, 2, 2], [1, 2, 3]) == 0.0 and M.spearman([1, 2, 3], [5, 5, 5]) == 0.0
        assert M.spearman([1.0], [2.0]) == 0.0
    with pytest.raises(XlmrError, match="finite"):
        M.spearman([1, float("nan")], [1, 2])


def test_metric_length_mismatch_is_clear_error():
    with pytest.raises(XlmrError, match="2 predictions but 3 references"):
        M.accuracy([1, 2], [1, 2, 3])


# ---------------------------------------------------------------------------------------------
# seqeval entity chunks and F1


def test_get_entities_iob2_basic():
    assert M.get_entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 1), ("LOC", 3, 3)]


def test_get_entities_i_without_b_starts_entity():
    # IOB1 style, or a tagger's illegal I- after O: seqeval's lenient mode starts a chunk
    assert M.get_entities(["O", "I-PER", "I-PER", "O"]) == [("PER", 1, 2)]
    # IOB1: B- only separates two adjacent same-type entities
    assert M.get_entities(["I-ORG", "I-ORG", "B-ORG", "O"]) == [("ORG", 0, 1), ("ORG", 2, 2)]


def test_get_entities_type_change_mid_chunk_splits():
    assert M.get_entities(["B-PER", "I-LOC", "I-LOC"]) == [("PER", 0, 0), ("LOC", 1, 2)]
    assert M.get_entities(["B-PER", "I-PER", "I-ORG", "O"]) == [("PER", 0, 1), ("ORG", 2, 2)]


def test_get_entities_iobes():
    tags = ["S-PER", "B-LOC", "I-LOC", "E-LOC", "E-LOC", "S-ORG", "S-ORG"]
    # an E- after E- starts (and ends) a new chunk; each S- is its own chunk
    assert M.get_entities(tags) == [("PER", 0, 0), ("LOC", 1, 3), ("LOC", 4, 4), ("ORG", 5, 5), ("ORG", 6, 6)]


def test_get_entities_at_sentence_end_and_not_across_sentences():
    assert M.get_entities(["O", "B-PER", "I-PER"]) == [("PER", 1, 2)]
    # two sentences are joined with an O, so the entity ending one does not continue into the next
    assert M.get_entities([["O", "I-PER"], ["I-PER", "O"]]) == [("PER", 1, 1), ("PER", 3, 3)]


def test_entity_f1_hand_computed():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "I-ORG"]]
    # gold {PER 0-1, LOC 3, ORG 5}; pred {PER 0-1, ORG 5-6}: tp=1, P=1/2, R=1/3, F1=0.4
    out = M.entity_prf(gold, pred)
    assert out["precision"] == pytest.approx(1 / 2)
    assert out["recall"] == pytest.approx(1 / 3)
    assert out["f1"] == pytest.approx(0.4)
    assert M.entity_f1(gold, gold) == 1.0
    assert M.entity_f1([["O", "O"]], [["O", "O"]]) == 0.0  # no entities anywhere: 0 as seqeval


def test_entity_f1_bad_input():
    with pytest.raises(XlmrError, match="sentence 0 has 2 gold tags but 1"):
        M.entity_f1([["O", "O"]], [["O"]])
    with pytest.raises(XlmrError, match="X-PER"):
        M.get_entities(["X-PER"])


# ---------------------------------------------------------------------------------------------
# SQuAD / MLQA


def test_squad_normalisation_and_edge_cases():
    assert M.normalize_answer("The  Cat!") == "cat"
    assert M.normalize_answer("theatre, an apple") == "theatre apple"  # only whole-word articles
    # punctuation removed inside tokens: U.S.A. == USA
    assert M.qa_exact("U.S.A.", "usa") == 1.0
    # pred tokens {cat, sat}, gold {cat}: P=1/2, R=1 -> 2/3
    assert M.qa_f1("the cat sat", "a cat") == pytest.approx(2 / 3)
    # an empty prediction scores 0 in both (SQuAD v1.1)
    assert M.qa_f1("", "cat") == 0.0 and M.qa_exact("", "cat") == 0.0
    # a prediction that normalises to nothing (only an article) also scores 0 F1
    assert M.qa_f1("the", "the cat") == 0.0
    # repeated tokens count with multiplicity: pred [cat, cat], gold [cat] -> P=1/2 R=1
    assert M.qa_f1("cat cat", "cat") == pytest.approx(2 / 3)


def test_qa_scores_max_over_golds_and_unanswered():
    golds = {"q1": ["Denver Broncos", "the Broncos"], "q2": ["1990"], "q3": ["Paris"]}
    preds = {"q1": "Broncos", "q2": "in 1990"}  # q3 unanswered -> 0
    out = M.qa_scores(preds, golds)
    # q1: EM with "the Broncos"; q2: F1 2*(1/2)*1/(3/2)=2/3, EM 0
    assert out["exact_match"] == pytest.approx(1 / 3)
    assert out["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_mlqa_spanish_articles():
    assert M.normalize_answer("El gato y la casa", "es") == "gato y casa"
    assert M.normalize_answer("Unos perros, unas casas", "es") == "perros casas"
    # MLQA's Spanish list (un|una|unos|unas|el|la|los|las) has no "lo"; English rules would keep "el"
    assert M.normalize_answer("lo mejor", "es") == "lo mejor"
    assert M.normalize_answer("el gato") == "el gato"
    assert M.qa_exact("la casa", "casa", "es") == 1.0
    assert M.qa_exact("la casa", "casa") == 0.0  # SQuAD (English) normalisation keeps 'la'
    # Unicode punctuation (category P*) is removed, not only ASCII
    assert M.normalize_answer("«Hola», ¿qué?", "es") == "hola qué"


def test_mlqa_german_arabic_vietnamese_hindi():
    assert M.normalize_answer("Der Hund des Nachbarn", "de") == "hund nachbarn"
    assert M.normalize_answer("الكتاب", "ar") == "كتاب"
    assert M.normalize_answer("cái bàn", "vi") == "bàn"
    assert M.normalize_answer("भारत की राजधानी।", "hi") == "भारत की राजधानी"  # danda is P*


def test_mlqa_chinese_character_level():
    assert M.mixed_segmentation("abc 北京 def") == ["abc", "北", "京", "def"]
    assert M.normalize_answer("北京大学。", "zh") == "北 京 大 学"
    # character-level overlap: 2 of 4 predicted chars, 2 of 2 gold chars -> 2/3
    assert M.qa_f1("北京大学", "北京", "zh") == pytest.approx(2 / 3)
    # whitespace tokenisation (SQuAD) sees one token each and no overlap
    assert M.qa_f1("北京大学", "北京") == 0.0
    assert M.qa_f1("2008年北京", "北京", "zh") == pytest.approx(2 * (2 / 4) * 1 / (2 / 4 + 1))


def test_mlqa_unknown_language_is_clear_error():
    with pytest.raises(XlmrError, match="'xx'.*lang=None"):
        M.normalize_answer("x", "xx")
