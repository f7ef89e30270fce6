"""The model: the XLM-R encoder (``encoder``), HF / fairseq import and export (``hf``), building a model from
weights (``weights``) and the device, precision and padding helpers (``device``).

``xlmr_core.model``'s own names are the encoder's (``from xlmr_core.model import XLMRForMaskedLM``).
"""


from xlmr_core import forward_names

__getattr__ = forward_names(__name__, "encoder")
