"""Checkpoints in and out: transformers (HF) XLM-R directories, fairseq ``model.pt`` files, our own checkpoints.

``load`` reads a local HF directory (config.json + safetensors or pytorch_model.bin) or a fairseq XLM-R
``model.pt`` into :class:`~xlmr_core.model.encoder.XLMRForMaskedLM`; ``export`` writes a directory that
``transformers.XLMRobertaForMaskedLM.from_pretrained`` (pre-LN: ``XLMRobertaXLForMaskedLM``) loads, with the
SentencePiece tokenizer when there is one. transformers itself is never imported here.

Our own checkpoints are written here (``save_checkpoint``, ``xlmr import-hf``) and read, from a run directory or a
checkpoint file, by ``rundir.load_run``: one way from a checkpoint to a model (:mod:`xlmr_core.model.weights`), which
``load`` shares once the external keys are mapped to ours.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from xlmr_core import fsutil
from xlmr_core.errors import XlmrError
from xlmr_core.model.encoder import ModelConfig, XLMRForMaskedLM
from xlmr_core.model.weights import model_from_state, state_shapes
from xlmr_core.train import rundir

SPM_NAME = "sentencepiece.bpe.model"  # the name in XLM-R's fairseq release and on the HF hub

# keys a checkpoint may hold that the masked-LM model does not use
_HF_IGNORED = re.compile(r"^(roberta\.)?(pooler\.|embeddings\.position_ids$)|^lm_head\.decoder\.(weight|bias)$")
_FAIRSEQ_IGNORED = re.compile(r"(^|\.)(version|_float_tensor)$|^encoder\.lm_head\.weight$|"
                              r"^classification_heads\.")


# ---- key maps: our name → the external name(s), several names stacked along dim 0 (q, k, v) -----------------

_WB = ("weight", "bias")
_LAYER_PARTS = ("attn.qkv", "attn.out", "attn_norm", "ffn.up", "ffn.down", "ffn_norm")


def _embed_pairs(config: ModelConfig, tokens: str, positions: str, norm: str, token_type: str | None = None
                 ) -> list[tuple[str, list[str]]]:
    """Token and position embeddings (and token types), and the embedding LayerNorm of post-LN models."""
    pairs = [("embed.tokens.weight", [f"{tokens}.weight"]), ("embed.positions.weight", [f"{positions}.weight"])]
    if token_type is not None:
        pairs.append(("embed.token_type.weight", [f"{token_type}.weight"]))
    return pairs + ([] if config.pre_ln else [(f"embed.norm.{t}", [f"{norm}.{t}"]) for t in _WB])


def _layer_pairs(ours: str, t: str, theirs: list[list[str]]) -> list[tuple[str, list[str]]]:
    """The ``weight`` or ``bias`` (``t``) pairs of one layer, ``theirs`` in the order of ``_LAYER_PARTS``."""
    return [(f"{ours}{part}.{t}", keys) for part, keys in zip(_LAYER_PARTS, theirs, strict=True)]


def _top_pairs(config: ModelConfig, final_norm: str, lm_head: str) -> list[tuple[str, list[str]]]:
    """The pre-LN final LayerNorm and the MLM head (dense, LayerNorm, output bias)."""
    pairs = [(f"final_norm.{t}", [f"{final_norm}.{t}"]) for t in _WB] if config.pre_ln else []
    pairs += [(f"head.dense.{t}", [f"{lm_head}.dense.{t}"]) for t in _WB]
    pairs += [(f"head.norm.{t}", [f"{lm_head}.layer_norm.{t}"]) for t in _WB]
    return pairs + [("head.bias", [f"{lm_head}.bias"])]


def _hf_keys(config: ModelConfig, prefix: str = "roberta.") -> list[tuple[str, list[str]]]:
    """(our key, [HF keys]) for XLMRobertaForMaskedLM (post-LN) or XLMRobertaXLForMaskedLM (pre-LN)."""
    e = f"{prefix}embeddings."
    pairs = _embed_pairs(config, f"{e}word_embeddings", f"{e}position_embeddings", f"{e}LayerNorm",
                         token_type=f"{e}token_type_embeddings")
    for i in range(config.num_layers):
        p, o = f"{prefix}encoder.layer.{i}.", f"layers.{i}."
        attn_norm = "attention.self_attn_layer_norm" if config.pre_ln else "attention.output.LayerNorm"
        ffn_norm = "LayerNorm" if config.pre_ln else "output.LayerNorm"
        for t in _WB:
            pairs += _layer_pairs(o, t, [[f"{p}attention.self.{n}.{t}" for n in ("query", "key", "value")],
                                         [f"{p}attention.output.dense.{t}"], [f"{p}{attn_norm}.{t}"],
                                         [f"{p}intermediate.dense.{t}"], [f"{p}output.dense.{t}"],
                                         [f"{p}{ffn_norm}.{t}"]])
    return pairs + _top_pairs(config, f"{prefix}encoder.LayerNorm", "lm_head")


def _fairseq_keys(config: ModelConfig, sd: dict) -> list[tuple[str, list[str]]]:
    """(our key, [fairseq keys]) for a RoBERTa/XLM-R ``model.pt`` (token type has no fairseq counterpart)."""
    s = "encoder.sentence_encoder."
    emb_norm = "layernorm_embedding" if f"{s}layernorm_embedding.weight" in sd else "emb_layer_norm"
    pairs = _embed_pairs(config, f"{s}embed_tokens", f"{s}embed_positions", f"{s}{emb_norm}")
    for i in range(config.num_layers):
        p, o = f"{s}layers.{i}.", f"layers.{i}."
        for t in _WB:
            if f"{p}self_attn.in_proj_{t}" in sd:  # older fairseq: q, k, v already stacked
                qkv = [f"{p}self_attn.in_proj_{t}"]
            else:
                qkv = [f"{p}self_attn.{n}_proj.{t}" for n in "qkv"]
            pairs += _layer_pairs(o, t, [qkv, [f"{p}self_attn.out_proj.{t}"], [f"{p}self_attn_layer_norm.{t}"],
                                         [f"{p}fc1.{t}"], [f"{p}fc2.{t}"], [f"{p}final_layer_norm.{t}"]])
    return pairs + _top_pairs(config, f"{s}layer_norm", "encoder.lm_head")


def _gather(sd: dict, pairs, config: ModelConfig, source: str, ignored: re.Pattern) -> dict:
    """Our state dict from an external one, with one clear error for a missing/unknown key or a wrong shape."""
    shapes = state_shapes(config)
    ours, used = {}, set()
    for key, names in pairs:
        missing = [n for n in names if n not in sd]
        if missing:
            raise XlmrError(f"{source}: missing weight {missing[0]!r} (needed for {key}, shape "
                            f"{tuple(shapes[key])}); is this an XLM-R masked-LM checkpoint?")
        parts = [sd[n] for n in names]
        want = shapes[key]
        got_rows = sum(p.shape[0] if p.dim() else 0 for p in parts)
        if any(p.shape[1:] != want[1:] for p in parts) or got_rows != want[0]:
            desc = ", ".join(f"{n} {tuple(p.shape)}" for n, p in zip(names, parts))
            raise XlmrError(f"{source}: {desc} does not match {key} {tuple(want)} implied by the config "
                            f"(hidden {config.hidden_size}, vocab {config.vocab_size}, ffn {config.ffn_size})")
        ours[key] = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
        used.update(names)
    unknown = sorted(k for k in set(sd) - used if not ignored.search(k))
    if unknown:
        raise XlmrError(f"{source}: unknown weight {unknown[0]!r} shape {tuple(sd[unknown[0]].shape)}"
                        f"{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''}; "
                        "not an XLM-R masked-LM checkpoint of this shape")
    return ours


def from_hf_state_dict(sd: dict, config: ModelConfig, source: str = "state dict") -> dict:
    """Our state dict from a transformers XLMRobertaForMaskedLM (or XL, when ``config.pre_ln``) state dict."""
    prefix = "roberta." if any(k.startswith("roberta.") for k in sd) else ""
    return _gather(sd, _hf_keys(config, prefix), config, source, _HF_IGNORED)


def to_hf_state_dict(sd: dict, config: ModelConfig) -> dict:
    """transformers' state dict (unique tensors: the tied projection is left out) from ours."""
    out = {}
    for key, names in _hf_keys(config):
        parts = sd[key].split(sd[key].shape[0] // len(names)) if len(names) > 1 else [sd[key]]
        out.update((n, p.detach().contiguous()) for n, p in zip(names, parts))
    return out


def from_fairseq_state_dict(sd: dict, config: ModelConfig, source: str = "state dict") -> dict:
    """Our state dict from a fairseq RoBERTa/XLM-R state dict (keys ``encoder.sentence_encoder.*``)."""
    sd = {("encoder." + k[len("decoder."):] if k.startswith("decoder.") else k): v for k, v in sd.items()}
    ours = _gather(sd, _fairseq_keys(config, sd), config, source, _FAIRSEQ_IGNORED)
    # fairseq XLM-R has no segment embedding; transformers' conversion puts a zero row in its place
    ours["embed.token_type.weight"] = torch.zeros(1, config.hidden_size)
    return ours


# ---- reading ------------------------------------------------------------------------------------------------

def _config_from_hf(cfg: dict, source: Path) -> ModelConfig:
    model_type = cfg.get("model_type", "xlm-roberta")
    if model_type not in ("xlm-roberta", "roberta", "xlm-roberta-xl"):
        raise XlmrError(f"{source}: model_type {model_type!r} is not XLM-R (xlm-roberta, xlm-roberta-xl, roberta)")
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise XlmrError(f"{source}: hidden_act {cfg['hidden_act']!r} is not supported (XLM-R uses 'gelu')")
    if cfg.get("type_vocab_size", 1) != 1:
        raise XlmrError(f"{source}: type_vocab_size {cfg['type_vocab_size']} is not supported (XLM-R has 1)")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise XlmrError(f"{source}: position_embedding_type {cfg['position_embedding_type']!r} is not supported")
    pad = int(cfg.get("pad_token_id", 1))
    try:
        return ModelConfig(
            vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], num_layers=cfg["num_hidden_layers"],
            num_heads=cfg["num_attention_heads"], ffn_size=cfg["intermediate_size"],
            max_positions=cfg["max_position_embeddings"] - pad - 1,
            dropout=cfg.get("hidden_dropout_prob", 0.1), attention_dropout=cfg.get("attention_probs_dropout_prob", 0.1),
            layer_norm_eps=cfg.get("layer_norm_eps", 1e-5), pre_ln=model_type == "xlm-roberta-xl",
            padding_idx=pad, init_std=cfg.get("initializer_range", 0.02))
    except KeyError as e:
        raise XlmrError(f"{source}: config.json lacks {e.args[0]!r}") from None


