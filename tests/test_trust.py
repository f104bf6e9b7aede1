"""Training a user can trust (issue 16, part 4): the best epoch and early stopping (chapter 9), Ctrl-C saves the step
and resumes exactly (chapter 7's TrainingRun, in fit and in `bert-lit pretrain`), a folder that holds a run
(finished: left alone; other options: refused, naming them; --overwrite: afresh), the checkpoint deleted at the end
unless --keep-checkpoint, --threads' default, and the line a fetch prints. Tiny models: each test takes seconds."""
import hashlib
import json
import os
import random
import signal
from pathlib import Path

import pytest
import torch

import bert_lit.data as data
import bert_lit.finetuning as ft
import bert_lit.pretraining as pt
from bert_lit.cli import default_threads, main, parser
from bert_lit.config import BertConfig
from bert_lit.data import minilm_checkpoint
from bert_lit.finetuning import BertForSequenceClassification, FinetuneConfig, fit
from bert_lit.tokenizer import BertTokenizer
from bert_lit.training import Interrupted


@pytest.fixture(autouse=True)
def one_thread():
    "The commands set torch's thread count: one here (numbers compared exactly), and the suite's own back after."
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(seed=0):
    torch.manual_seed(seed)
    c = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                   max_position_embeddings=32)
    return BertForSequenceClassification(c, labels=["no", "yes"])


g = torch.Generator().manual_seed(0)
TRAIN = []
for i in range(16):
    ids = torch.randint(5, 60, (3 + i % 5,), generator=g).tolist()
    TRAIN.append({"input_ids": [2, *ids, 3], "token_type_ids": [0] * (len(ids) + 2), "labels": int(ids[0] > 30)})


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ 1. the best epoch and early stopping

def scripted(scores, seen):
    "An evaluate stub: the next of `scores` as 'accuracy', and a copy of the weights it scored (independent)."
    def evaluate(model):
        seen.append(weights(model))
        return {"accuracy": scores[len(seen) - 1]}
    return evaluate


@pytest.mark.parametrize("folder", [True, False])
def test_early_stopping_keeps_the_best_epoch(tmp_path, folder):
    "Was: no metric_for_best / early_stopping_patience; the model ended with the last epoch's weights."
    scores, seen = [0.5, 0.7, 0.6, 0.65, 0.9, 0.95], []
    cfg = FinetuneConfig(epochs=6, batch_size=8, learning_rate=3e-3, metric_for_best="accuracy",
                         early_stopping_patience=2)
    model = tiny()
    out = tmp_path / "run" if folder else None
    records = fit(model, TRAIN, cfg, scripted(scores, seen), out, progress=False)
    assert len(seen) == 4                                         # epochs 3 and 4 did not beat 0.7: stopped
    assert same(weights(model), seen[1])                          # epoch 2's weights, not epoch 4's
    assert records[-1]["split"] == "best" and records[-1]["epoch"] == 2 and records[-1]["accuracy"] == 0.7
    assert records[-1]["stopped_early"] is True
    assert [r["step"] for r in records if r["split"] == "validation"] == [2, 4, 6, 8]   # 2 steps an epoch
    if folder:
        assert (out / "best.pt").is_file()
        lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
        assert lines == records
        again = tiny(seed=5)                                      # a resumed (finished) run still knows the best
        assert fit(again, TRAIN, cfg, scripted(scores, []), out, progress=False) == records
        assert same(weights(again), seen[1])


def test_lower_is_better_for_rmse_and_the_default_is_off(tmp_path):
    seen = []
    cfg = FinetuneConfig(epochs=3, batch_size=8, learning_rate=3e-3, metric_for_best="rmse")
    evaluate = lambda m: (seen.append(weights(m)), {"rmse": [0.9, 0.4, 0.6][len(seen) - 1]})[1]
    model = tiny()
    records = fit(model, TRAIN, cfg, evaluate, progress=False)
    assert same(weights(model), seen[1]) and records[-1]["epoch"] == 2
    plain = tiny()
    records = fit(plain, TRAIN, FinetuneConfig(epochs=2, batch_size=8), lambda m: {"accuracy": 0.5}, progress=False)
    assert all(r["split"] != "best" for r in records)              # off by default: today's behaviour
    with pytest.raises(ValueError, match="needs metric_for_best"):
        FinetuneConfig(early_stopping_patience=1)
    with pytest.raises(ValueError, match="is not among the scores evaluate returns: accuracy"):
        fit(tiny(), TRAIN, FinetuneConfig(epochs=1, batch_size=8, metric_for_best="f1"),
            lambda m: {"accuracy": 0.5}, progress=False)


# ------------------------------------------------------------------ 2. Ctrl-C

def press_ctrl_c_during(monkeypatch, module, name, at_call):
    "Wrap module.name so that Ctrl-C (a real SIGINT to this process) arrives during its call number `at_call`."
    real, calls = getattr(module, name), []
    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == at_call:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, step)


