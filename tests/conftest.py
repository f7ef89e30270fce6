"""Shared fixtures: the real demo corpus (built once, cached) and a small tokenizer trained on it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# a small, script-diverse subset of the demo languages used across the tests
TEST_LANGS = ["en", "de", "fr", "ru", "ar", "zh", "ja", "mr", "el", "fi"]
TEST_VOCAB = 2000  # SentencePiece pieces; the model vocabulary is this + 2
TEST_SAMPLE_LINES = 20000  # α-sampled lines the test tokenizers are trained on


def pytest_configure(config):
    # two cores shared by torch, SentencePiece and the subprocesses the tests start
    os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def demo_corpus() -> Path:
    """The real demo corpus (Debian documentation + UDHR), built once into the cache."""
    from xlmr_core.democorpus import ensure_demo_corpus

    return ensure_demo_corpus()


@pytest.fixture(scope="session")
def test_langs() -> list[str]:
    return list(TEST_LANGS)


@pytest.fixture(scope="session")
def demo_tokenizer(demo_corpus):
    """A 2,000-piece unigram tokenizer on ten demo languages (cached)."""
    from xlmr_core.data.tokenizer import tokenizer_for

    return tokenizer_for(demo_corpus, TEST_LANGS, TEST_VOCAB, alpha=0.3, seed=0, sample_lines=TEST_SAMPLE_LINES)