def _read_hf_weights(path: Path) -> dict:
    from safetensors.torch import load_file

    if (path / "model.safetensors").exists():
        return load_file(path / "model.safetensors")
    index = path / "model.safetensors.index.json"
    if index.exists():
        sd = {}
        for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
            sd.update(load_file(path / shard))
        return sd
    if (path / "pytorch_model.bin").exists():
        return torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise XlmrError(f"{path}: no model.safetensors or pytorch_model.bin; download the model files into it")


def _read_fairseq(path: Path, num_heads: int | None) -> tuple[ModelConfig, dict]:
    with torch.serialization.safe_globals([argparse.Namespace]):
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a pickle with classes weights_only refuses (e.g. an omegaconf config)
            raise XlmrError(f"{path}: cannot be read safely as a fairseq checkpoint ({str(e).splitlines()[0]})") from e
    sd = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict) or not any(".sentence_encoder.embed_tokens.weight" in k for k in sd):
        raise XlmrError(f"{path}: no encoder.sentence_encoder.embed_tokens.weight; not a fairseq XLM-R checkpoint")
    args = ckpt.get("args")
    args = vars(args) if isinstance(args, argparse.Namespace) else {}
    sd = {("encoder." + k[len("decoder."):] if k.startswith("decoder.") else k): v for k, v in sd.items()}
    s = "encoder.sentence_encoder."
    vocab, hidden = sd[s + "embed_tokens.weight"].shape
    heads = num_heads or args.get("encoder_attention_heads")
    if heads is None:
        raise XlmrError(f"{path}: the checkpoint does not record the number of attention heads; pass --num-heads")
    layers = 1 + max(int(m.group(1)) for k in sd if (m := re.match(re.escape(s) + r"layers\.(\d+)\.", k)))
    pre_ln = s + "layer_norm.weight" in sd
    config = ModelConfig(
        vocab_size=vocab, hidden_size=hidden, num_layers=layers, num_heads=int(heads),
        ffn_size=sd[f"{s}layers.0.fc1.weight"].shape[0], max_positions=sd[s + "embed_positions.weight"].shape[0] - 2,
        dropout=args.get("dropout", 0.1), attention_dropout=args.get("attention_dropout", 0.1), pre_ln=pre_ln)
    return config, from_fairseq_state_dict(sd, config, str(path))


