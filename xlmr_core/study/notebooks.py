"""Run the analysis notebooks with papermill; executed copies go next to the figures.

The notebooks ship with the package (``xlmr_core/study/nb/*.ipynb``, package data, found with ``importlib.resources``;
the repository's ``notebooks/`` links there for ``jupyter lab notebooks/explore.ipynb``). Each has one cell
tagged ``parameters``: ``study_root`` (the study's directory, holding the tidy results table that ``collect``
writes: ``results.read_table``), ``figures_dir``, ``planned_runs`` and ``partial`` (a table with fewer runs than
planned stops the notebook with one line unless ``partial``), and the notebook's own options; papermill injects
the values after it. The kernel is this interpreter (``sys.executable``), whatever kernelspecs are installed, so
a fresh virtual environment works without activation or ``ipykernel install``; it runs in the caller's working
directory, so relative paths mean what they mean on the command line.

From a shell, the same with papermill itself (from the repository root)::

    papermill notebooks/capacity_dilution.ipynb figures/capacity_dilution/capacity_dilution.ipynb \\
        -p study_root results/capacity_dilution -p figures_dir figures/capacity_dilution
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

from xlmr_core.errors import XlmrError

NOTEBOOK_PACKAGE, NOTEBOOK_SUBDIR = "xlmr_core.study", "nb"
"""Where the notebooks are: ``xlmr_core/study/nb/`` (package data)."""
ANALYSIS: dict[str, str] = {
    "capacity_dilution": "capacity_dilution",
    "vocab_scaling": "vocab_scaling",
    "sampling_alpha": "sampling_alpha",
    "scaling_laws": "scaling_laws",
    "explore": "capacity_dilution",
    "curse_lab": "curse_lab",
}
"""Notebook name -> the study its ``study_root`` defaults to (``results/<study>``)."""
FIGURES: dict[str, tuple[str, ...]] = {
    "capacity_dilution": ("capacity_dilution", "capacity_dilution_paired", "capacity_dilution_bpb",
                          "capacity_dilution_curves"),
    "vocab_scaling": ("vocab_scaling", "vocab_scaling_curves"),
    "sampling_alpha": ("sampling_alpha", "sampling_alpha_curves"),
    "scaling_laws": ("scaling_laws_atlas", "scaling_laws_extrapolation", "scaling_laws_chinchilla",
                     "scaling_laws_vocab"),
    "explore": ("explore_curves",),
    "curse_lab": ("curse_lab_k_curves",),
}
"""Figures each notebook writes (``<name>.png``, ``.pdf`` and the plotted numbers as ``.csv``; the transfer
figures ``<study>_transfer`` besides where the runs were evaluated with the ``ddtp`` suite)."""


def _notebooks():
    """The packaged notebooks' directory (a ``Traversable``)."""
    return resources.files(NOTEBOOK_PACKAGE).joinpath(NOTEBOOK_SUBDIR)


def notebook_names() -> list[str]:
    """The names of the packaged notebooks."""
    return sorted(p.name.removesuffix(".ipynb") for p in _notebooks().iterdir() if p.name.endswith(".ipynb"))


def notebook_path(name: str) -> Path:
    """The packaged notebook ``name`` (``capacity_dilution``, …) as a file path."""
    res = _notebooks().joinpath(f"{name}.ipynb")
    if not res.is_file():
        raise XlmrError(f"no notebook {name!r}; the notebooks are {', '.join(notebook_names())}")
    if not isinstance(res, os.PathLike):
        raise XlmrError(f"the notebooks of {NOTEBOOK_PACKAGE} are not files on disk ({res}): install the package "
                        "unzipped (pip install does)")
    return Path(os.fspath(res))


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


def _planned(planned_runs):
    """``planned_runs`` as papermill can write it into the notebook: None, a number or a list of run names."""
    if planned_runs is None or isinstance(planned_runs, int):
        return planned_runs
    return [str(r) for r in planned_runs]


