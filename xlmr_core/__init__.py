"""xlmr_core: a compact library for scaling studies of multilingual masked language models.

Subpackages, in data-flow order:

- ``data``: language files and α-sampling (``corpus``), SentencePiece unigram tokenizers in the fairseq id
  layout (``tokenizer``), derived languages (``derived``), the content-addressed cache (``cache``), token shards,
  batches and MLM masking (``shards``, ``batches``, ``masking``);
- ``model``: the XLM-R encoder (``encoder``), HF / fairseq checkpoints (``hf``), ``weights``, ``device``;
- ``train``: set-up, the trainer, optimiser, run directories (``rundir``) and curves (``tracking``);
- ``evaluate``: held-out bits per byte (``heldout``), ``embeddings`` and retrieval, ``metrics``, ``finetune``
  and the evaluation ``suites``;
- ``study``: the table of studies and ``xlmr-sweep``, presets, sweep grids and the derived-language lab, jobs,
  the tidy ``results`` table, ``laws``, ``plots`` and the ``notebooks``;
- ``democorpus``: the demo corpus, lab source and DDTP data set builders.

Beside them: ``config`` (the run config), ``cli`` (the ``xlmr`` command), ``errors``, ``fsutil``, ``units``.
Modules named before this layout (``xlmr_core.results``, ``xlmr_core.rundir``, …) still import, as the modules
they became (``_MOVED``).
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

_MOVED = {"corpus": "data.corpus", "tokenizer": "data.tokenizer", "derived": "data.derived", "cache": "data.cache",
          "hf": "model.hf", "weights": "model.weights", "device": "model.device", "trainsetup": "train.setup",
          "optim": "train.optim", "rundir": "train.rundir", "tracking": "train.tracking",
          "heldout": "evaluate.heldout", "embeddings": "evaluate.embeddings", "metrics": "evaluate.metrics",
          "finetune": "evaluate.finetune", "studies": "study.studies", "studycli": "study.cli",
          "sweeps": "study.sweeps", "presets": "study.presets", "jobs": "study.jobs", "results": "study.results",
          "notebooks": "study.notebooks", "lawcli": "study.lawcli", "lab": "study.lab", "laws": "study.laws",
          "plots": "study.plots"}
"""Earlier module names and the modules they are now (``model``, ``train`` and ``evaluate`` are packages whose
own names are those of ``model.encoder``, ``train.trainer`` and ``evaluate.suites``)."""


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import xlmr_core.<earlier name>[.sub]`` gives the module it became (so old code and pickles still load)."""

    def find_spec(self, fullname, path=None, target=None):
        parts = fullname.split(".")
        if len(parts) >= 2 and parts[0] == __name__ and parts[1] in _MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        parts = spec.name.split(".")
        module = importlib.import_module(".".join([__name__, _MOVED[parts[1]], *parts[2:]]))
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module):
        pass


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())


def forward_names(package: str, module: str):
    """A package's ``__getattr__`` that answers with the names of its main module (``xlmr_core.model``'s are
    ``model.encoder``'s), imported on first use so that importing the package stays light."""

    def __getattr__(name: str):
        if not name.startswith("__"):
            target = importlib.import_module(f"{package}.{module}")
            if hasattr(target, name):
                return getattr(target, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def __getattr__(name: str):
    if name in _MOVED:
        return importlib.import_module(f"{__name__}.{_MOVED[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
