"""HF and fairseq checkpoints in, HF directories out: equal logits both ways, clear errors on mismatches."""

from __future__ import annotations

import argparse
import json
from argparse import Namespace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from xlmr_core.errors import XlmrError
from xlmr_core.model import hf
from xlmr_core.model.encoder import ModelConfig, XLMRForMaskedLM, model_config
from xlmr_core.train import rundir

transformers = pytest.importorskip("transformers")

CONFIG = ModelConfig(vocab_size=92, hidden_size=48, num_layers=2, num_heads=4, ffn_size=96, max_positions=40,
                     dropout=0.0, attention_dropout=0.0)
SENTENCES = ["The quick brown fox jumps over the lazy dog.", "Alle Menschen sind frei und gleich an Würde.",
             "Tous les êtres humains naissent libres et égaux.", "Все люди рождаются свободными и равными.",
             "Kaikki ihmiset syntyvät vapaina ja tasavertaisina.", "Όλοι οι άνθρωποι γεννιούνται ελεύθεροι."] * 30


def random_model(config: ModelConfig = CONFIG, seed: int = 0) -> XLMRForMaskedLM:
    torch.manual_seed(seed)
    model = XLMRForMaskedLM(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # non-trivial LN weights and biases too
    return model.eval()


def batch(vocab: int = CONFIG.vocab_size, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(4, vocab, (3, 16), generator=g)
    x[:, 0], x[1, 11:], x[2, 4:] = 0, 1, 1
    return x


def hf_logits(model_dir: Path, x: torch.Tensor, cls=None) -> torch.Tensor:
    cls = cls or transformers.XLMRobertaForMaskedLM
    theirs, info = cls.from_pretrained(model_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    with torch.no_grad():
        return theirs.eval()(input_ids=x, attention_mask=(x != 1).long()).logits


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory) -> Path:
    """A real 90-piece SentencePiece model with XLM-R's special ids (<unk> 0, <s> 1, </s> 2)."""
    import sentencepiece as sp

    d = tmp_path_factory.mktemp("spm")
    (d / "text.txt").write_text("\n".join(SENTENCES), encoding="utf-8")
    sp.SentencePieceTrainer.train(input=str(d / "text.txt"), model_prefix=str(d / "m"), vocab_size=90,
                                  model_type="unigram", unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
                                  minloglevel=2, num_threads=1)
    pieces = sp.SentencePieceProcessor(model_file=str(d / "m.model")).get_piece_size()
    assert pieces + 2 == CONFIG.vocab_size
    return d / "m.model"


def test_export_loads_in_transformers_with_equal_logits_and_tokenizer(tmp_path, spm_model):
    import sentencepiece as sp

    model = random_model()
    out = hf.export(model, tmp_path / "hf", spm_model)
    x = batch()
    with torch.no_grad():
        ours = model.logits(x)
    assert (hf_logits(out, x) - ours).abs().max() < 1e-5
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architectures"] == ["XLMRobertaForMaskedLM"] and cfg["max_position_embeddings"] == 42

    tok = transformers.XLMRobertaTokenizer.from_pretrained(out)
    text = SENTENCES[1]
    proc = sp.SentencePieceProcessor(model_file=str(spm_model))
    # fairseq layout: <s>=0 <pad>=1 </s>=2 <unk>=3, piece i>=3 -> i+1, <mask> last
    expected = [0] + [i + 1 if i >= 3 else 3 for i in proc.encode(text)] + [2]
    assert tok(text)["input_ids"] == expected
    assert tok.mask_token_id == CONFIG.vocab_size - 1 and tok.pad_token_id == 1
    assert len(tok) == CONFIG.vocab_size


def test_pre_ln_export_loads_as_xlmr_xl(tmp_path):
    config = model_config("debug", 200, pre_ln=True, dropout=0.0, attention_dropout=0.0)
    model = random_model(config)
    out = hf.export(model, tmp_path / "xl")
    x = batch(200)
    with torch.no_grad():
        ours = model.logits(x)
    assert (hf_logits(out, x, transformers.AutoModelForMaskedLM) - ours).abs().max() < 1e-5
    back, spm = hf.load(out)
    assert spm is None and back.config == config
    with torch.no_grad():
        assert (back.logits(x) - ours).abs().max() < 1e-6


def _hf_dir(tmp_path: Path, config: ModelConfig = CONFIG, seed: int = 3):
    torch.manual_seed(seed)
    kw = {k: v for k, v in hf.hf_config(config).items() if k not in ("architectures", "model_type", "dtype")}
    theirs = transformers.XLMRobertaForMaskedLM(transformers.XLMRobertaConfig(**kw)).eval()
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    theirs.save_pretrained(tmp_path / "hfdir")
    return theirs, tmp_path / "hfdir"


def test_import_hf_directory_safetensors_and_bin(tmp_path, spm_model):
    theirs, d = _hf_dir(tmp_path)
    x = batch()
    with torch.no_grad():
        ref = theirs(input_ids=x, attention_mask=(x != 1).long()).logits
    model, spm = hf.load(d)
    assert spm is None and model.config.num_heads == 4 and model.config.max_positions == 40
    with torch.no_grad():
        assert (model.logits(x) - ref).abs().max() < 1e-5

    # the same weights as pytorch_model.bin (older HF layout), with the tokenizer beside them
    (d / "model.safetensors").rename(tmp_path / "w.safetensors")
    torch.save(load_file(tmp_path / "w.safetensors"), d / "pytorch_model.bin")
    (d / hf.SPM_NAME).write_bytes(spm_model.read_bytes())
    model, spm = hf.load(d)
    assert spm == d / hf.SPM_NAME
    with torch.no_grad():
        assert (model.logits(x) - ref).abs().max() < 1e-5


def fairseq_state(theirs, config: ModelConfig, in_proj: bool) -> dict:
    """transformers weights in fairseq's RoBERTa layout (as in XLM-R's released model.pt)."""
    sd = theirs.state_dict()
    top = "decoder." if in_proj else "encoder."  # old checkpoints say decoder.; fairseq renames on upgrade
    s, e = top + "sentence_encoder.", "roberta.embeddings."
    out = {s + "embed_tokens.weight": sd[e + "word_embeddings.weight"],
           s + "embed_positions.weight": sd[e + "position_embeddings.weight"],
           s + ("emb_layer_norm" if in_proj else "layernorm_embedding") + ".weight": sd[e + "LayerNorm.weight"],
           s + ("emb_layer_norm" if in_proj else "layernorm_embedding") + ".bias": sd[e + "LayerNorm.bias"],
           top + "lm_head.weight": sd[e + "word_embeddings.weight"], top + "lm_head.bias": sd["lm_head.bias"],
           top + "version": torch.tensor([2.0])}
    for t in ("weight", "bias"):
        out[f"{top}lm_head.dense.{t}"] = sd[f"lm_head.dense.{t}"]
        out[f"{top}lm_head.layer_norm.{t}"] = sd[f"lm_head.layer_norm.{t}"]
        for i in range(config.num_layers):
            p, f = f"roberta.encoder.layer.{i}.", f"{s}layers.{i}."
            q, k, v = (sd[f"{p}attention.self.{n}.{t}"] for n in ("query", "key", "value"))
            if in_proj:
                out[f"{f}self_attn.in_proj_{t}"] = torch.cat([q, k, v])
            else:
                out.update({f"{f}self_attn.q_proj.{t}": q, f"{f}self_attn.k_proj.{t}": k,
                            f"{f}self_attn.v_proj.{t}": v})
            out[f"{f}self_attn.out_proj.{t}"] = sd[f"{p}attention.output.dense.{t}"]
            out[f"{f}self_attn_layer_norm.{t}"] = sd[f"{p}attention.output.LayerNorm.{t}"]
            out[f"{f}fc1.{t}"] = sd[f"{p}intermediate.dense.{t}"]
            out[f"{f}fc2.{t}"] = sd[f"{p}output.dense.{t}"]
            out[f"{f}final_layer_norm.{t}"] = sd[f"{p}output.LayerNorm.{t}"]
    return {k: v.half() if v.dim() > 1 else v for k, v in out.items()}  # XLM-R ships fp16 matrices


@pytest.mark.parametrize("in_proj", [False, True], ids=["q_k_v_proj", "in_proj"])
def test_import_fairseq_checkpoint(tmp_path, in_proj):
    theirs, _ = _hf_dir(tmp_path)
    with torch.no_grad():
        theirs.roberta.embeddings.token_type_embeddings.weight.zero_()  # fairseq XLM-R has no segments
        for p in theirs.parameters():  # the fp16 round trip of the release format (matrices)
            if p.dim() > 1:
                p.copy_(p.half().float())
    x = batch()
    with torch.no_grad():
        ref = theirs(input_ids=x, attention_mask=(x != 1).long()).logits
    args = Namespace(encoder_attention_heads=4, dropout=0.0, attention_dropout=0.0, arch="roberta_base")
    fdir = tmp_path / "xlmr.base"
    fdir.mkdir()
    torch.save({"model": fairseq_state(theirs, CONFIG, in_proj), "args": args}, fdir / "model.pt")
    model, spm = hf.load(fdir / "model.pt")
    assert model.config == CONFIG and spm is None
    with torch.no_grad():
        assert (model.logits(x) - ref).abs().max() < 1e-5

    # without recorded heads the user is told what to pass
    torch.save({"model": fairseq_state(theirs, CONFIG, in_proj)}, fdir / "model.pt")
    with pytest.raises(XlmrError, match="--num-heads"):
        hf.load(fdir)
    model, _ = hf.load(fdir, num_heads=4)
    with torch.no_grad():
        assert (model.logits(x) - ref).abs().max() < 1e-5


def test_mismatches_are_one_clear_error(tmp_path, spm_model):
    _, d = _hf_dir(tmp_path)
    sd = load_file(d / "model.safetensors")
    key = "roberta.encoder.layer.1.intermediate.dense.weight"
    bad = dict(sd, **{key: sd[key][:50].contiguous()})
    save_file(bad, d / "model.safetensors")
    with pytest.raises(XlmrError, match=r"intermediate\.dense\.weight \(50, 48\) does not match "
                                        r"layers\.1\.ffn\.up\.weight \(96, 48\)"):
        hf.load(d)
    save_file(dict(sd, **{"roberta.encoder.layer.1.extra.weight": torch.zeros(3)}), d / "model.safetensors")
    with pytest.raises(XlmrError, match=r"unknown weight 'roberta\.encoder\.layer\.1\.extra\.weight' shape \(3,\)"):
        hf.load(d)
    save_file({k: v for k, v in sd.items() if "value" not in k}, d / "model.safetensors")
    with pytest.raises(XlmrError, match=r"missing weight 'roberta\.encoder\.layer\.0\.attention\.self\.value"):
        hf.load(d)

    # a tokenizer whose size does not fit the embedding
    small = random_model(model_config("debug", 300))
    with pytest.raises(XlmrError, match=r"90 pieces give a vocabulary of 92, but the model's embedding has 300"):
        hf.export(small, tmp_path / "out", spm_model)
    assert not (tmp_path / "out").exists()


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="xlmr")
    hf.add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_import_then_export_from_checkpoint_and_run_dir(tmp_path, spm_model):
    theirs, d = _hf_dir(tmp_path)
    (d / hf.SPM_NAME).write_bytes(spm_model.read_bytes())
    x = batch()
    with torch.no_grad():
        ref = theirs(input_ids=x, attention_mask=(x != 1).long()).logits

    assert _cli(["import-hf", str(d), str(tmp_path / "ckpt.pt")]) == 0
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert ckpt["model_config"]["hidden_size"] == 48
    model, _, _ = rundir.load_run(tmp_path / "ckpt.pt")
    with torch.no_grad():
        assert (model.logits(x) - ref).abs().max() < 1e-5

    assert _cli(["export-hf", str(tmp_path / "ckpt.pt"), str(tmp_path / "out1")]) == 0
    assert (hf_logits(tmp_path / "out1", x) - ref).abs().max() < 1e-5
    assert (tmp_path / "out1" / hf.SPM_NAME).exists()  # the imported tokenizer travels with the checkpoint

    with pytest.raises(XlmrError, match=r"no final.json and no checkpoints/step_\*.pt"):
        _cli(["export-hf", str(tmp_path / "hfdir"), str(tmp_path / "out4")])
    bad = {"model": model.state_dict(), "model_config": dict(ckpt["model_config"], hidden_size=64)}
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(XlmrError, match=r"weight 'embed\.norm\.bias' is \(48,\), the model_config implies \(64,\)"):
        rundir.load_run(tmp_path / "bad.pt")


@pytest.mark.timeout(300)
def test_cli_export_of_a_run_the_trainer_left_unfinished_then_finished(tmp_path, demo_corpus):
    """``export-hf RUN_DIR`` on the trainer's own output: its newest checkpoint while it runs, final.json's after."""
    from xlmr_core.config import load_config
    from xlmr_core.train import rundir
    from xlmr_core.train.trainer import train

    run = tmp_path / "run"
    cfg = load_config(None, [
        f"run_dir={run}", "model.size=debug", "model.hidden_size=16", "model.num_layers=1", "model.num_heads=2",
        "model.ffn_size=32", f"data.corpus={demo_corpus}", "data.langs=en,de", "data.vocab_size=300",
        "data.tokenizer_sample_lines=2000", "data.seq_len=32", "data.batch_tokens=128", "schedule.steps=6",
        "schedule.warmup_steps=1", "checkpoint.interval=2", "eval.max_blocks=2", "eval.draws=1",
        "precision.device=cpu"])
    assert train(cfg, stop_after=3) is None  # stopped as a preempted job stops: checkpointed, no final.json
    assert not rundir.final_path(run).exists()
    assert [p.name for p in rundir.list_checkpoints(run)] == ["step_00000003.pt", "step_00000002.pt"]
    spm = rundir.tokenizer_file(run)
    x = batch(vocab=302)

    assert _cli(["export-hf", str(run), str(tmp_path / "unfinished")]) == 0
    ours, _, _ = rundir.load_run(rundir.checkpoint_path(run, 3))
    with torch.no_grad():
        assert (hf_logits(tmp_path / "unfinished", x) - ours.logits(x)).abs().max() < 1e-5
    assert (tmp_path / "unfinished" / hf.SPM_NAME).read_bytes() == spm.read_bytes()

    final = train(cfg)  # resumes from step 3
    assert final["steps"] == 6 and rundir.run_checkpoint(run) == rundir.checkpoint_path(run, 6)
    assert _cli(["export-hf", str(run), str(tmp_path / "finished")]) == 0
    ours, _, _ = rundir.load_run(rundir.checkpoint_path(run, 6))
    with torch.no_grad():
        assert (hf_logits(tmp_path / "finished", x) - ours.logits(x)).abs().max() < 1e-5