def run_notebook(name: str, study_root: str | os.PathLike, figures_dir: str | os.PathLike, *,
                 parameters: dict | None = None, planned_runs: int | Sequence[str] | None = None,
                 partial: bool = False, timeout_s: int = 1800) -> Path:
    """Execute the packaged notebook ``name`` against the study at ``study_root`` into
    ``figures_dir/<name>.ipynb`` (its figures go to ``figures_dir`` too); returns the executed copy's path.

    ``planned_runs`` (a number or the runs' names) and ``partial`` go to the notebook (``results.read_table``);
    ``parameters``: its other parameters. The table must be there (``collect`` writes it). A failing cell is one
    XlmrError line naming the cell and its error.
    """
    papermill = _papermill()
    src = notebook_path(name)
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    out = figures_dir / f"{name}.ipynb"
    params = {"study_root": str(Path(study_root).resolve()), "figures_dir": str(figures_dir.resolve()),
              "planned_runs": _planned(planned_runs), "partial": bool(partial)}
    params.update(parameters or {})
    tmp = out.with_name(f".{name}.tmp{os.getpid()}.ipynb")
    try:
        papermill.execute_notebook(str(src), str(tmp), parameters=params, kernel_name="python3",
                                   kernel_manager_class=_kernel_manager_class(), cwd=os.getcwd(),
                                   progress_bar=False, execution_timeout=timeout_s, request_save_on_cell_execute=False)
    except papermill.PapermillExecutionError as e:
        if e.ename == "XlmrError":  # the library's own one line (no table, fewer runs than planned, …)
            tmp.unlink(missing_ok=True)
            raise XlmrError(f"notebook {name}: {e.evalue}") from None
        raise XlmrError(f"notebook {name} failed in cell {e.exec_count} ({e.ename}: {e.evalue}); the executed "
                        f"copy with the traceback is {tmp}") from None
    os.replace(tmp, out)
    return out


def run_notebooks(names: Sequence[str], study_root: str | os.PathLike | Mapping[str, str | os.PathLike],
                  figures_dir: str | os.PathLike, *, parameters: dict | None = None,
                  planned_runs: int | Sequence[str] | None = None, partial: bool = False,
                  timeout_s: int = 1800, echo=print) -> dict[str, Path]:
    """``run_notebook`` for each of ``names`` against ``study_root`` (or {name: study root}); returns {name:
    executed copy}. ``parameters`` go to each notebook that declares them in its parameters cell."""
    papermill = _papermill()
    roots = {n: (study_root[n] if isinstance(study_root, Mapping) else study_root) for n in names}
    done = {}
    for name in names:
        t0 = time.time()
        declared = papermill.inspect_notebook(str(notebook_path(name)))
        mine = {k: v for k, v in (parameters or {}).items() if k in declared}
        done[name] = run_notebook(name, roots[name], figures_dir, parameters=mine, planned_runs=planned_runs,
                                  partial=partial, timeout_s=timeout_s)
        echo(f"notebook {name}: {time.time() - t0:.0f}s -> {done[name]}")
    return done


# ---------------------------------------------------------------- helpers for explore.ipynb


def pick_run(table, run: str = "") -> Path:
    """The directory of the finished run named ``run`` in a results table (``results.read_table``), or of its
    first finished run when ``run`` is empty."""
    done = table[table["status"] == "done"] if "status" in table.columns else table
    names = list(dict.fromkeys(done["run"]))
    if not names:
        raise XlmrError("no finished run in the results table: finish a run of the study first")
    if run and run not in names:
        raise XlmrError(f"no finished run {run!r} in the results table; runs: {', '.join(names[:20])}")
    return Path(done[done["run"] == (run or names[0])]["run_dir"].iloc[0])


def parallel_sentences(corpus_dir: str | os.PathLike, langs: Sequence[str], *, set_name: str = "udhr_para",
                       n: int = 20) -> dict[str, list[str]]:
    """The first ``n`` sentences shared by all ``langs`` (same ids) of a parallel set: {lang: [text, ...]}."""
    from xlmr_core.evaluate.suites import read_tsv, set_languages

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

    from xlmr_core.evaluate.suites import embed

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
