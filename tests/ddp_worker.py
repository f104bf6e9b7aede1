"""A small training run for tests/test_distributed.py, the same in one process and under torchrun.

    python tests/ddp_worker.py pretrain|finetune OUT [--dropout] [--die-at-step K]
    python -m torch.distributed.run --nproc-per-node 2 tests/ddp_worker.py pretrain OUT ...

Process 0 writes OUT/result.pt: the final weights and the metric records.
"""
import argparse
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bert_lit.pretraining as pt  # noqa: E402
from bert_lit.encoder import BertConfig  # noqa: E402
from bert_lit.finetuning import (BertForSequenceClassification, BertForTokenClassification,  # noqa: E402
                                 FinetuneConfig, fit)


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
            if calls["n"] == die_at and pt.rank_and_world()[0] == pt.rank_and_world()[1] - 1:
                raise SystemExit(3)
            return real_step(*args, **kwargs)
        pt.train_step = dying_step
    records = pt.pretrain(out, model, docs[:8], docs[8:], vocab, data, run, progress=False)
    return model, records


def finetune_run(out, dropout):
    "A token classifier and a sentence classifier on 13 examples in batches of 4 (the last batch has one row)."
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["pretrain", "finetune"])
    ap.add_argument("out")
    ap.add_argument("--dropout", action="store_true")
    ap.add_argument("--die-at-step", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    pt.setup_process("cpu")
    if a.mode == "pretrain":
        model, records = pretrain_run(a.out, a.dropout, a.die_at_step)
        state = {"weights": model.state_dict(), "records": records}
    else:
        models, records = finetune_run(a.out, a.dropout)
        state = {"weights": {k: m.state_dict() for k, m in models.items()}, "records": records}
    rank, world = pt.rank_and_world()
    if rank == 0:
        torch.save({**state, "world": world}, Path(a.out) / "result.pt")
    pt.finish_process()


if __name__ == "__main__":
    main()
