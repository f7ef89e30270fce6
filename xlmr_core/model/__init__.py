"""The model: the XLM-R encoder (``encoder``), HF / fairseq import and export (``hf``), building a model from
weights (``weights``) and the device, precision and padding helpers (``device``).

``xlmr_core.model``'s own names are the encoder's (``from xlmr_core.model import XLMRForMaskedLM``).
"""


def __getattr__(name: str):
    import importlib

    if not name.startswith("__"):
        module = importlib.import_module(f"{__name__}.encoder")
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
