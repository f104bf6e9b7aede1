"""The fine-tuning command (chapter 9; Appendix A's `bert-lit finetune`, here run as `python -m bert_lit.finetuning`)
under real failures, each in its own process: kill -9 in the middle of a checkpoint save, a full disk (`ulimit -f`:
Python ignores SIGXFSZ, so writes past the limit fail with EFBIG, as on a full disk), and two runs on one --out at
the same time. The model is tiny (MiniLM's vocabulary, one layer of width 16) and the task is the real sentiment
task on 64 sentences, so each run takes a few seconds."""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bert_lit.data import minilm_checkpoint
from bert_lit.encoder import BertConfig, BertModel
from bert_lit.tokenizer import BertTokenizer

ROOT = Path(__file__).resolve().parents[1]

# Runs the command line (`python -m bert_lit.finetuning ...`) with torch.save watched: KILL_ON_SAVE=n kills the
# process with SIGKILL in the middle of its n-th checkpoint (half of it written to the temporary file);
# PAUSE_ON_SAVE=folder makes the first checkpoint save wait, folder holding, until the test lets it go on.
PRELUDE = r"""
import os, runpy, signal, sys, time
from pathlib import Path
import torch
real_save, calls = torch.save, []
def save(obj, f, *args, **kwargs):
    calls.append(f)
    if len(calls) == int(os.environ.get("KILL_ON_SAVE", 0)):
        real_save(obj, f, *args, **kwargs)
        os.truncate(f, os.path.getsize(f) // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    pause = os.environ.get("PAUSE_ON_SAVE")
    if pause and len(calls) == 1:
        (Path(pause) / "ready").touch()
        t = time.time()
        while not (Path(pause) / "go").exists() and time.time() - t < 120:
            time.sleep(0.05)
    return real_save(obj, f, *args, **kwargs)
torch.save = save
sys.argv = ["python -m bert_lit.finetuning", *sys.argv[1:]]
runpy.run_module("bert_lit.finetuning", run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def tiny_init(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    cfg = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    BertModel(cfg).save_pretrained(folder)
    BertTokenizer(minilm_checkpoint()).save_pretrained(folder)
    return folder


def args(init, out):
    "3 epochs of 16 steps (checkpoints at steps 16, 32, 48), 8 lines of metrics; one thread."
    return ["sentiment", "--init", str(init), "--from-scratch", "--out", str(out), "--train-limit", "64",
            "--epochs", "3", "--batch-size", "4", "--max-length", "32", "--threads", "1", "--no-progress"]


def command(argv, watched=False, ulimit_kb=None):
    cmd = [sys.executable, "-c", PRELUDE, *argv] if watched else [sys.executable, "-m", "bert_lit.finetuning", *argv]
    if ulimit_kb is not None:
        cmd = ["bash", "-c", f'ulimit -f {ulimit_kb}; exec "$@"', "bash", *cmd]
    return cmd


def run(argv, env=None, watched=False, ulimit_kb=None, timeout=120):
    return subprocess.run(command(argv, watched, ulimit_kb), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def files(out):
    "Every file of a run folder with its bytes (the lock's pid aside)."
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and p.name != ".lock"}


def temp_files(out):
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*.tmp"))


def metrics(out):
    return [{k: v for k, v in json.loads(l).items() if k != "seconds"}
            for l in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def whole(tiny_init, tmp_path_factory):
    "An uninterrupted run: what every interrupted one must end up equal to."
    out = tmp_path_factory.mktemp("whole") / "run"
    r = run(args(tiny_init, out))
    assert r.returncode == 0, r.stderr
    return out


def test_kill_during_checkpoint_save_then_resume(tiny_init, whole, tmp_path):
    out = tmp_path / "run"
    r = run(args(tiny_init, out), env={"KILL_ON_SAVE": "2"}, watched=True)
    assert r.returncode == -9, r.stderr                    # killed while writing the checkpoint of step 32
    left = temp_files(out)
    assert len(left) == 1 and left[0].startswith(".checkpoint.pt.")   # half a checkpoint...
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 16   # ...beside the whole one of step 16
    r = run(args(tiny_init, out))
    assert r.returncode == 0, r.stderr
    assert temp_files(out) == []                           # the next run removed it
    assert metrics(out) == metrics(whole)                  # resumed at step 16: the same steps, the same numbers
    for name in ("results.json", "model/model.safetensors", "model/config.json", "model/vocab.txt"):
        got, want = (out / name).read_bytes(), (whole / name).read_bytes()
        if name == "results.json":
            got, want = (json.loads(x)["test"] for x in (got, want))
        assert got == want, name


def no_space_reported(r):
    "Non-zero exit, the one-line message with the size, no traceback and no C++ stream error; the size in MB."
    text = r.stdout + r.stderr
    assert r.returncode not in (0, -9) and "Traceback" not in text and "basic_ios" not in text, text
    assert "no space left on" in text and "need about" in text, text
    return int(re.search(r"need about (\d+) MB", text).group(1))


def test_disk_full_during_a_checkpoint(tiny_init, whole, tmp_path):
    "A checkpoint that does not fit: a clear message with its real size; the metrics written so far are whole."
    out = tmp_path / "run"
    r = run(args(tiny_init, out), ulimit_kb=1000)          # files up to 1 MB: the metrics fit, a 6 MB checkpoint not
    need = no_space_reported(r)
    weights = (whole / "model" / "model.safetensors").stat().st_size    # a checkpoint: weights and two Adam moments
    assert need >= 2 * weights // 10**6 >= 2              # the checkpoint's size, not the 1 MB written
    assert temp_files(out) == [] and not (out / "checkpoint.pt").exists()
    assert metrics(out) == [m for m in metrics(whole) if m["step"] <= 16]   # every line whole, up to the failed save


def test_disk_full_when_rerunning_a_finished_run(tiny_init, whole, tmp_path):
    "Rerunning a finished run on a full disk: it is left alone (nothing to write), and every earlier file is intact."
    out = tmp_path / "run"
    shutil.copytree(whole, out)
    before = files(out)
    assert len((out / "metrics.jsonl").read_bytes()) > 1024   # so that even a metrics rewrite would fail at 1 kB
    r = run(args(tiny_init, out), ulimit_kb=1)
    assert r.returncode == 0 and "finished" in r.stdout and "left alone" in r.stdout, r.stderr
    assert files(out) == before and temp_files(out) == []


def test_two_runs_on_one_folder(tiny_init, whole, tmp_path):
    "A second run on a folder in use is refused at once; the first completes with a complete metrics file."
    out, sync = tmp_path / "run", tmp_path / "sync"
    sync.mkdir()
    first = subprocess.Popen(command(args(tiny_init, out), watched=True), cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "PAUSE_ON_SAVE": str(sync)})
    try:
        t = time.time()
        while not (sync / "ready").exists():               # the first run is mid-way, in its first checkpoint save
            assert first.poll() is None and time.time() - t < 120, first.communicate()
            time.sleep(0.05)
        second = run(args(tiny_init, out), timeout=60)
        assert second.returncode == 1, second.stdout + second.stderr
        err = second.stderr.strip()
        assert "in use by another run" in err and f"(process {first.pid})" in err, err
        assert len(err.splitlines()) == 1 and "Traceback" not in err and second.stdout == "", err
    finally:
        (sync / "go").touch()
        stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert metrics(out) == metrics(whole)
    assert json.loads((out / "results.json").read_text())["test"] == json.loads((whole / "results.json").read_text())["test"]
