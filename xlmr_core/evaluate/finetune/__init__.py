"""Downstream transfer: fine-tune the encoder on a benchmark and evaluate every language (XLM-R §5).

Cross-lingual transfer as in Conneau et al. 2019 (arXiv 1911.02116): fine-tune on the English
training set and evaluate zero-shot on every language of the evaluation data, or fine-tune on the
training sets of all languages together (translate-train-all) when per-language files are given.

- ``config``: ``FinetuneConfig``, the settings of one experiment;
- ``readers``: the benchmarks' own formats (XNLI, MultiNLI / XNLI-MT, GLUE, topic TSVs, CoNLL / WikiANN,
  SQuAD-format JSON), each failing with one XlmrError naming the file and line;
- ``features``: examples → token ids and targets (sentence pairs, first sub-tokens of words, QA windows);
- ``heads``: task heads on ``XLMRForMaskedLM.encode`` (B, T, H), as fairseq / transformers RoBERTa;
- ``tasks``: one object per task kind (classification, regression, tagging, extractive QA) holding its
  reader, features, head, loss and scorer, and the registry ``TASKS`` of benchmarks by suite name;
- ``layout``: where each benchmark keeps its files;
- ``loop``: the training loop (AdamW, linear warmup and decay, gradient clipping) run once per seed, reporting
  the mean and standard deviation over seeds; ``finetune_task``, ``run_downstream``, ``ddtp_transfer``.
"""

from xlmr_core.evaluate.finetune.config import FinetuneConfig
from xlmr_core.evaluate.finetune.features import (
    best_span,
    context_words,
    encode_qa,
    encode_tagged,
    encode_text,
    qa_predictions,
)
from xlmr_core.evaluate.finetune.heads import ClassificationHead, TaskModel, TokenHead
from xlmr_core.evaluate.finetune.loop import (
    DDTP_CONFIG,
    ddtp_transfer,
    downstream_files,
    finetune_task,
    load_encoder,
    run_downstream,
)
from xlmr_core.evaluate.finetune.readers import (
    QAExample,
    TaggedSentence,
    TextExample,
    read_conll,
    read_nli_train,
    read_squad,
    read_xnli,
)
from xlmr_core.evaluate.finetune.tasks import (
    SUITES,
    TASKS,
    Classification,
    ExtractiveQA,
    Regression,
    Tagging,
    Task,
    get_task,
    read_glue,
    read_topics,
)

__all__ = [
    "DDTP_CONFIG", "SUITES", "TASKS", "Classification", "ClassificationHead", "ExtractiveQA", "FinetuneConfig",
    "QAExample", "Regression", "TaggedSentence", "Tagging", "Task", "TaskModel", "TextExample", "TokenHead",
    "best_span", "context_words", "ddtp_transfer", "downstream_files", "encode_qa", "encode_tagged", "encode_text",
    "finetune_task", "get_task", "load_encoder", "qa_predictions", "read_conll", "read_glue", "read_nli_train",
    "read_squad", "read_topics", "read_xnli", "run_downstream",
]
