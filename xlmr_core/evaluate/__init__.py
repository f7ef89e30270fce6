"""Evaluation: held-out bits per byte with its unigram baseline and standard errors (``heldout``), sentence
embeddings, retrieval and pseudo-log-likelihood (``embeddings``), downstream scores (``metrics``), fine-tuning
(``finetune``) and the suites over a finished run (``suites``: a registry by name, ``evaluate_run``, ``xlmr eval``).

``xlmr_core.evaluate``'s own names are the suites' (``from xlmr_core.evaluate import evaluate_run``).
"""


from xlmr_core import forward_names

__getattr__ = forward_names(__name__, "suites")
