"""xlmr_core: a compact library for scaling studies of multilingual masked language models.

Modules, in data-flow order: ``corpus`` (language files, α-sampling), ``tokenizer``
(SentencePiece unigram, fairseq id layout), ``data`` (token shards, blocks, MLM masking),
``model`` (the XLM-R encoder), ``train`` (the MLM trainer), ``evaluate`` (bits per byte,
retrieval, transfer), ``results`` and ``plots`` (tables and figures).
"""

__version__ = "0.1.0"
