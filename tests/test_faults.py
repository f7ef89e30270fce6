"""Bad input and faults a long study meets: coupled overrides, argument order, text that is not text, malformed
YAML, a cache entry damaged after it was built, two launchers at once and a full disk. Each fault ends in one
clear error line (or is handled), never in a run trained on bad data or a result left half-written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xlmr_core.cli import main
from xlmr_core.config import RunConfig, apply_overrides, load_config
from xlmr_core.data import ShardSet, cache, shards_for
from xlmr_core.data.corpus import validate_languages
from xlmr_core.data.tokenizer import tokenizer_for
from xlmr_core.errors import XlmrError
from xlmr_core.study import jobs
from xlmr_core.train.rundir import list_checkpoints, read_checkpoint_state
from xlmr_core.train.trainer import prepare, train

REPO = Path(__file__).resolve().parents[1]
LANGS = ["bg", "sl"]  # the two smallest demo languages: a tokenizer and shards in a few seconds
VOCAB, SAMPLE = 1000, 20000


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("xlmr: error: "), err
    return err[0]


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory) -> Path:
    """A cache root of this module's own (the tests below damage entries in it)."""
    return tmp_path_factory.mktemp("cache")


def _overrides(corpus: Path, cache_root: Path, run_dir: Path | None = None) -> list[str]:
    """A debug-size run on two small demo languages: a few seconds."""
    return ([f"run_dir={run_dir}"] if run_dir else []) + [
        "model.size=debug", f"data.corpus={corpus}", f"data.langs={','.join(LANGS)}", "data.tokenizer_langs=[]",
        f"data.vocab_size={VOCAB}", f"data.tokenizer_sample_lines={SAMPLE}", f"data.cache_dir={cache_root}",
        "data.seq_len=32", "data.batch_tokens=256", "schedule.steps=12", "schedule.warmup_steps=2",
        "optim.lr=2e-3", "log_interval=1", "checkpoint.interval=4", "eval.max_blocks=2", "eval.draws=1",
        "precision.device=cpu"]


# ---------------------------------------------------------------- overrides as a whole


def test_coupled_overrides_are_applied_together_and_checked_once(tmp_path):
    both = ["data.seq_len=1024", "data.batch_tokens=2048"]
    cfg = load_config(None, both)
    assert (cfg.data.seq_len, cfg.data.batch_tokens) == (1024, 2048)
    cfg = apply_overrides(RunConfig(), both)  # the sweeps' --set path
    assert (cfg.data.seq_len, cfg.data.batch_tokens) == (1024, 2048)
    # the file's values and the command line's together
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  seq_len: 1024\nschedule:\n  steps: 10\n")
    cfg = load_config(path, ["data.batch_tokens=4096", "schedule.tokens=1e6"])
    assert (cfg.data.seq_len, cfg.data.batch_tokens) == (1024, 4096)
    assert (cfg.schedule.steps, cfg.schedule.tokens) == (0, 1_000_000)  # the command line's budget wins
    # an error names the values the user gave, not a default they replaced
    with pytest.raises(XlmrError) as e:
        load_config(None, ["data.seq_len=1000", "data.batch_tokens=2500"])
    assert str(e.value).startswith("data.batch_tokens=2500 is not a multiple of data.seq_len=1000")
    with pytest.raises(XlmrError, match="data.batch_tokens=2500 is not a multiple of data.seq_len=1000"):
        apply_overrides(RunConfig(), ["data.seq_len=1000", "data.batch_tokens=2500"])


# ---------------------------------------------------------------- arguments before files


def test_eval_reports_an_unknown_suite_before_a_missing_file(tmp_path, capsys):
    unfinished = tmp_path / "run"
    unfinished.mkdir()
    assert main(["eval", str(unfinished), "--suite", "bpb,bogus"]) == 2
    line = _error_line(capsys)
    assert "unknown eval suite 'bogus'" in line and "final.json" not in line
    assert main(["eval", str(unfinished), "--suite", "xnli"]) == 2  # a downstream suite needs --data
    assert "--data" in _error_line(capsys)
    assert main(["eval", str(unfinished), "--suite", "bpb"]) == 2  # valid arguments: now the file
    assert "has no final.json" in _error_line(capsys)


# ---------------------------------------------------------------- text that is not text


