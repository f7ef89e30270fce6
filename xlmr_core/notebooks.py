"""Run the analysis notebooks (``notebooks/*.ipynb``) with papermill; executed copies go next to the figures.

Each notebook has a cell tagged ``parameters`` (``results_dir``, ``figures_dir``, ``sweep``); papermill injects
the values after it. The kernel is this interpreter (``sys.executable``), whatever kernelspecs are installed,
so a fresh virtual environment works without activation or ``ipykernel install``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import XlmrError

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
ANALYSIS: dict[str, str] = {
    "capacity_dilution": "capacity_dilution",
    "vocab_scaling": "vocab_scaling",
    "sampling_alpha": "sampling_alpha",
    "scaling_laws": "capacity_dilution",
}
"""Notebook name -> the sweep it analyses (its results are ``results_dir/<sweep>``). The laws default to the
capacity sweep (its K × N grid, the demo's); at the cpu and gpu scales pass ``sweep="capacity_dilution,scaling_laws"``
(the law grid and its budget-1 points, the capacity sweep's runs)."""
FIGURES: dict[str, tuple[str, ...]] = {
    "capacity_dilution": ("capacity_dilution", "capacity_dilution_paired", "capacity_dilution_bpb",
                          "capacity_dilution_curves"),
    "vocab_scaling": ("vocab_scaling", "vocab_scaling_curves"),
    "sampling_alpha": ("sampling_alpha", "sampling_alpha_curves"),
    "scaling_laws": ("scaling_laws_atlas", "scaling_laws_extrapolation", "scaling_laws_chinchilla",
                     "scaling_laws_vocab"),
    "explore": ("explore_curves",),
}
"""Figures each notebook writes (``<name>.png`` and ``<name>.pdf``)."""


def _papermill():
    """papermill, or one line on how to install the notebook extra (it is not a core dependency)."""
    try:
        import papermill
    except ImportError:
        raise XlmrError("running notebooks needs the notebook extra: pip install 'xlmr-scaling[notebooks]' "
                        "(papermill, jupyter_client, ipykernel)") from None
    return papermill


def _kernel_manager_class():
    """A jupyter_client KernelManager that starts ipykernel with this interpreter."""
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import KernelManager

    class ThisPythonKernelManager(KernelManager):
        """Ignores installed kernelspecs (a user's ``python3`` may point at another Python)."""

        @property
        def kernel_spec(self):
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                              display_name=f"Python ({sys.prefix})", language="python")

    return ThisPythonKernelManager


def run_notebook(name: str, results_dir: str | os.PathLike, figures_dir: str | os.PathLike, *,
                 sweep: str | None = None, parameters: dict | None = None, timeout_s: int = 1800) -> Path:
    """Execute ``notebooks/<name>.ipynb`` into ``figures_dir/<name>.ipynb``; returns the executed copy's path."""
    papermill = _papermill()

    src = NOTEBOOK_DIR / f"{name}.ipynb"
    if not src.exists():
        have = ", ".join(sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")))
        raise XlmrError(f"no notebook {src}; notebooks: {have}")
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    out = figures_dir / f"{name}.ipynb"
    params = {"results_dir": str(Path(results_dir).resolve()), "figures_dir": str(figures_dir.resolve())}
    if sweep or name in ANALYSIS:
        params["sweep"] = sweep or ANALYSIS[name]
    params.update(parameters or {})
    tmp = out.with_name(f".{name}.tmp{os.getpid()}.ipynb")
    try:
        papermill.execute_notebook(str(src), str(tmp), parameters=params, kernel_name="python3",
                                   kernel_manager_class=_kernel_manager_class(), cwd=str(figures_dir),
                                   progress_bar=False, execution_timeout=timeout_s, request_save_on_cell_execute=False)
    except papermill.PapermillExecutionError as e:
        raise XlmrError(f"notebook {name} failed in cell {e.exec_count} ({e.ename}: {e.evalue}); the executed "
                        f"copy with the traceback is {tmp}") from None
    os.replace(tmp, out)
    return out


def run_notebooks(results_dir: str | os.PathLike, figures_dir: str | os.PathLike, *,
                  names: Sequence[str] = ("capacity_dilution", "vocab_scaling"), sweep: str | None = None,
                  parameters: dict | None = None, echo=print) -> dict[str, Path]:
    """Execute each named notebook against ``results_dir``; returns {name: executed copy}. ``parameters`` go to
    each notebook that declares them in its parameters cell."""
    papermill = _papermill()

    done = {}
    for name in names:
        t0 = time.time()
        src = NOTEBOOK_DIR / f"{name}.ipynb"
        declared = papermill.inspect_notebook(str(src)) if src.exists() else {}
        mine = {k: v for k, v in (parameters or {}).items() if k in declared}  # a missing notebook: its error below
        done[name] = run_notebook(name, results_dir, figures_dir, sweep=sweep, parameters=mine)
        echo(f"notebook {name}: {time.time() - t0:.0f}s -> {done[name]}")
    return done


# ---------------------------------------------------------------- helpers for explore.ipynb


def parallel_sentences(corpus_dir: str | os.PathLike, langs: Sequence[str], *, set_name: str = "udhr_para",
                       n: int = 20) -> dict[str, list[str]]:
    """The first ``n`` sentences shared by all ``langs`` (same ids) of a parallel set: {lang: [text, ...]}."""
    from .evaluate import read_tsv, set_languages

    have = [lang for lang in langs if lang in set_languages(corpus_dir, set_name)]
    if not have:
        raise XlmrError(f"none of {', '.join(langs)} is in the parallel set {set_name!r} of {corpus_dir}")
    items = {lang: read_tsv(Path(corpus_dir) / "eval" / set_name / f"{lang}.tsv") for lang in have}
    ids = [i for i in items[have[0]] if all(i in items[lang] for lang in have)][:n]
    return {lang: [items[lang][i] for i in ids] for lang in have}


def tokenize_table(tokenizer, texts: dict[str, str]):
    """One row per language: the pieces of its text, their number and tokens per character."""
    import pandas as pd

    rows = []
    for lang, text in texts.items():
        ids = tokenizer.encode(text)
        rows.append({"lang": lang, "tokens": len(ids), "chars": len(text), "tokens_per_char": len(ids) / len(text),
                     "pieces": " ".join(tokenizer.id_to_piece(i) for i in ids)})
    return pd.DataFrame(rows)


def fill_mask(model, tokenizer, text: str, *, position: int | None = None, k: int = 5):
    """Mask one token of ``text`` (the middle one by default) and return the model's top ``k`` pieces."""
    import pandas as pd
    import torch

    ids = tokenizer.encode(text)
    if not ids:
        raise XlmrError(f"text {text!r} has no tokens to mask")
    position = len(ids) // 2 if position is None else position
    if not 0 <= position < len(ids):
        raise XlmrError(f"position {position} is outside the text's {len(ids)} tokens")
    ids = ids[: model.config.max_positions - 3]
    x = torch.tensor([[tokenizer.bos_id, *ids, tokenizer.eos_id]])
    x[0, position + 1] = tokenizer.mask_id
    with torch.no_grad():
        probs = model.logits(x)[0, position + 1].float().softmax(-1)  # (V,)
    p, top = probs.topk(k)
    return pd.DataFrame({"piece": [tokenizer.id_to_piece(int(i)) for i in top], "prob": p.numpy(),
                         "masked": tokenizer.id_to_piece(ids[position])})


def nearest_neighbours(model, tokenizer, sentences: dict[str, list[str]], *, query: str = "en"):
    """For each language, how often the nearest ``query``-language sentence (cosine of mean-pooled middle-layer
    states, ``evaluate.embed``) is its translation, and the first sentence's neighbour."""
    import numpy as np
    import pandas as pd

    from .evaluate import embed

    if query not in sentences:
        raise XlmrError(f"query language {query!r} is not among {', '.join(sentences)}")
    unit = lambda a: a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)  # noqa: E731
    q = unit(embed(model, tokenizer, sentences[query]))  # (n, H)
    rows = []
    for lang, texts in sentences.items():
        if lang == query:
            continue
        sim = unit(embed(model, tokenizer, texts)) @ q.T  # (n, n)
        best = sim.argmax(1)
        rows.append({"lang": lang, "accuracy": float((best == np.arange(len(texts))).mean()), "n": len(texts),
                     "sentence": texts[0][:60], "neighbour": sentences[query][best[0]][:60]})
    return pd.DataFrame(rows)
