"""Small training runs for tests/test_distributed.py and tests/test_training.py, the same in one process and under torchrun.

    python tests/ddp_worker.py pretrain|finetune|user OUT [--dropout] [--die-at-step K] [--no-setup]
    python -m torch.distributed.run --nproc-per-node 2 tests/ddp_worker.py pretrain OUT ...

Process 0 writes OUT/result.pt: the final weights and the metric records. `user` is a user's own script: a linear
regression trained with chapter 7's loop (TrainingRun + weighted_step), nothing of BERT, no setup_process; each
process writes OUT/rows_RANK.json, the rows its loss function saw. --no-setup: pretrain without setup_process (the
loop must join the process group itself).
"""
import argparse
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import bert_lit.pretraining as pt  # noqa: E402
import bert_lit.training as training  # noqa: E402
from bert_lit.encoder import BertConfig  # noqa: E402


def launch(out, *args, processes=1, expect_ok=True):
    "Run this worker (under torchrun when processes > 1); returns what process 0 saved."
    launcher = [sys.executable] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes), "--standalone"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    p = subprocess.run([*launcher, __file__, *args[:1], str(out), *args[1:]], capture_output=True, text=True,
                       env=env, timeout=600)
    if not expect_ok:
        assert p.returncode != 0
        return None
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return torch.load(Path(out) / "result.pt", weights_only=True)


def config(dropout):
    p = 0.1 if dropout else 0.0
    return BertConfig(vocab_size=211, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                      max_position_embeddings=64, hidden_dropout_prob=p, attention_probs_dropout_prob=p)


def documents(n_docs=10, n_sents=15, seed=0):
    rng = random.Random(seed)
    return [[[10 + (100 * s + p + 7 * d) % 200 for p in range(rng.randint(2, 9))] for s in range(n_sents)]
            for d in range(n_docs)]


def pretrain_run(out, dropout, die_at):
    docs = documents()
    vocab = pt.VocabInfo(211, 2, 3, 4, 0, frozenset())
    data = pt.PretrainingDataConfig(max_seq_length=32, max_predictions_per_seq=5, dupe_factor=2)
    run = pt.PretrainingConfig(batch_size=8, grad_accum_steps=2, learning_rate=3e-3, warmup_steps=2, max_steps=6,
                               log_every=1, eval_every=3, eval_batches=2, save_every=3)
    torch.manual_seed(0)
    model = pt.BertForPreTraining(config(dropout))
    if die_at:
        real_step, calls = pt.train_step, {"n": 0}

        def dying_step(*args, **kwargs):                 # process 1 "dies" in this step (process 0 in one process)
            calls["n"] += 1
            if calls["n"] == die_at and training.rank_and_world()[0] == training.rank_and_world()[1] - 1:
                raise SystemExit(3)
            return real_step(*args, **kwargs)
        pt.train_step = dying_step
    records = pt.pretrain(out, model, docs[:8], docs[8:], vocab, data, run, progress=False)
    return model, records


def finetune_run(out, dropout):
    "A token classifier and a sentence classifier on 13 examples in batches of 4 (the last batch has one row)."
    from bert_lit.finetuning import BertForSequenceClassification, BertForTokenClassification, FinetuneConfig, fit
    g = torch.Generator().manual_seed(0)
    examples = []
    for i in range(13):
        n = 3 + i % 7
        ids = [2] + torch.randint(5, 211, (n,), generator=g).tolist() + [3]
        tags = [-100] + [int(t) % 3 if k % 3 else -100 for k, t in enumerate(ids[1:-1])] + [-100]
        examples.append({"input_ids": ids, "token_type_ids": [0] * len(ids), "labels": tags, "word_ids": list(range(len(ids)))})
    sentences = [{"input_ids": e["input_ids"], "token_type_ids": e["token_type_ids"], "labels": sum(e["input_ids"]) % 2}
                 for e in examples]
    settings = FinetuneConfig(epochs=2, batch_size=4, learning_rate=1e-3, log_every=1, save_every=3)
    out_models, records = {}, {}
    for name, head, labels, train in [("tokens", BertForTokenClassification, ["a", "b", "c"], examples),
                                      ("sentences", BertForSequenceClassification, ["no", "yes"], sentences)]:
        torch.manual_seed(0)
        model = head(config(dropout), labels=labels)
        records[name] = fit(model, train, settings, out_dir=Path(out) / name, progress=False)
        out_models[name] = model
    return out_models, records


def user_run(out):
    "A user's script: a linear regression, 5 steps of 2 micro-batches (4 rows, then 1 row), chapter 7's loop only."
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer, scheduler = training.build_optimizer(model, 1e-1, 0.0, 0, 5)
    x = torch.randn(5, 5, 4, generator=torch.Generator().manual_seed(1))
    y = x.sum(-1, keepdim=True)
    seen, records = [], []

    def losses(m, b):
        seen.append(b["x"][:, 0].tolist())                 # which rows this process computed
        return {"loss": F.mse_loss(m(b["x"]), b["y"])}
    with training.TrainingRun(None, {}, 5, progress=False) as run:
        trained = training.data_parallel(model)
        for step in range(5):
            micro = [{"x": x[step, :4], "y": y[step, :4]}, {"x": x[step, 4:], "y": y[step, 4:]}]
            records.append(training.weighted_step(trained, optimizer, scheduler, micro, losses,
                                                  lambda b: {"loss": len(b["x"])}))
    (Path(out) / f"rows_{run.rank}.json").write_text(json.dumps({"world": run.world, "seen": seen}))
    return model, records, x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["pretrain", "finetune", "user"])
    ap.add_argument("out")
    ap.add_argument("--dropout", action="store_true")
    ap.add_argument("--die-at-step", type=int, default=0)
    ap.add_argument("--no-setup", action="store_true", help="do not call setup_process: the loop joins by itself")
    a = ap.parse_args()
    torch.set_num_threads(1)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    if a.mode != "user" and not a.no_setup:
        training.setup_process("cpu")
    if a.mode == "pretrain":
        model, records = pretrain_run(a.out, a.dropout, a.die_at_step)
        state = {"weights": model.state_dict(), "records": records}
    elif a.mode == "finetune":
        models, records = finetune_run(a.out, a.dropout)
        state = {"weights": {k: m.state_dict() for k, m in models.items()}, "records": records}
    else:
        model, records, x = user_run(a.out)
        state = {"weights": model.state_dict(), "records": records, "x": x}
    rank, world = training.rank_and_world()
    if rank == 0:
        torch.save({**state, "world": world}, Path(a.out) / "result.pt")
    training.finish_process()


if __name__ == "__main__":
    main()