def test_ctrl_c_in_fit_saves_the_step_and_resumes_exactly(tmp_path, monkeypatch):
    "Was: a KeyboardInterrupt mid-step lost every step since the last checkpoint (save_every=200)."
    cfg = FinetuneConfig(epochs=2, batch_size=4, learning_rate=3e-3, log_every=1)
    handler = signal.getsignal(signal.SIGINT)        # the default, or SIG_IGN in a pytest-xdist worker
    whole = tiny()
    fit(whole, TRAIN, cfg, None, tmp_path / "whole", progress=False)
    with monkeypatch.context() as m:
        press_ctrl_c_during(m, ft, "fit_step", 3)
        with pytest.raises(Interrupted, match=r"^interrupted at step 3 of 8; checkpoint saved: run the same command"):
            fit(tiny(), TRAIN, cfg, None, tmp_path / "cut", progress=False)
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["step"] == 3
    random.seed(1); torch.manual_seed(1)                          # a fresh process has other random states
    resumed = tiny(seed=3)
    fit(resumed, TRAIN, cfg, None, tmp_path / "cut", progress=False)
    lines = {k: [{f: v for f, v in json.loads(l).items() if f != "seconds"}         # wall-clock
                 for l in (tmp_path / k / "metrics.jsonl").read_text().splitlines()] for k in ("whole", "cut")}
    assert lines["cut"] == lines["whole"] and len(lines["cut"]) == 8
    assert same(weights(resumed), weights(whole))
    assert signal.getsignal(signal.SIGINT) is handler                            # the handler given back


def write_corpus(path, n_docs=40, seed=0):
    words = "the cat sat on a mat and dog ran far away from home with big red ball under old tree".split()
    rng = random.Random(seed)
    docs = ["\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))).capitalize() + "."
                      for _ in range(rng.randint(3, 8))) for _ in range(n_docs)]
    path.write_text("\n\n".join(docs) + "\n")
    return path


def pretrain_argv(out, corpus, *extra):
    return ["pretrain", "--out", str(out), "--corpus", str(corpus), "--vocab-size", "120", "--hidden-size", "16",
            "--layers", "1", "--heads", "2", "--intermediate-size", "32", "--max-seq-length", "32", "--batch-size",
            "4", "--eval-every", "5", "--eval-batches", "1", "--log-every", "1", "--threads", "1", "--no-progress",
            "--max-steps", "3", *extra]


def test_ctrl_c_in_pretrain_exits_130_in_one_line_and_resumes_exactly(tmp_path, monkeypatch, capsys):
    "Was: a traceback, no exit status 130, and the steps since the last checkpoint lost."
    corpus = write_corpus(tmp_path / "corpus.txt")
    assert main(pretrain_argv(tmp_path / "whole", corpus, "--max-steps", "4", "--keep-checkpoint")) == 0
    with monkeypatch.context() as m:
        press_ctrl_c_during(m, pt, "train_step", 2)               # pretrain saves every --save-every steps
        capsys.readouterr()
        status = main(pretrain_argv(tmp_path / "cut", corpus, "--max-steps", "4", "--save-every", "2"))
    err = capsys.readouterr().err
    assert status == 130 and err == "interrupted at step 2 of 4; checkpoint saved: run the same command again to " \
                                    "resume\n", err
    assert main(pretrain_argv(tmp_path / "cut", corpus, "--max-steps", "4", "--save-every", "2")) == 0
    lines = {k: [json.loads(l) for l in (tmp_path / k / "metrics.jsonl").read_text().splitlines()]
             for k in ("whole", "cut")}
    drop = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "tokens_per_s")}   # wall-clock
    assert [drop(r) for r in lines["cut"]] == [drop(r) for r in lines["whole"]]
    a, b = (pt.BertForPreTraining.from_pretrained(tmp_path / k / "model") for k in ("whole", "cut"))
    assert same(weights(a), weights(b))


# ------------------------------------------------------------------ 3. a folder that holds a run

def test_pretrain_folder_finished_changed_overwrite_and_checkpoint(tmp_path, capsys):
    "Was: a rerun trained again; another --hidden-size was refused without naming it; no --overwrite; 2 MB kept."
    corpus, other = write_corpus(tmp_path / "c1.txt"), write_corpus(tmp_path / "c2.txt", seed=1)
    out = tmp_path / "run"
    assert main(pretrain_argv(out, corpus)) == 0
    assert not (out / "checkpoint.pt").exists() and (out / "model" / "model.safetensors").is_file()
    before = (out / "metrics.jsonl").read_bytes()
    capsys.readouterr()
    assert main(pretrain_argv(out, corpus, "--threads", "2")) == 0             # bookkeeping options may change
    said = capsys.readouterr().out
    assert said.count("\n") == 1 and "finished" in said and "left alone" in said
    assert (out / "metrics.jsonl").read_bytes() == before
    for extra, named in [(["--hidden-size", "32"], "--hidden-size 16 when the run began, 32 now"),
                         (["--vocab-size", "100"], "--vocab-size 120 when the run began, 100 now"),
                         (["--learning-rate", "1e-4"], "--learning-rate 0.001 when the run began, 0.0001 now")]:
        assert main(pretrain_argv(out, corpus, *extra)) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and named in err and "--overwrite" in err, err
    assert main(pretrain_argv(out, other)) == 1 and "--corpus 'sha256 " in capsys.readouterr().err
    (out / "notes.txt").write_text("mine")
    assert main(pretrain_argv(out, other, "--hidden-size", "32", "--overwrite", "--keep-checkpoint")) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "checkpoint.pt").is_file()
    assert pt.BertForPreTraining.from_pretrained(out / "model").config.hidden_size == 32
    assert json.loads((out / "command.json").read_text())["hidden_size"] == 32
    # a model/ snapshot taken mid-run (the checkpoint newer than it) is not the end of a run: it resumes
    capsys.readouterr()
    later = (out / "model" / "model.safetensors").stat().st_mtime + 10
    os.utime(out / "checkpoint.pt", (later, later))
    assert main(pretrain_argv(out, other, "--hidden-size", "32")) == 0
    assert "left alone" not in capsys.readouterr().out and not (out / "checkpoint.pt").exists()