def load(path: str | Path, *, num_heads: int | None = None) -> tuple[XLMRForMaskedLM, Path | None]:
    """Our model (eval mode) from a local HF XLM-R dir or a fairseq ``model.pt``, and its SentencePiece model."""
    path = Path(path)
    if not path.exists():
        raise XlmrError(f"{path}: no such file or directory")
    if path.is_dir() and (path / "config.json").exists():
        config = _config_from_hf(json.loads((path / "config.json").read_text()), path / "config.json")
        state = from_hf_state_dict(_read_hf_weights(path), config, str(path))
        spm_dir = path
    elif path.is_dir() and (path / "model.pt").exists():
        config, state = _read_fairseq(path / "model.pt", num_heads)
        spm_dir = path
    elif path.is_file():
        config, state = _read_fairseq(path, num_heads)
        spm_dir = path.parent
    else:
        raise XlmrError(f"{path}: neither an HF model directory (config.json) nor a fairseq model.pt")
    spm = spm_dir / SPM_NAME
    spm = spm if spm.exists() else None
    if spm is not None:
        _check_vocab(config, spm)
    return model_from_state(config, state), spm


def _check_vocab(config: ModelConfig, spm: Path) -> None:
    """The fairseq layout has SentencePiece pieces + 2 ids (<pad> inserted, <mask> appended)."""
    import sentencepiece as sp

    pieces = sp.SentencePieceProcessor(model_file=str(spm)).get_piece_size()
    if pieces + 2 != config.vocab_size:
        raise XlmrError(f"{spm}: {pieces} pieces give a vocabulary of {pieces + 2}, but the model's embedding "
                        f"has {config.vocab_size} rows; use the tokenizer the model was trained with")


