"""Evaluation: held-out bits per byte with its unigram baseline and standard errors (``heldout``), sentence
embeddings, retrieval and pseudo-log-likelihood (``embeddings``), downstream scores (``metrics``), fine-tuning
(``finetune``) and the suites over a finished run (``suites``: a registry by name, ``evaluate_run``, ``xlmr eval``).

``xlmr_core.evaluate``'s own names are the suites' (``from xlmr_core.evaluate import evaluate_run``).
"""


def __getattr__(name: str):
    import importlib

    if not name.startswith("__"):
        module = importlib.import_module(f"{__name__}.suites")
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
