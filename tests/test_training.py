"""Chapter 7: the training loop's machinery, on models that are not BERT.

What training.py may import; shards and weights; one weighted backward for micro-batches and processes; random
states; the run folder (its metrics log appended, never rewritten per record; held; another run's checkpoint refused;
resume exact); a user's own script under torchrun joins the process group and computes only its shard."""
import ast
import json
import os
import random
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bert_lit.training as training
from bert_lit.data import FolderInUse
from bert_lit.training import (TrainingRun, build_optimizer, data_parallel, restore_rng_states, rng_states, shard,
                               weighted_backward, weighted_step)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import ddp_worker  # noqa: E402


# ---------------------------------------------------------------- training.py knows nothing of BERT

def test_training_imports_nothing_of_bert():
    "Every import in training.py (at the top and inside functions) is the standard library, numpy, torch, tqdm or bert_lit.data."
    tree = ast.parse((ROOT / "bert_lit" / "training.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(("." * node.level) + (node.module or ""))
    allowed = lambda m: (m.split(".")[0] in sys.stdlib_module_names or m.split(".")[0] in ("numpy", "torch", "tqdm")
                         or m in ("bert_lit.data", ".data"))
    assert imported and not [m for m in imported if not allowed(m)], sorted(imported)
    assert {"bert_lit.data", ".data"} & imported
    # and the loop pieces are defined there, not re-exported from a BERT module
    for name in ("build_optimizer", "weighted_step", "TrainingRun", "shard", "save_training_state"):
        assert getattr(training, name).__module__ == "bert_lit.training", name


# ---------------------------------------------------------------- moved from test_pretraining / test_distributed

def test_to_device_moves_tensors_only():
    "The loops move each batch to the model's device; other values pass through untouched."
    batch = {"input_ids": torch.ones(2, 3, dtype=torch.long), "labels": torch.zeros(2), "n": 3}
    moved = training.to_device(batch, torch.device("meta"))
    assert moved["input_ids"].device.type == "meta" and moved["labels"].device.type == "meta"
    assert moved["n"] == 3 and batch["input_ids"].device.type == "cpu"
    same = training.to_device(batch, torch.device("cpu"))
    assert same["input_ids"] is batch["input_ids"]                  # already there: no copy


def test_resuming_with_another_process_count_warns():
    states = [rng_states(), rng_states()]
    with pytest.warns(UserWarning, match="written by 2 process.*resumed by 1"):
        restore_rng_states(states)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restore_rng_states(states[:1])                       # one process wrote it, one resumes: silent
        restore_rng_states(states[0])                        # a checkpoint of before chapter 7: one dict


def test_shard_rows_and_weights():
    batch = {"input_ids": torch.arange(10).view(5, 2), "labels": torch.arange(5), "name": "x"}
    part, n = shard(batch, 1, 2)
    assert n == 2 and part["input_ids"].tolist() == [[2, 3], [6, 7]] and part["labels"].tolist() == [1, 3]
    assert part["name"] == "x"
    part, n = shard({"input_ids": torch.ones(1, 3)}, 1, 2)          # nothing left for process 1: row 0, weight 0
    assert n == 0 and part["input_ids"].shape == (1, 3)
    assert shard(batch, 0, 1) == (batch, 5)
    part, n = shard({"x": torch.arange(5), "name": "y"}, 0, 2)      # any tensor's rows, not only input_ids
    assert n == 3 and part["x"].tolist() == [0, 2, 4]


# ---------------------------------------------------------------- one weighted backward

class Toy(nn.Module):
    "Embeddings, LayerNorm, a per-token head and a per-sequence head: two losses over different counts."
    def __init__(self, dropout=0.0):
        super().__init__()
        self.embeddings, self.LayerNorm = nn.Embedding(30, 6), nn.LayerNorm(6)
        self.drop, self.tagger, self.classifier = nn.Dropout(dropout), nn.Linear(6, 3), nn.Linear(6, 2)

    def forward(self, input_ids, labels, sequence_label):
        h = self.drop(self.LayerNorm(self.embeddings(input_ids)))
        return self.tagger(h), self.classifier(h.mean(1))


def losses(m, b):
    tags, classes = m(**b)
    return {"tag": F.cross_entropy(tags.flatten(0, 1), b["labels"].flatten()),
            "cls": F.cross_entropy(classes, b["sequence_label"])}


def counts(b):
    return {"tag": int((b["labels"] != -100).sum()), "cls": len(b["input_ids"])}


def toy_batch(B, seed, T=5):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 30, (B, T), generator=g)
    return {"input_ids": ids, "labels": torch.where(torch.rand(B, T, generator=g) < 0.3, ids % 3, -100),
            "sequence_label": ids[:, 0] % 2}


def seeded_toy():
    torch.manual_seed(0)
    return Toy()


def gradients(fn):
    m = seeded_toy()
    fn(m)
    return torch.cat([p.grad.flatten() for p in m.parameters()])


@pytest.mark.parametrize("cut", [[1], [2, 5], [3, 4, 6]])
def test_weighted_backward_is_the_whole_batch(cut):
    "Unequal micro-batches, with few labelled tokens in some: the gradient of the whole batch's two means (float32: ~1e-7)."
    batch = toy_batch(7, seed=3)
    whole = gradients(lambda m: sum(losses(m, batch).values()).backward())
    edges = [0, *cut, 7]
    micro = [{k: v[a:b] for k, v in batch.items()} for a, b in zip(edges, edges[1:])]
    terms = {}
    split = gradients(lambda m: terms.update(weighted_backward(m, micro, losses, counts)))
    torch.testing.assert_close(split, whole, atol=1e-6, rtol=1e-5)
    with torch.no_grad():
        expected = losses(seeded_toy(), batch)
    for k in expected:
        assert abs(terms[k].item() - expected[k].item()) < 1e-6


def test_simulated_processes_weight_like_ddp(monkeypatch):
    "W processes each back-propagating W n_r/N mean_r, averaged as DDP does: the whole batch's gradient (empty shard included)."
    batch = toy_batch(3, seed=5)
    whole = gradients(lambda m: sum(losses(m, batch).values()).backward())
    W = 4                                                             # 3 rows over 4 processes: one has none
    monkeypatch.setattr(training, "DistributedDataParallel", Toy)    # the toy stands in for the DDP wrapper
    def simulated(m):
        m.no_sync = lambda: __import__("contextlib").nullcontext()
        for r in range(W):
            monkeypatch.setattr(training, "rank_and_world", lambda r=r: (r, W))
            monkeypatch.setattr(training.dist, "all_reduce", lambda t: None)
            weighted_backward(m, [batch], losses, counts)
        for p in m.parameters():
            p.grad /= W                                               # DDP's average
    torch.testing.assert_close(gradients(simulated), whole, atol=1e-6, rtol=1e-5)


def test_a_micro_batch_without_labelled_tokens_adds_nothing():
    "All its token labels are -100: its mean tag loss is NaN, its weight 0; the gradient and terms stay the whole batch's."
    batch = toy_batch(6, seed=7)
    batch["labels"][4:] = -100                                        # the last micro-batch has no labelled token
    whole = gradients(lambda m: sum(losses(m, batch).values()).backward())
    micro = [{k: v[a:b] for k, v in batch.items()} for a, b in ((0, 4), (4, 6))]
    assert counts(micro[1])["tag"] == 0 and losses(seeded_toy(), micro[1])["tag"].isnan()
    terms = {}
    split = gradients(lambda m: terms.update(weighted_backward(m, micro, losses, counts)))
    assert not split.isnan().any() and all(not t.isnan() for t in terms.values())
    torch.testing.assert_close(split, whole, atol=1e-6, rtol=1e-5)


def test_several_processes_need_the_ddp_wrapper(monkeypatch):
    monkeypatch.setattr(training, "rank_and_world", lambda: (0, 2))
    with pytest.raises(ValueError, match="not wrapped in DistributedDataParallel.*data_parallel"):
        weighted_backward(Toy(), [toy_batch(2, 0)], losses, counts)


def test_counts_must_match_the_losses():
    with pytest.raises(ValueError, match=r"loss_fn returned the terms \['cls', 'tag'\], count_fn counted \['tag'\]"):
        weighted_backward(Toy(), [toy_batch(2, 0)], losses, lambda b: {"tag": 1})


def test_seed_everything_seeds_all_three():
    training.seed_everything(7)
    a = (random.random(), float(np.random.rand()), float(torch.rand(())))
    random.seed(0); np.random.seed(0); torch.manual_seed(0)
    training.seed_everything(7)
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == a
    training.seed_everything(7, rank=1)
    assert random.random() == a[0] and float(np.random.rand()) == a[1] and float(torch.rand(())) != a[2]


# ---------------------------------------------------------------- the run folder

def toy_loop(folder, steps=10, die_at=None, settings=None, progress=False):
    """A user's loop: dropout, 2 micro-batches a step, batches drawn with Python's and NumPy's generators (so all
    three random states matter), a checkpoint every 3 steps."""
    torch.manual_seed(0)
    model = Toy(dropout=0.2)
    optimizer, scheduler = build_optimizer(model, 1e-2, 0.01, 1, steps)
    with TrainingRun(folder, settings or {"toy": 1, "steps": steps}, steps, progress=progress) as run:
        step = run.resume(11, model=model, optimizer=optimizer, scheduler=scheduler)
        trained = data_parallel(model)
        while step < steps:
            if step == die_at:
                raise KeyboardInterrupt("killed")
            micro = [toy_batch(3, seed=random.randrange(10**6) + int(np.random.randint(1000))) for _ in range(2)]
            stats = weighted_step(trained, optimizer, scheduler, micro, losses, counts)
            step += 1
            run.log({"step": step, **stats})
            if step % 3 == 0 or step == steps:
                run.save(step, model=model, optimizer=optimizer, scheduler=scheduler)
            run.advance()
    return model, run


def test_resume_continues_exactly(tmp_path):
    "Killed after the checkpoint of step 6, resumed from other random states: the log and weights of an uninterrupted run."
    whole, _ = toy_loop(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        toy_loop(tmp_path / "cut", die_at=8)
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["step"] == 6
    with open(tmp_path / "cut" / "metrics.jsonl", "a") as f:
        f.write('{"step": 9, "lo')                                  # and a line cut by the kill
    random.seed(5); np.random.seed(5); torch.manual_seed(5)           # a fresh process has other random states
    resumed, run = toy_loop(tmp_path / "cut")
    assert [r["step"] for r in run.history] == [1, 2, 3, 4, 5, 6] and [r["step"] for r in run.records] == [7, 8, 9, 10]
    assert (tmp_path / "cut" / "metrics.jsonl").read_bytes() == (tmp_path / "whole" / "metrics.jsonl").read_bytes()
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_metrics_log_is_appended_not_rewritten(tmp_path, monkeypatch):
    "A record is one appended, flushed line: the file keeps its inode and its earlier bytes, and is not rewritten."
    torch.manual_seed(0)
    model = Toy()
    optimizer, scheduler = build_optimizer(model, 1e-2, 0.01, 0, 100)
    with TrainingRun(tmp_path, {"x": 1}, 100, progress=False) as run:
        run.resume(0, model=model, optimizer=optimizer, scheduler=scheduler)
        writes = []
        monkeypatch.setattr(training, "atomic_write", lambda *a, **k: writes.append(a))
        file = tmp_path / "metrics.jsonl"
        run.log({"step": 1, "loss": 1.0})
        first, inode = file.read_bytes(), file.stat().st_ino
        for step in range(2, 60):
            run.log({"step": step, "loss": 1.0 / step})
            assert file.stat().st_ino == inode                       # the same file, not a replaced one
            assert file.read_bytes().startswith(first)               # earlier bytes untouched
            assert file.read_bytes().count(b"\n") == step            # flushed at once: readable mid-run
        assert writes == []                                          # no rewrite of the whole file per record
    assert len(file.read_text().splitlines()) == 59


def test_another_runs_checkpoint_is_refused_and_the_folder_kept(tmp_path):
    toy_loop(tmp_path, steps=4)
    before = (tmp_path / "metrics.jsonl").read_bytes()
    with pytest.raises(ValueError, match=r"belongs to a run with different configuration \(steps: checkpoint 4 vs now 5"):
        toy_loop(tmp_path, steps=5)
    assert (tmp_path / "metrics.jsonl").read_bytes() == before


def test_a_fresh_run_starts_an_empty_log(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "old": true}\n{"step": 2, "dam\n{"step": 3}\n')
    toy_loop(tmp_path, steps=2)                                      # no checkpoint: the old lines are not this run's
    assert [json.loads(l)["step"] for l in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_a_second_run_on_the_folder_is_refused(tmp_path):
    code = ("import sys; sys.path.insert(0, %r)\nfrom bert_lit.training import TrainingRun\n"
            "with TrainingRun(%r, {}, 1): pass" % (str(ROOT), str(tmp_path)))
    with TrainingRun(tmp_path, {}, 1, progress=False):
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert p.returncode != 0 and "FolderInUse" in p.stderr and str(os.getpid()) in p.stderr
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0   # let go at the end
    from bert_lit.data import hold_folder
    with hold_folder(tmp_path):
        with pytest.raises(FolderInUse):
            toy_loop(tmp_path, steps=2)


def test_a_run_without_folder_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, run = toy_loop(None, steps=3)
    assert len(run.records) == 3 and run.checkpoint is None and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- a user's script under torchrun

def test_user_script_under_torchrun_joins_and_shards(tmp_path):
    """A user's own loop (no setup_process) under `torch.distributed.run --nproc-per-node 2`: the loop joins the group,
    each process computes only its rows r::2 (an empty shard: row 0, weighted 0), the weights equal one process's."""
    one = ddp_worker.launch(tmp_path / "one", "user")
    two = ddp_worker.launch(tmp_path / "two", "user", processes=2)
    assert (one["world"], two["world"]) == (1, 2)
    x = one["x"]
    for rank in (0, 1):
        seen = json.loads((tmp_path / "two" / f"rows_{rank}.json").read_text())
        assert seen["world"] == 2
        expected = []
        for step in range(5):                                        # micro-batches of 4 rows and 1 row
            expected.append(x[step, :4][rank::2, 0].tolist())
            expected.append(x[step, 4:][rank::2, 0].tolist() or x[step, 4:][:1, 0].tolist())
        assert seen["seen"] == expected
    assert json.loads((tmp_path / "one" / "rows_0.json").read_text())["seen"][0] == x[0, :4, 0].tolist()
    for k in one["weights"]:                                        # float32 sums in another order: ~1e-7
        torch.testing.assert_close(one["weights"][k], two["weights"][k], atol=1e-6, rtol=0)
    for a, b in zip(one["records"], two["records"]):
        assert abs(a["loss"] - b["loss"]) <= 1e-6 * max(1, abs(a["loss"]))

