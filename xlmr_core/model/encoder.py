"""The XLM-R encoder with its masked-LM head (Conneau et al. 2019, arXiv 1911.02116; fairseq RoBERTa as released).

One file, top to bottom: ModelConfig and named sizes → Embeddings → SelfAttention → FeedForward → Layer →
MLMHead → XLMRForMaskedLM (encoder, masked-only head, chunked cross-entropy) → FLOP counts.
Parameter names are our own; :mod:`xlmr_core.model.hf` maps them to and from transformers and fairseq checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

from xlmr_core.errors import XlmrError

IGNORE_INDEX = -100  # label at positions that are not predicted (as in fairseq/transformers)
LOGITS_BUDGET = 1 << 25  # most logits (rows × vocab) alive at once in the loss off CUDA: 128 MiB in fp32
LOGITS_BUDGET_MAX = 1 << 29  # on CUDA at most 2 GiB of fp32 logits: ~2,100 rows at V = 250,002, big GEMMs
BYTES_PER_LOGIT = 8  # fp32 log-probabilities + the bf16 logits and gradient of a chunk
VOCAB_MULTIPLE = 128  # the loss pads the vocabulary to this many rows: whole tensor-core tiles in its GEMMs


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Shape and regularisation of an XLM-R encoder; the run's batch, steps and learning rate live elsewhere."""

    vocab_size: int
    """Embedding rows: SentencePiece pieces + 2 in the fairseq layout, <mask> last (XLM-R: 250002)."""
    hidden_size: int
    """Width of the residual stream (XLM-R base 768, large 1024)."""
    num_layers: int
    """Number of Transformer layers."""
    num_heads: int
    """Attention heads; must divide hidden_size."""
    ffn_size: int
    """Inner width of the feed-forward block (4 × hidden in XLM-R)."""
    max_positions: int = 512
    """Longest sequence; the position table has max_positions + padding_idx + 1 rows (514 in XLM-R)."""
    dropout: float = 0.1
    """Dropout on the embeddings and on the attention and FFN outputs."""
    attention_dropout: float = 0.1
    """Dropout on the attention probabilities."""
    layer_norm_eps: float = 1e-5
    """LayerNorm epsilon (fairseq's default)."""
    pre_ln: bool = False
    """Pre-LN layers with a final LayerNorm and no embedding LayerNorm (XLM-R XL/XXL); False is post-LN."""
    padding_idx: int = 1
    """Id of <pad>: its embedding row is zero and padded positions keep position id padding_idx."""
    init_std: float = 0.02
    """Standard deviation of the normal initialisation of weights (BERT/fairseq)."""

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "ffn_size", "max_positions"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise XlmrError(f"model config: {name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_heads:
            raise XlmrError(f"model config: hidden_size {self.hidden_size} is not divisible by "
                            f"num_heads {self.num_heads}; choose heads that divide it")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise XlmrError(f"model config: {name} must be in [0, 1), got {getattr(self, name)!r}")
        if not self.layer_norm_eps > 0 or not self.init_std > 0:
            raise XlmrError(f"model config: layer_norm_eps ({self.layer_norm_eps}) and init_std "
                            f"({self.init_std}) must be positive")
        if not 0 <= self.padding_idx < self.vocab_size:
            raise XlmrError(f"model config: padding_idx {self.padding_idx} outside the vocabulary "
                            f"of {self.vocab_size}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def position_rows(self) -> int:
        """Rows of the position table: ids run from padding_idx + 1 (fairseq ``make_positions``)."""
        return self.max_positions + self.padding_idx + 1


# Named shapes (vocabulary set separately: it comes from the tokenizer). base and large are XLM-R's;
# base-w960/-w1152 are the paper's wider bases for the capacity study (§5): only the width grows, layers and
# heads stay at 12, FFN stays 4 × hidden.
SIZES: dict[str, dict] = {
    "debug": dict(hidden_size=64, num_layers=2, num_heads=2, ffn_size=128, max_positions=128),
    "tiny": dict(hidden_size=256, num_layers=4, num_heads=4, ffn_size=1024),
    "mini": dict(hidden_size=384, num_layers=6, num_heads=6, ffn_size=1536),
    "small": dict(hidden_size=512, num_layers=8, num_heads=8, ffn_size=2048),
    "base": dict(hidden_size=768, num_layers=12, num_heads=12, ffn_size=3072),
    "base-w960": dict(hidden_size=960, num_layers=12, num_heads=12, ffn_size=3840),
    "base-w1152": dict(hidden_size=1152, num_layers=12, num_heads=12, ffn_size=4608),
    "large": dict(hidden_size=1024, num_layers=24, num_heads=16, ffn_size=4096),
}


def model_config(size: str, vocab_size: int, **overrides) -> ModelConfig:
    """The named size ``size`` with ``vocab_size`` rows, any field replaced by ``overrides``."""
    if size not in SIZES:
        raise XlmrError(f"unknown model size {size!r}; choose one of {', '.join(SIZES)}")
    names = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise XlmrError(f"unknown model config field(s) {', '.join(unknown)}; fields are {', '.join(sorted(names))}")
    return replace(ModelConfig(vocab_size=vocab_size, **SIZES[size]), **overrides)


@dataclass(frozen=True)
class Predicted:
    """Where the head runs, worked out from the labels: made on the host, the forward never waits for the device."""

    rows: torch.Tensor | None
    """(B, Tq) positions the last layer computes, each row's predicted ones first; None when Tq = T."""
    index: torch.Tensor
    """(N,) flat indices into the (B · Tq) computed positions of the predicted ones, row-major."""
    targets: torch.Tensor
    """(N,) their labels."""
    padded: bool
    """Whether any input position is <pad> (then positions and attention need the padding mask)."""

    @property
    def n(self) -> int:
        return self.index.shape[0]

    def to(self, device: torch.device, non_blocking: bool = False) -> Predicted:
        def move(t):
            return None if t is None else t.to(device, non_blocking=non_blocking)

        return Predicted(move(self.rows), move(self.index), move(self.targets), self.padded)


def predicted_positions(input_ids: torch.Tensor, labels: torch.Tensor, padding_idx: int = 1) -> Predicted:
    """The :class:`Predicted` plan of a batch; give it CPU tensors and the device is not consulted."""
    B, T = labels.shape
    predict = labels != IGNORE_INDEX  # (B, T)
    tq = max(int(predict.sum(1).max()), 1) if B else 1
    rows = None
    if tq < T:
        # each row's predicted positions first, in order: sort keys (not predicted) * T + position
        key = (~predict) * T + torch.arange(T, device=labels.device)
        rows = key.sort(dim=1).indices[:, :tq]  # (B, Tq)
        predict = predict.gather(1, rows)
        labels = labels.gather(1, rows)
    index = predict.reshape(-1).nonzero().squeeze(1)  # (N,)
    return Predicted(rows, index, labels.reshape(-1)[index], not bool((input_ids != padding_idx).all()))


def logits_budget(device: torch.device, vocab_size: int) -> int:
    """Most logits the loss keeps alive at once: 1/16 of the free memory on CUDA (≤ LOGITS_BUDGET_MAX)."""
    if device.type != "cuda":
        return LOGITS_BUDGET
    free, _ = torch.cuda.mem_get_info(device)
    return int(min(max(free // 16 // BYTES_PER_LOGIT, LOGITS_BUDGET), LOGITS_BUDGET_MAX))


@dataclass(frozen=True)
class MLMOutput:
    """Masked-LM loss of one batch; ``loss`` carries the gradient, the rest are detached counts."""

    loss: torch.Tensor
    """Mean cross-entropy in nats over predicted positions (0 when there are none)."""
    loss_sum: torch.Tensor
    """Summed cross-entropy in nats (for exact averages over many batches)."""
    n_masked: torch.Tensor
    """Number of predicted positions (labels != -100)."""
    n_correct: torch.Tensor
    """Predicted positions whose arg-max is the label."""

    @property
    def loss_bits(self) -> torch.Tensor:
        return self.loss.detach() / math.log(2)


class Embeddings(nn.Module):
    """Token + position (+ the single token-type row) embeddings, then LayerNorm (post-LN only) and dropout."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.padding_idx = cfg.padding_idx
        self.tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.padding_idx)
        # fairseq LearnedPositionalEmbedding: ids start at padding_idx + 1, so 512 tokens need 514 rows
        self.positions = nn.Embedding(cfg.position_rows, cfg.hidden_size, padding_idx=cfg.padding_idx)
        # XLM-R has no segments; one row kept so HF checkpoints round-trip (fairseq checkpoints give zeros)
        self.token_type = nn.Embedding(1, cfg.hidden_size)
        # XLM-R XL/XXL (pre-LN) drop the embedding LayerNorm
        self.norm = None if cfg.pre_ln else nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, input_ids: torch.Tensor, is_token: torch.Tensor | None) -> torch.Tensor:
        # input_ids (B, T); is_token (B, T) bool, False at <pad>, or None when there is no padding
        T = input_ids.shape[1]
        x = F.embedding(input_ids, self.tokens.weight, self.padding_idx)  # (B, T, H)
        if is_token is None:
            # no padding (pretraining blocks): positions are padding_idx+1 .. padding_idx+T in every row
            first = self.padding_idx + 1
            x = x + (self.positions.weight[first:first + T] + self.token_type.weight[0])
        else:
            # fairseq make_positions: count real tokens; padding keeps position id padding_idx (a zero row)
            pos = torch.cumsum(is_token, dim=1) * is_token + self.padding_idx  # (B, T)
            x = x + F.embedding(pos, self.positions.weight, self.padding_idx) + self.token_type.weight[0]
        if self.norm is not None:
            x = self.norm(x)
        return self.drop(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention through ``F.scaled_dot_product_attention`` (flash/efficient kernels)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.num_heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)  # q, k, v stacked (fairseq in_proj order)
        self.out = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout = cfg.attention_dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, xq: torch.Tensor | None = None) -> torch.Tensor:
        # x (B, T, H); mask (B, 1, 1, T) bool, True = attend, or None; xq (B, Tq, H): the only queries needed
        B, T, H = x.shape
        nh, hs = self.num_heads, self.head_dim
        if xq is None:
            q, k, v = self.qkv(x).view(B, T, 3, nh, hs).permute(2, 0, 3, 1, 4)  # 3 × (B, nh, T, hs)
        else:
            w, b = self.qkv.weight, self.qkv.bias
            q = F.linear(xq, w[:H], b[:H]).view(B, -1, nh, hs).transpose(1, 2)  # (B, nh, Tq, hs)
            k, v = F.linear(x, w[H:], b[H:]).view(B, T, 2, nh, hs).permute(2, 0, 3, 1, 4)  # 2 × (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, -1, H)  # (B, Tq, H)
        return self.out(y)


class FeedForward(nn.Module):
    """Linear → GELU (exact, erf) → Linear."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.up = nn.Linear(cfg.hidden_size, cfg.ffn_size)
        self.down = nn.Linear(cfg.ffn_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


def _gather_rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """x (B, T, H), rows (B, Tq) → x at those positions (B, Tq, H)."""
    return x.gather(1, rows.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class Layer(nn.Module):
    """One Transformer layer: post-LN as in BERT/XLM-R, or pre-LN as in XLM-R XL/XXL."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.pre_ln = cfg.pre_ln
        self.attn = SelfAttention(cfg)
        self.attn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.ffn = FeedForward(cfg)
        self.ffn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, rows: torch.Tensor | None = None) -> torch.Tensor:
        # x (B, T, H) → (B, T, H), or (B, Tq, H) at positions ``rows`` (B, Tq) when only those are needed:
        # keys and values still come from every position, queries and the FFN only from those rows.
        if self.pre_ln:
            h = self.attn_norm(x)
            if rows is None:
                x = x + self.drop(self.attn(h, mask))
            else:
                x = _gather_rows(x, rows) + self.drop(self.attn(h, mask, _gather_rows(h, rows)))
            return x + self.drop(self.ffn(self.ffn_norm(x)))
        xq = x if rows is None else _gather_rows(x, rows)
        x = self.attn_norm(xq + self.drop(self.attn(x, mask, None if rows is None else xq)))
        return self.ffn_norm(x + self.drop(self.ffn(x)))


class MLMHead(nn.Module):
    """fairseq RobertaLMHead: dense → GELU → LayerNorm, then the tied token embeddings plus a bias."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        # the output projection is the token embedding matrix (tied); only its bias is the head's own
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (..., H) → (..., H): the features that the tied projection turns into logits
        return self.norm(F.gelu(self.dense(x)))


class XLMRForMaskedLM(nn.Module):
    """The XLM-R encoder and masked-LM head, with the head evaluated only where there are labels."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = Embeddings(config)
        self.layers = nn.ModuleList(Layer(config) for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.pre_ln else None
        self.head = MLMHead(config)
        self.logits_budget = LOGITS_BUDGET
        self.activation_checkpointing = False
        self.reset_parameters()

    def set_activation_checkpointing(self, on: bool = True) -> None:
        """Recompute each layer's activations in the backward pass (less memory, about a third more compute)."""
        self.activation_checkpointing = on

    def _run_layer(self, layer: nn.Module, x: torch.Tensor, mask, rows=None) -> torch.Tensor:
        if self.activation_checkpointing and self.training and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(layer, x, mask, rows, use_reentrant=False)
        return layer(x, mask, rows)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """BERT/fairseq init (``init_bert_params``): N(0, 0.02) weights, zero biases, zero padding rows."""
        std = self.config.init_std
        for m in self.modules():
            if isinstance(m, nn.Linear):
                m.weight.normal_(0.0, std)
                m.bias.zero_()
            elif isinstance(m, nn.Embedding):
                m.weight.normal_(0.0, std)
                if m.padding_idx is not None:
                    m.weight[m.padding_idx].zero_()
            elif isinstance(m, nn.LayerNorm):
                m.weight.fill_(1.0)
                m.bias.zero_()
        self.head.bias.zero_()

    # ---- encoder --------------------------------------------------------------------------------------------

    def _prepare(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, padded: bool | None = None):
        """Check shapes; return (is_token or None, SDPA mask (B, 1, 1, T) or None when nothing is masked).

        ``padded``: whether input_ids hold <pad>, when the caller knows (no read-back from the device then).
        """
        if input_ids.dim() != 2:
            raise XlmrError(f"input_ids must be (batch, seq), got shape {tuple(input_ids.shape)}")
        if input_ids.shape[1] > self.config.max_positions:
            raise XlmrError(f"sequence length {input_ids.shape[1]} exceeds max_positions "
                            f"{self.config.max_positions}; use shorter blocks or a larger max_positions")
        is_token = input_ids != self.config.padding_idx
        if padded is None:
            padded = not bool(is_token.all())
        if attention_mask is None:
            keep, masked = is_token, padded
        else:
            keep = attention_mask.to(torch.bool)
            if keep.shape != input_ids.shape:
                raise XlmrError(f"attention_mask shape {tuple(keep.shape)} differs from input_ids "
                                f"{tuple(input_ids.shape)}")
            masked = not bool(keep.all())
        # pretraining blocks have no padding: no mask lets SDPA pick its fastest kernel
        return (is_token if padded else None), (keep[:, None, None, :] if masked else None)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               all_layers: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Last hidden states (B, T, H), or the L + 1 hidden states (embeddings first) if ``all_layers``."""
        is_token, mask = self._prepare(input_ids, attention_mask)
        x = self.embed(input_ids, is_token)
        states = [x]
        for layer in self.layers:
            x = layer(x, mask)
            states.append(x)
        if self.final_norm is not None:
            x = states[-1] = self.final_norm(x)
        return states if all_layers else x

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Full-vocabulary logits at every position (B, T, V), e.g. for fill-mask."""
        return F.linear(self.head(self.encode(input_ids, attention_mask)), self.embed.tokens.weight, self.head.bias)

    # ---- masked-LM loss -------------------------------------------------------------------------------------

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, predicted: Predicted | None = None) -> MLMOutput:
        """Masked-LM cross-entropy at positions where ``labels != -100``; the head runs only there.

        ``predicted``: the plan of ``labels`` made on the host (:func:`predicted_positions`), in place of
        ``labels``; with it and no ``attention_mask`` the forward reads nothing back from the device.
        """
        if predicted is None:
            if labels is None or labels.shape != input_ids.shape:
                raise XlmrError(f"labels shape {None if labels is None else tuple(labels.shape)} differs from "
                                f"input_ids {tuple(input_ids.shape)}")
            predicted = predicted_positions(input_ids, labels, self.config.padding_idx)
        is_token, mask = self._prepare(input_ids, attention_mask, None if attention_mask is not None
                                       else predicted.padded)
        x = self.embed(input_ids, is_token)
        for layer in self.layers[:-1]:
            x = self._run_layer(layer, x, mask)
        # the last layer only needs outputs where the head runs: queries and FFN at those rows only
        x = self._run_layer(self.layers[-1], x, mask, predicted.rows)  # (B, Tq, H)
        if self.final_norm is not None:
            x = self.final_norm(x)
        h = self.head(x.reshape(-1, x.shape[-1]).index_select(0, predicted.index))  # (N, H), row-major order
        loss_sum, n_correct = masked_lm_loss(h, self.embed.tokens.weight, self.head.bias, predicted.targets,
                                             self.logits_budget)
        n = predicted.n
        return MLMOutput(loss=loss_sum / max(n, 1), loss_sum=loss_sum.detach(),
                         n_masked=torch.full((), n, device=input_ids.device), n_correct=n_correct)

    def compile_layers(self, **kwargs) -> None:
        """``torch.compile`` every layer but the last (as benchmarks/gpu.py): their shapes are fixed.

        The last layer's query rows, the head and the loss change shape with the number of masked positions and
        stay eager, so steps with different mask counts never recompile.
        """
        for layer in self.layers[:-1]:
            layer.compile(**kwargs)

    # ---- counts ---------------------------------------------------------------------------------------------

    def param_counts(self) -> dict[str, int]:
        """Unique parameters: embedding tables, LM head (dense, LayerNorm, bias; projection tied), the rest."""
        emb = sum(p.numel() for p in (self.embed.tokens.weight, self.embed.positions.weight,
                                      self.embed.token_type.weight))
        head = sum(p.numel() for p in self.head.parameters())
        total = sum(p.numel() for p in self.parameters())
        return dict(embedding=emb, non_embedding=total - emb - head, lm_head=head, total=total)

    def train_flops(self, tokens: int, seq_len: int, mask_rate: float = 0.15) -> float:
        """Forward+backward FLOPs to train on ``tokens`` tokens; see :func:`train_flops_for`."""
        return train_flops_for(self.config, tokens, seq_len, mask_rate)


def train_flops_for(config: ModelConfig, tokens: float, seq_len: int, mask_rate: float = 0.15,
                    masked_only: bool = True) -> float:
    """Matmul FLOPs (forward + backward = 3 × forward) to train on ``tokens`` tokens in blocks of ``seq_len``.

    Per token and layer the forward pass costs 2·(4H² + 2HF) in the projections and FFN plus 2·2·T·H for the
    attention scores and the weighted values; the head costs 2H² (dense) + 2HV (tied projection). With
    ``masked_only`` (what XLMRForMaskedLM runs) the head, and the last layer's queries, output projection
    and FFN, count only at the ``mask_rate`` share of predicted tokens; without it (what
    transformers runs) everything counts at every token. Embedding lookups, LayerNorms, activations and
    softmaxes are left out (they are not matmuls).
    """
    H, F_, L, V, T = config.hidden_size, config.ffn_size, config.num_layers, config.vocab_size, seq_len
    kv = 2 * 2 * H * H  # key and value projections
    query_side = 2 * (2 * H * H + 2 * H * F_) + 2 * 2 * T * H  # q, out, FFN, scores and values
    head = 2 * H * H + 2 * H * V
    share = mask_rate if masked_only else 1.0
    per_token = (L - 1) * (kv + query_side) + kv + share * (query_side + head)
    return 3.0 * tokens * per_token


# ---- cross-entropy over a large vocabulary, chunked ---------------------------------------------------------

def masked_lm_loss(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor,
                   max_logits: int = LOGITS_BUDGET) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed cross-entropy in nats, number correct) of ``h @ weight.T + bias`` against ``targets``.

    h (N, H) head features, weight (V, H), bias (V,), targets (N,). Logits exist only for chunks of rows, at most
    ``max_logits`` values at a time (two buffers of that size), never N × V at once. When a gradient is needed
    it is computed chunk by chunk during the forward pass (softmax − one-hot), so nothing is recomputed.
    The vocabulary is padded to a multiple of VOCAB_MULTIPLE inside (zero rows, bias −inf: out of the softmax).
    """
    rows = max(1, max_logits // _padded(weight.shape[0]))
    if torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad or bias.requires_grad):
        loss_sum, n_correct = _ChunkedCrossEntropy.apply(h, weight, bias, targets, rows)
        return loss_sum, n_correct
    loss_sum, n_correct, _ = _cross_entropy_chunks(h, weight, bias, targets, rows, need_grad=False)
    return loss_sum, n_correct


def _padded(vocab: int) -> int:
    return -(-vocab // VOCAB_MULTIPLE) * VOCAB_MULTIPLE


def _cross_entropy_chunks(h, weight, bias, targets, rows, need_grad):
    """The chunked loop behind :func:`masked_lm_loss`; returns (loss_sum, n_correct, (dh, dweight, dbias))."""
    device = h.device.type
    # under autocast the matmuls run in its dtype (as an autocast F.linear would); softmax always in fp32+
    cdt = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else h.dtype
    acc = torch.float64 if h.dtype == torch.float64 else torch.float32
    V, H = weight.shape
    Vp = _padded(V)
    loss_sum = torch.zeros((), dtype=acc, device=h.device)
    n_correct = torch.zeros((), dtype=torch.long, device=h.device)
    # dweight (Vp × H) is written by the first chunk's matmul: no zero-fill pass over it; rows V.. are dropped
    grads = (torch.empty_like(h), weight.new_empty((Vp, H)), bias.new_zeros(Vp)) if need_grad else None
    if need_grad and h.shape[0] == 0:
        grads[1].zero_()
    # under autocast each chunk's dweight is formed in cdt: one reused (Vp, H) buffer instead of a fresh one per chunk
    dw_chunk = weight.new_empty((Vp, H), dtype=cdt) if need_grad and weight.dtype != cdt else None
    with torch.autocast(device, enabled=False):
        hc = h.to(cdt)
        if Vp == V:
            wc, bc = weight.to(cdt), bias.to(cdt)
        else:
            # padded rows: zero weights and a −inf bias, so their logits are −inf, their softmax 0, never arg-max
            wc = weight.new_zeros((Vp, H), dtype=cdt)
            wc[:V] = weight
            bc = bias.new_full((Vp,), float("-inf"), dtype=cdt)
            bc[:V] = bias
        for s in range(0, h.shape[0], rows):
            hs, t = hc[s:s + rows], targets[s:s + rows]
            # dtype=acc upcasts inside the kernel: no separate (n, V) fp32 copy of bf16 logits
            logp = torch.log_softmax(torch.addmm(bc, hs, wc.t()), dim=-1, dtype=acc)  # (n, V)
            loss_sum -= logp.gather(1, t[:, None]).sum()
            n_correct += (logp.argmax(-1) == t).sum()
            if need_grad:
                g = logp.exp_()  # softmax, in place
                g[torch.arange(len(t), device=h.device), t] -= 1.0  # d(loss_sum)/d(logits)
                g = g.to(cdt)
                grads[0][s:s + rows] = g @ wc  # (n, H)
                if dw_chunk is None:  # same dtype: (V, H) written, then accumulated, in place
                    torch.mm(g.t(), hs, out=grads[1]) if s == 0 else grads[1].addmm_(g.t(), hs)
                else:  # autocast: the chunk's matmul in cdt, accumulated in the weight's dtype (fp32)
                    torch.mm(g.t(), hs, out=dw_chunk)
                    grads[1].copy_(dw_chunk) if s == 0 else grads[1].add_(dw_chunk)
                grads[2].add_(g.sum(0))
    if need_grad:
        grads = (grads[0], grads[1][:V], grads[2][:V])
    return loss_sum, n_correct, grads


class _ChunkedCrossEntropy(torch.autograd.Function):
    """Chunked linear + cross-entropy whose gradients are formed in the forward pass (no N × V logits kept)."""

    @staticmethod
    def forward(ctx, h, weight, bias, targets, rows):
        loss_sum, n_correct, grads = _cross_entropy_chunks(h, weight, bias, targets, rows, need_grad=True)
        ctx.save_for_backward(*grads)
        ctx.mark_non_differentiable(n_correct)
        return loss_sum, n_correct

    @staticmethod
    def backward(ctx, grad_loss, _grad_correct):
        if getattr(ctx, "used", False):
            raise RuntimeError("the masked-LM loss supports one backward pass per forward (no retain_graph)")
        ctx.used = True
        dh, dweight, dbias = ctx.saved_tensors
        # the stored gradients are ours and used once: scale them in place (dweight is V × H)
        g = grad_loss.to(dh.dtype)
        return dh.mul_(g), dweight.mul_(g), dbias.mul_(g), None, None