# ---- our checkpoints (read them, run directory or file, with ``rundir.load_run``) ---------------------------

def save_checkpoint(model: XLMRForMaskedLM, path: str | Path, **extra) -> Path:
    """Write ``{"model": state_dict, "model_config": asdict(config), **extra}`` atomically."""
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "model_config": asdict(model.config), **extra}, buf)
    return fsutil.atomic_write_bytes(path, buf.getvalue())


# ---- writing ------------------------------------------------------------------------------------------------

def hf_config(config: ModelConfig) -> dict:
    """transformers' config.json for ``config`` (XLMRobertaForMaskedLM, or the XL class for pre-LN)."""
    xl = config.pre_ln
    return {
        "architectures": ["XLMRobertaXLForMaskedLM" if xl else "XLMRobertaForMaskedLM"],
        "model_type": "xlm-roberta-xl" if xl else "xlm-roberta",
        "vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_layers, "num_attention_heads": config.num_heads,
        "intermediate_size": config.ffn_size, "hidden_act": "gelu",
        "hidden_dropout_prob": config.dropout, "attention_probs_dropout_prob": config.attention_dropout,
        "max_position_embeddings": config.position_rows, "type_vocab_size": 1,
        "initializer_range": config.init_std, "layer_norm_eps": config.layer_norm_eps,
        "pad_token_id": config.padding_idx, "bos_token_id": 0, "eos_token_id": 2,
        "position_embedding_type": "absolute", "tie_word_embeddings": True, "dtype": "float32",
    }


