"""Training: the config's run set-up (``setup``: corpus checks, tokenizer and shards, model, optimizer, budget),
the MLM trainer (``trainer``), AdamW and its schedule (``optim``), the run directory (``rundir``: files,
checkpoints, ``load_run``, the ``RunRecord`` of final.json) and curves (``tracking``).

``xlmr_core.train``'s own names are the trainer's (``from xlmr_core.train import train``).
"""


def __getattr__(name: str):
    import importlib

    if not name.startswith("__"):
        module = importlib.import_module(f"{__name__}.trainer")
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