@pytest.fixture(scope="module")
def init_folder(tmp_path_factory):
    "A width-16 BERT with MiniLM's vocabulary, saved: a --init that fine-tunes in a second."
    folder = tmp_path_factory.mktemp("init")
    tok = BertTokenizer.from_pretrained(minilm_checkpoint())
    torch.manual_seed(0)
    ft.BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def finetune_argv(init, out, table, *extra):
    return ["finetune", "text-classification", "--init", str(init), "--out", str(out), "--train-file", str(table),
            "--validation-file", str(table), "--epochs", "2", "--batch-size", "4", "--max-length", "16",
            "--threads", "1", "--no-progress", *extra]


def test_finetune_folder_finished_changed_overwrite_and_checkpoint(tmp_path, init_folder, capsys):
    "Was: checkpoint.pt (273 MB for MiniLM) left behind; a rerun trained again; no --overwrite, --save-every."
    table = tmp_path / "t.csv"
    table.write_text("text,label\n" + "".join(f"{w} film {i},{'good' if i % 2 else 'bad'}\n"
                                              for i, w in enumerate(["fine", "dull", "great", "poor"] * 3)))
    out = tmp_path / "run"
    assert main(finetune_argv(init_folder, out, table, "--save-every", "1", "--metric-for-best", "accuracy",
                              "--early-stopping-patience", "1")) == 0
    assert (out / "results.json").is_file() and not (out / "checkpoint.pt").exists()
    assert not (out / "best.pt").exists()
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["save_every"] == 1 and results["kept_epoch"] in (1, 2)
    assert any(json.loads(l)["split"] == "best" for l in (out / "metrics.jsonl").read_text().splitlines())
    capsys.readouterr()
    assert main(finetune_argv(init_folder, out, table, "--save-every", "5", "--metric-for-best", "accuracy",
                              "--early-stopping-patience", "1")) == 0
    assert "left alone" in capsys.readouterr().out
    assert main(finetune_argv(init_folder, out, table, "--learning-rate", "1e-3")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--learning-rate 5e-05 when the run began, 0.001 now" in err
    assert "--metric-for-best 'accuracy' when the run began, None now" in err
    assert main(finetune_argv(init_folder, out, table, "--overwrite", "--keep-checkpoint")) == 0
    assert (out / "checkpoint.pt").is_file() and "kept_epoch" not in json.loads((out / "results.json").read_text())


# ------------------------------------------------------------------ 4. --threads, and the fetch line

def test_threads_default_to_the_cores_this_process_may_use(capsys):
    "Was: --threads defaulted to 1."
    args = parser().parse_args(["finetune", "pos", "--init", "minilm", "--out", "x"])
    assert args.threads is None and default_threads() == len(os.sched_getaffinity(0))
    assert main(["finetune", "--help"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "--threads 1 makes the numbers independent of the machine" in said
    for option in ("--save-every N steps between checkpoints (and one at each epoch's end) (default: 200)",
                   "--overwrite", "--keep-checkpoint", "--metric-for-best NAME", "--early-stopping-patience N"):
        assert option in said, option


def test_a_fetch_says_what_it_fetches_once_and_nothing_when_cached(tmp_path, monkeypatch, capsys):
    "Was: an artefact of unknown size failed (None / 1e6) before it was fetched."
    content = b"pretend wheel"
    a = data.Artefact("fake", "pip", "fake==1.0", "fake-1.0.whl", None, hashlib.sha256(content).hexdigest())
    monkeypatch.setitem(data.ARTEFACTS, "fake", a)
    monkeypatch.setattr(data, "_run_client", lambda a, cache, folder: Path(folder, a.filename).write_bytes(content))
    path = data.fetch("fake", tmp_path)
    err = capsys.readouterr().err
    assert path.read_bytes() == content
    assert err == f"bert_lit: fetching fake==1.0 (size unknown) into {tmp_path / 'artefacts'}\n", err
    assert data.fetch("fake", tmp_path) == path and capsys.readouterr().err == ""
