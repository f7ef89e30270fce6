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
}
"""Notebook name -> the sweep it analyses (its results are ``results_dir/<sweep>``)."""
FIGURES: dict[str, tuple[str, ...]] = {
    "capacity_dilution": ("capacity_dilution", "capacity_dilution_acc", "capacity_dilution_curves"),
    "vocab_scaling": ("vocab_scaling", "vocab_scaling_curves"),
    "sampling_alpha": ("sampling_alpha", "sampling_alpha_curves"),
    "explore": ("explore_curves",),
}
"""Figures each notebook writes (``<name>.png`` and ``<name>.pdf``)."""


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
    import papermill

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
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
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
    """Execute each named notebook against ``results_dir``; returns {name: executed copy}."""
    done = {}
    for name in names:
        t0 = time.time()
        done[name] = run_notebook(name, results_dir, figures_dir, sweep=sweep, parameters=parameters)
        echo(f"notebook {name}: {time.time() - t0:.0f}s -> {done[name]}")
    return done
