"""Crash tests of the pretraining command (chapter 8): each runs the real `python -m bert_lit.pretraining` in a
subprocess on a tiny corpus and checks that no run loses work or clobbers another one.

- kill -9 in the middle of a checkpoint save, then the same command again: it resumes, the temporary file is gone,
  and the model and metrics are those of a run that was never interrupted (bit for bit, on one CPU thread);
- a full disk (`ulimit -f`): one clear line ("no space left on ... need about N MB"), the previous checkpoint and
  metrics intact, and a rerun with space resumes to the uninterrupted run;
- two runs on one folder: the second is refused at once, the first finishes normally;
- a resume with another corpus, another --vocab-size, or --device cuda without CUDA: refused, naming what differs.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
# one thread, no GPU (even on a machine with one): the runs are bit-for-bit reproducible
ENV = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
WORDS = ("the a of to and in that it was he for on is with his as at by this had not be but from or have an they "
         "which one you were her all she there would their we him been has when who will more no if out so said what "
         "up its about into than them can only other new some could time these two may then do first any my now").split()


def write_corpus(path, n_docs=60, seed=0):
    "A small corpus file: short documents of short sentences, a blank line between documents."
    rng = random.Random(seed)
    docs = ["\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))).capitalize() + "."
                      for _ in range(rng.randint(3, 8))) for _ in range(n_docs)]
    path.write_text("\n\n".join(docs) + "\n")
    return path


def command(out, corpus, *extra):
    "The tiny run: 30 steps, a checkpoint after every step (many saves to be caught in)."
    return [sys.executable, "-m", "bert_lit.pretraining", "--out", str(out), "--corpus", str(corpus),
            "--vocab-size", "200", "--hidden-size", "32", "--layers", "1", "--heads", "2", "--intermediate-size", "64",
            "--max-seq-length", "32", "--batch-size", "8", "--max-steps", "30", "--warmup-steps", "3",
            "--save-every", "1", "--log-every", "1", "--eval-every", "10", "--eval-batches", "2", "--threads", "1",
            "--no-progress", *extra]


def run(args, **kw):
    return subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120, **kw)


def start(args):
    return subprocess.Popen(args, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def one_error_line(r):
    "The command failed with exit status 1 and said why in one line, without a traceback."
    assert r.returncode == 1, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-3000:]
    return lines[0]


def temp_files(folder):
    return sorted(p.name for p in Path(folder).glob(".*.tmp"))


def metrics(folder):
    "The metrics lines, without the wall-clock fields (seconds, tokens per second)."
    return [{k: v for k, v in json.loads(l).items() if k not in ("seconds", "tokens_per_s")}
            for l in (Path(folder) / "metrics.jsonl").read_text().splitlines()]


def assert_same_run(folder, reference):
    "The same metrics (exactly equal floats) and bit-identical final weights."
    assert metrics(folder) == metrics(reference)
    a, b = (load_file(Path(f) / "model" / "model.safetensors") for f in (folder, reference))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def wait_for(condition, process, seconds=60):
    deadline = time.time() + seconds
    while not condition():
        assert process.poll() is None, f"the run ended first: {process.stderr.read().decode()[-2000:]}"
        assert time.time() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    "A corpus and one uninterrupted run on it."
    tmp = tmp_path_factory.mktemp("reference")
    corpus = write_corpus(tmp / "corpus.txt")
    r = run(command(tmp / "run", corpus))
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(metrics(tmp / "run")) == 30 + 3                        # 30 training lines, 3 evaluations
    return corpus, tmp / "run"


def test_kill_during_a_checkpoint_save_then_resume(reference, tmp_path):
    corpus, ref = reference
    out = tmp_path / "run"
    p = start(command(out, corpus))
    saving = lambda: out.is_dir() and any(n.startswith(".checkpoint.pt.") for n in temp_files(out))
    left = []
    try:
        while not left:                                  # catch the run inside a save: stop it, look, kill it
            wait_for(lambda: (out / "checkpoint.pt").exists() and saving(), p)
            os.kill(p.pid, signal.SIGSTOP)
            if saving():
                left = temp_files(out)
                os.kill(p.pid, signal.SIGKILL)
            else:                                         # the save finished before the stop: go on
                os.kill(p.pid, signal.SIGCONT)
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
    assert p.returncode == -signal.SIGKILL
    step = torch.load(out / "checkpoint.pt", weights_only=True)["step"]
    assert 1 <= step < 30 and left
    r = run(command(out, corpus))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming from" in r.stdout
    assert temp_files(out) == []                          # the killed save's temporary file is gone
    assert_same_run(out, ref)


def test_full_disk_keeps_the_last_checkpoint(reference, tmp_path):
    corpus, ref = reference
    out = tmp_path / "run"
    p = start(command(out, corpus))
    try:
        wait_for(lambda: (out / "checkpoint.pt").exists(), p)   # a complete checkpoint (it appears by a rename)
    finally:
        p.kill()
        p.wait()
    ckpt = out / "checkpoint.pt"
    step = torch.load(ckpt, weights_only=True)["step"]
    assert 1 <= step < 30
    # files of at most half a checkpoint: metrics and run.json fit, the next checkpoint does not (EFBIG)
    limit_kb = ckpt.stat().st_size // 2048
    r = run(["bash", "-c", f'ulimit -f {limit_kb} && exec "$@"', "bash", *command(out, corpus)])
    line = one_error_line(r)
    assert line.startswith("error: no space left on ") and "need about" in line, line
    assert "basic_ios" not in r.stdout + r.stderr and "PytorchStreamWriter" not in line
    assert torch.load(ckpt, weights_only=True)["step"] == step   # the previous checkpoint, intact
    assert temp_files(out) == []
    logged = metrics(out)                                  # every line whole
    assert {x["step"] for x in logged} <= set(range(1, step + 2))
    r = run(command(out, corpus))                          # with space again: resumes to the uninterrupted run
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_run(out, ref)


def test_second_run_on_the_same_folder_is_refused(reference, tmp_path):
    corpus, ref = reference
    out = tmp_path / "run"
    first = start(command(out, corpus))
    try:
        lock = out / ".lock"
        wait_for(lambda: lock.exists() and lock.read_text().strip() == str(first.pid), first)   # it holds the folder
        os.kill(first.pid, signal.SIGSTOP)               # ... and keeps it while the second one tries
        try:
            t = time.time()
            second = run(command(out, corpus))
            took = time.time() - t
        finally:
            os.kill(first.pid, signal.SIGCONT)
        line = one_error_line(second)
        assert "is in use by another run" in line and f"process {first.pid}" in line, line
        assert took < 60
        assert first.wait(timeout=120) == 0, first.stderr.read().decode()[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert_same_run(out, ref)                            # the first run's metrics are complete and its own


def test_resume_with_another_corpus_or_vocabulary_is_refused(reference, tmp_path):
    corpus, ref = reference
    out = tmp_path / "run"
    shutil.copytree(ref, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".lock"}
    other = write_corpus(tmp_path / "other.txt", seed=1)

    line = one_error_line(run(command(out, other)))
    assert "--corpus 'sha256 " in line and "when the run began" in line and "--vocab-size" not in line
    line = one_error_line(run(command(out, corpus, "--vocab-size", "150")))
    assert "--vocab-size 200 when the run began, 150 now" in line and "--corpus" not in line
    line = one_error_line(run(command(out, corpus, "--device", "cuda")))   # no CUDA device is visible
    assert "no CUDA device is available" in line and "--device cpu" in line
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".lock"}
    assert after == before                               # nothing written
