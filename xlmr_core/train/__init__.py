"""Training: the config's run set-up (``setup``: corpus checks, tokenizer and shards, model, optimizer, budget),
the MLM trainer (``trainer``), AdamW and its schedule (``optim``), the run directory (``rundir``: files,
checkpoints, ``load_run``, the ``RunRecord`` of final.json) and curves (``tracking``).

``xlmr_core.train``'s own names are the trainer's (``from xlmr_core.train import train``).
"""


from xlmr_core import forward_names

__getattr__ = forward_names(__name__, "trainer")