def _tokenizer_files(out: Path, spm: Path, config: ModelConfig) -> None:
    """XLMRobertaTokenizer's files: the SentencePiece model under its XLM-R name and the special tokens."""
    shutil.copyfile(spm, out / SPM_NAME)
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
               "cls_token": "<s>", "pad_token": "<pad>",
               # fill-mask convention: "<mask>" swallows the space before it
               "mask_token": {"content": "<mask>", "lstrip": True, "rstrip": False, "normalized": False,
                              "single_word": False}}
    fsutil.atomic_write_json(out / "special_tokens_map.json", special)
    fsutil.atomic_write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "XLMRobertaTokenizer", "model_max_length": config.max_positions, **special})


def export(model: XLMRForMaskedLM, out_dir: str | Path, tokenizer_model_file: str | Path | None = None) -> Path:
    """Write an HF directory (config.json, model.safetensors, tokenizer files) that from_pretrained loads."""
    from safetensors.torch import save

    config = model.config
    spm = Path(tokenizer_model_file) if tokenizer_model_file else None
    if spm is not None:
        if not spm.is_file():
            raise XlmrError(f"{spm}: tokenizer model not found")
        _check_vocab(config, spm)
    state = {k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()}
    with fsutil.atomic_dir(out_dir) as tmp:
        # safetensors' save_file creates its file 0600; bytes through fsutil get the umask's mode (0644)
        fsutil.atomic_write_bytes(tmp / "model.safetensors",
                                  save(to_hf_state_dict(state, config), metadata={"format": "pt"}))
        fsutil.atomic_write_json(tmp / "config.json", hf_config(config))
        if spm is not None:
            _tokenizer_files(tmp, spm, config)
    return Path(out_dir)


# ---- command line -------------------------------------------------------------------------------------------

def _cmd_import(args) -> int:
    model, spm = load(args.src, num_heads=args.num_heads)
    extra = {"tokenizer": str(spm)} if spm else {}
    save_checkpoint(model, args.out, source=str(Path(args.src).resolve()), **extra)
    counts = model.param_counts()
    print(f"wrote {args.out}: {counts['total']:,} parameters" + (f", tokenizer {spm}" if spm else ""))
    return 0


def _cmd_export(args) -> int:
    src = Path(args.src)
    if src.is_dir():
        ckpt_path, spm = rundir.run_checkpoint(src), rundir.tokenizer_file(src)
    elif src.is_file():
        ckpt_path, spm = src, None
    else:
        raise XlmrError(f"{src}: no such checkpoint file or run directory")
    spm = Path(args.tokenizer) if args.tokenizer else spm
    # the tokenizer the checkpoint records where neither --tokenizer nor the run names one
    model, tok, _ = rundir.load_run(ckpt_path, tokenizer=spm is None)
    spm = spm or (tok.model_file if tok is not None else None)
    export(model, args.out, spm)
    print(f"wrote {args.out} from {ckpt_path}" + (f" with tokenizer {spm}" if spm else " (no tokenizer)"))
    return 0


def add_cli(sub) -> None:
    """``xlmr import-hf DIR OUT`` and ``xlmr export-hf CHECKPOINT_OR_RUN OUT``."""
    p = sub.add_parser("import-hf", help="read an HF XLM-R directory or fairseq model.pt into a checkpoint file")
    p.add_argument("src", metavar="DIR", help="HF model directory, or fairseq model.pt (or its directory)")
    p.add_argument("out", metavar="OUT", help="checkpoint file to write")
    p.add_argument("--num-heads", type=int, default=None, help="attention heads, if a fairseq file lacks them")
    p.set_defaults(func=_cmd_import)
    p = sub.add_parser("export-hf", help="write a checkpoint or run as an HF XLMRobertaForMaskedLM directory")
    p.add_argument("src", metavar="CHECKPOINT_OR_RUN", help="checkpoint file, or run directory")
    p.add_argument("out", metavar="OUT", help="directory to write")
    p.add_argument("--tokenizer", default=None, help="SentencePiece model to include (default: the run's)")
    p.set_defaults(func=_cmd_export)