def test_a_file_of_control_characters_is_refused_with_its_line(demo_corpus, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    natural = (demo_corpus / "sl.txt").read_text(encoding="utf-8").splitlines()[:200]
    (corpus / "sl.txt").write_text("\n".join(natural) + "\n", encoding="utf-8")
    # valid UTF-8, mostly NULs and other control bytes
    (corpus / "xx.txt").write_bytes(b"ok\n" + b"\x00\x01\x02\x1b\x7fab\x00\x00\x00\n" * 50)
    assert main(["corpus", "stats", str(corpus)]) == 2
    line = _error_line(capsys)
    assert f"{corpus / 'xx.txt'}:2:" in line and "control characters" in line and "'xx'" in line
    with pytest.raises(XlmrError, match=r"xx\.txt:2:"):  # and so for tokenizers and training
        tokenizer_for(corpus, ["sl", "xx"], 200, sample_lines=1000, cache_root=tmp_path / "c")
    # one garbage line among natural text is named, when it is enough to be far above natural text
    (corpus / "xx.txt").write_text("\n".join(natural[:20] + ["\x00" * 4000] + natural[20:40]) + "\n")
    with pytest.raises(XlmrError, match=r"xx\.txt:21: \d+\.\d% of the file's bytes are NULs"):
        validate_languages(corpus, ["xx"])
    # a few form feeds and escapes, as in real documentation, are text
    (corpus / "xx.txt").write_text("\n".join(natural[:100] + ["\f"] + natural[100:] + ["a \x1b[1mbold\x1b[0m"]))
    assert validate_languages(corpus, ["xx"])["xx"].control == 3


def test_every_demo_language_passes_the_text_check(demo_corpus):
    stats = validate_languages(demo_corpus, None)
    assert len(stats) >= 40 and all(s.control == 0 for s in stats.values())


# ---------------------------------------------------------------- malformed YAML


def test_malformed_yaml_is_one_line_with_file_line_and_column(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  size: debug\ndata:\n  langs: [en, de\n  seq_len: 64\n")
    assert main(["train", str(path)]) == 2
    line = _error_line(capsys)
    assert f"{path}:5:10: not valid YAML/JSON: expected ',' or ']', but got ':'" in line
    assert "while parsing a flow sequence that starts at 4:10" in line
    path.write_text("schedule:\n  steps: 1\x00\n")  # a character YAML refuses
    assert main(["train", str(path)]) == 2
    assert f"{path}:2:11: not valid YAML/JSON: character U+0000" in _error_line(capsys)
    slurm = tmp_path / "slurm.yaml"
    slurm.write_text("partition: gpu\nnodes: [1\n")
    with pytest.raises(XlmrError, match=rf"SLURM config file {slurm}:3:1: not valid YAML/JSON"):
        jobs.load_options(slurm)


# ---------------------------------------------------------------- a cache entry damaged after it was built


def _small_tokenizer(corpus, root, vocab=VOCAB):
    return tokenizer_for(corpus, LANGS, vocab, alpha=0.3, seed=0, sample_lines=SAMPLE, cache_root=root)


@pytest.mark.timeout(300)
def test_a_replaced_tokenizer_model_is_detected(demo_corpus, tmp_path):
    root = tmp_path / "cache"
    tok = _small_tokenizer(demo_corpus, root)
    model = tok.model_file
    other = _small_tokenizer(demo_corpus, root, vocab=VOCAB // 2)
    original = model.read_bytes()
    shutil.copyfile(other.model_file, model)  # a valid SentencePiece model, but not this entry's
    with pytest.raises(XlmrError, match=rf"cache entry {model.parent} is damaged: spm.model has \d[\d,]* bytes"):
        _small_tokenizer(demo_corpus, root)
    damaged = bytearray(original)  # the same size: only the checksum tells
    damaged[len(damaged) // 2] ^= 0xFF
    model.write_bytes(bytes(damaged))
    with pytest.raises(XlmrError) as e:
        _small_tokenizer(demo_corpus, root)
    assert str(e.value) == (f"cache entry {model.parent} is damaged: spm.model has changed since it was built "
                            f"(its checksum differs); delete the directory {model.parent} and run again "
                            "(it is rebuilt)")
    shutil.rmtree(model.parent)  # as the error says
    rebuilt = _small_tokenizer(demo_corpus, root)
    assert rebuilt.model_file == model and rebuilt.vocab_size == tok.vocab_size
    assert _small_tokenizer(demo_corpus, root).vocab_size == tok.vocab_size  # and it passes the check


@pytest.mark.timeout(300)
def test_a_truncated_shard_is_never_trained_on(demo_corpus, small_cache, tmp_path):
    tok = _small_tokenizer(demo_corpus, small_cache)
    shards = shards_for(tok, demo_corpus, LANGS, cache_root=small_cache)
    stream = shards.root / "bg.train.bin"
    size = stream.stat().st_size
    with open(stream, "r+b") as f:
        f.truncate(size - 100)
    message = (f"cache entry {shards.root} is damaged: bg.train.bin has {size - 100:,} bytes, {size:,} when it "
               f"was built; delete the directory {shards.root} and run again (it is rebuilt)")
    with pytest.raises(XlmrError) as e:
        shards_for(tok, demo_corpus, LANGS, cache_root=small_cache)
    assert str(e.value) == message
    with pytest.raises(XlmrError, match="is damaged: bg.train.bin"):
        ShardSet(shards.root)  # opened directly (evaluation of a finished run)
    run_dir = tmp_path / "run"
    with pytest.raises(XlmrError) as e:
        train(load_config(None, _overrides(demo_corpus, small_cache, run_dir)))
    assert str(e.value) == message and not list_checkpoints(run_dir)
    shutil.rmtree(shards.root)
    assert shards_for(tok, demo_corpus, LANGS, cache_root=small_cache).train_tokens("bg").nbytes == size


def test_large_files_are_checked_by_size_and_sampled_pages(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "FULL_HASH_MAX", 1 << 16)
    payload = os.urandom(1 << 20)

    def build(tmp: Path) -> None:
        (tmp / "big.bin").write_bytes(payload)
        (tmp / "small.json").write_text("{}")

    entry = cache.get_or_build("test", {"k": 1}, build, root=tmp_path)
    recorded = json.loads((entry / cache.MANIFEST_FILE).read_text())["files"]
    assert set(recorded["big.bin"]) == {"size", "sha256_pages"} and set(recorded["small.json"]) == {"size", "sha256"}
    with open(entry / "big.bin", "r+b") as f:  # overwrite the last page in place
        f.seek(len(payload) - 10)
        f.write(b"0123456789")
    with pytest.raises(XlmrError, match="big.bin has changed since it was built"):
        cache.get_or_build("test", {"k": 1}, build, root=tmp_path)
    (entry / "big.bin").unlink()
    with pytest.raises(XlmrError, match="big.bin is missing"):
        cache.get_or_build("test", {"k": 1}, build, root=tmp_path)


def test_an_entry_built_before_manifests_gets_one(tmp_path):
    entry = cache.get_or_build("test", {"k": 2}, lambda tmp: (tmp / "a").write_text("a"), root=tmp_path)
    (entry / cache.MANIFEST_FILE).unlink()
    assert cache.get_or_build("test", {"k": 2}, lambda tmp: pytest.fail("rebuilt"), root=tmp_path) == entry
    assert json.loads((entry / cache.MANIFEST_FILE).read_text())["files"]["a"]["size"] == 1


# ---------------------------------------------------------------- two launchers at once


@pytest.mark.timeout(400)
def test_two_launchers_of_one_sweep_train_each_run_once(demo_corpus, small_cache, tmp_path):
    from xlmr_core.study import sweeps

    sets = _overrides(demo_corpus, small_cache)  # no run_dir: the sweep names its runs' directories
    prepare(apply_overrides(sweeps.get_sweep("model_size", "demo", (0,), tmp_path / "warm")[0], sets))
    cmd = [sys.executable, str(REPO / "sweeps" / "launch.py"), "run", "model_size", "--scale", "demo",
           "--seeds", "0,1", "--only", "debug-*", "--executor", "local", "--suites", "none",
           "--root", str(tmp_path), *[x for o in sets for x in ("--set", o)]]
    launchers = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
                 for _ in range(2)]
    outs = [p.communicate(timeout=360) for p in launchers]
    for p, (out, err) in zip(launchers, outs):
        assert p.returncode == 0, out + err
    stdout = "".join(out for out, _ in outs)
    sweep_dir = tmp_path / "model_size"
    for run in ("debug-s0", "debug-s1"):
        assert stdout.count(f"start {run} ") == 1, stdout
        assert stdout.count(f"skip {run}:") == 1, stdout  # the other launcher left it alone
        rows = [json.loads(x) for x in (sweep_dir / run / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows if "loss" in r] == list(range(1, 13))  # trained once, never resumed
        assert json.loads((sweep_dir / run / "config.json").read_text())["resumed_from"] is None
        assert jobs.run_state(sweep_dir / run, need_eval=False).state == "done"


# ---------------------------------------------------------------- a full disk


# The disk "fills up" when the trainer opens the file named by argv[1]: from then on this process may not
# write a file beyond argv[2] bytes (RLIMIT_FSIZE; with SIGXFSZ ignored a write fails with EFBIG).
_FULL_DISK = """
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
name, limit = sys.argv[1], int(sys.argv[2])
def fill(event, args):
    if event == "open" and args and name in os.path.basename(str(args[0])):
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
sys.addaudithook(fill)
from xlmr_core.cli import main
sys.exit(main(["train", *sys.argv[3:]]))
"""


def _train_until_disk_full(file_name: str, overrides: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _FULL_DISK, file_name, "512", *overrides], capture_output=True,
                          text=True, timeout=240, cwd=REPO)


def _the_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, r.stdout + r.stderr
    errors = [x for x in r.stderr.splitlines() if "rror" in x]
    assert len(errors) == 1 and errors[0].startswith("xlmr: error: "), r.stderr
    return errors[0]


@pytest.mark.timeout(300)
def test_a_full_disk_while_writing_a_checkpoint(demo_corpus, small_cache, tmp_path):
    run_dir = tmp_path / "run"
    over = _overrides(demo_corpus, small_cache, run_dir)
    prepare(load_config(None, over))  # tokenizer and shards are written before the disk fills
    line = _the_error(_train_until_disk_full(".step_00000008.pt.", over))
    ck = run_dir / "checkpoints"
    assert line == (f"xlmr: error: cannot write {ck / 'step_00000008.pt'}: File too large (the disk is full, or a "
                    f"quota or file-size limit was reached); nothing was left half-written: free space in {ck} "
                    f"and restart: the run resumes from {ck / 'step_00000004.pt'}")
    assert sorted(p.name for p in ck.iterdir()) == ["step_00000004.pt"]  # no partial file
    state, path = read_checkpoint_state(run_dir)
    assert state["step"] == 4 and path == ck / "step_00000004.pt"
    assert not (run_dir / "final.json").exists()
    final = train(load_config(None, over))  # with space again: resumed, and finished
    assert final["steps"] == 12 and json.loads((run_dir / "config.json").read_text())["resumed_from"] == str(path)


@pytest.mark.timeout(300)
def test_a_full_disk_while_writing_final_json(demo_corpus, small_cache, tmp_path):
    run_dir = tmp_path / "run"
    over = _overrides(demo_corpus, small_cache, run_dir)
    prepare(load_config(None, over))
    line = _the_error(_train_until_disk_full(".final.json.", over))
    assert line.startswith(f"xlmr: error: cannot write {run_dir / 'final.json'}: File too large")
    assert not (run_dir / "final.json").exists() and not list(run_dir.glob(".final.json.*"))
    assert not jobs.is_done(run_dir, need_eval=False)
    state, path = read_checkpoint_state(run_dir)
    assert state["step"] == 12 and path == run_dir / "checkpoints" / "step_00000012.pt"
    assert train(load_config(None, over))["steps"] == 12
    assert (run_dir / "final.json").exists()


# ---------------------------------------------------------------- an interrupted job


@pytest.mark.timeout(400)
def test_a_sigterm_job_is_interrupted_not_failed_and_its_log_shows_progress(demo_corpus, small_cache, tmp_path):
    import signal
    import time

    from xlmr_core.study import sweeps

    sets = [*_overrides(demo_corpus, small_cache), "schedule.steps=5000", "log_interval=10",
            "checkpoint.interval=20", "log.tensorboard=false"]
    prepare(apply_overrides(sweeps.get_sweep("model_size", "demo", (0,), tmp_path / "warm")[0], sets))
    launch = [sys.executable, str(REPO / "sweeps" / "launch.py")]
    cmd = [*launch, "run", "model_size", "--scale", "demo", "--only", "debug-s0", "--executor", "local",
           "--suites", "none", "--allow-repeat", "--root", str(tmp_path), *[x for o in sets for x in ("--set", o)]]
    launcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    run_dir = tmp_path / "model_size" / "debug-s0"
    deadline = time.time() + 240
    while not list_checkpoints(run_dir):
        assert time.time() < deadline and launcher.poll() is None, launcher.communicate()
        time.sleep(0.2)
    os.kill(jobs.read_job(run_dir)["pid"], signal.SIGTERM)  # as `scancel` or a preemption does
    out, err = launcher.communicate(timeout=120)
    assert launcher.returncode == 1 and "interrupted: xlmr: interrupted by SIGTERM at step" in out, out + err
    st = jobs.run_state(run_dir)
    assert st.state == "interrupted" and st.error is None and "resumes from it" in st.detail
    assert list_checkpoints(run_dir)[0].name in st.detail  # the checkpoint it saved on the way out
    status = subprocess.run([*launch, "status", "model_size", "--root", str(tmp_path)], capture_output=True,
                            text=True, timeout=120, cwd=REPO)
    row = next(x for x in status.stdout.splitlines() if x.startswith("debug-s0"))
    assert "interrupted" in row and "Bypassing" not in row, status.stdout
    # away from a terminal the job's log holds a line of progress per log interval
    progress = [x for x in Path(jobs.read_job(run_dir)["stdout"]).read_text().splitlines() if "step " in x]
    assert progress and progress[0].startswith("debug-s0: step 10/5000, loss "), progress


def test_exported_files_get_the_mode_of_the_umask(tmp_path):
    import stat

    import torch

    from xlmr_core.model.encoder import XLMRForMaskedLM, model_config
    from xlmr_core.model.hf import export

    torch.manual_seed(0)
    out = export(XLMRForMaskedLM(model_config("debug", 100)), tmp_path / "hf")
    mask = os.umask(0)
    os.umask(mask)
    for name in ("model.safetensors", "config.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~mask, name  # 0644 under umask 022
