"""Chapter 8.8's ablation: pretraining recipes at equal compute, one change at a time from the chapter's standard recipe.

    python tools/budget_ablation.py --out nbs/runs/budget_ablation --budget 2.4e13 --threads 1 [--rows NAME ...]

Every row trains the chapter's 4 x 256 model (vocabulary: the full run's vocab.txt) for the same number of FLOPs
(chapter 8's pretraining_flops: forward + backward, the decoder at the predicted positions only), then measures it
on chapter 8's benchmark (held-out 128-token windows, 15 % predicted). A row's steps are the budget divided by the
mean FLOPs of its first 20 batches. Each row runs in its own folder (resumable: rerun the same command) and adds one
line to results.jsonl when done; rows already there are skipped. `--summary` prints the table.
"""
import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from bert_lit.config import BertConfig
from bert_lit.data import atomic_write, hold_folder
from bert_lit.pretraining import (BertForPreTraining, PretrainingBatches, PretrainingConfig, PretrainingDataConfig,
                                  VocabInfo, benchmark_batches, corpus_parts, evaluate, pretrain, pretraining_flops,
                                  read_corpus, tokenize_documents, use_pre_layer_norm)
from bert_lit.tokenizer import BertTokenizer

STANDARD_DATA = PretrainingDataConfig()                        # BERT's: pairs + NSP, 15 % masked, 128 tokens
STANDARD_RUN = PretrainingConfig(batch_size=32, learning_rate=1e-3)
MODEL = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
             max_position_embeddings=128)                       # the full run's; --layers/--hidden-size for a proxy

# name: (what changes, data changes, run changes, model changes); warmup is a share of the row's steps
ROWS = {
    "standard": ("the chapter's BERT recipe (reference)", {}, {}, {}),
    "seed 1": ("the reference, another seed", {}, {"seed": 1}, {}),
    "seed 2": ("the reference, another seed", {}, {"seed": 2}, {}),
    "lr 3e-4": ("peak learning rate 3e-4 instead of 1e-3", {}, {"learning_rate": 3e-4}, {}),
    "lr 2e-3": ("peak learning rate 2e-3", {}, {"learning_rate": 2e-3}, {}),
    "one-cycle": ("warm up over half the steps, then decay (a triangle)", {}, {"warmup": 0.5}, {}),
    "no dropout": ("dropout 0 instead of 0.1", {}, {}, {"dropout": 0.0}),
    "mask 25 %": ("predict 25 % of the tokens", {"masked_lm_prob": 0.25, "max_predictions_per_seq": 33}, {}, {}),
    "mask 40 %": ("predict 40 % of the tokens", {"masked_lm_prob": 0.40, "max_predictions_per_seq": 52}, {}, {}),
    "no NSP": ("masked LM alone, on windows of contiguous text", {"next_sentence_prob": 0.0}, {}, {}),
    "short first": ("70 % of the budget at 64 tokens (batch 64), then 128", {"short_first": 0.7}, {}, {}),
    "batch 16": ("16 sequences per step (twice the steps)", {}, {"batch_size": 16}, {}),
    "batch 64": ("64 sequences per step (half the steps)", {}, {"batch_size": 64}, {}),
    "pre-LN": ("LayerNorm before each block, plus a final one", {}, {}, {"pre_ln": True}),
    "budget recipe": ("no NSP, no dropout, 25 % masked (the long run's)",
                      {"next_sentence_prob": 0.0, "masked_lm_prob": 0.25, "max_predictions_per_seq": 33}, {},
                      {"dropout": 0.0}),
}


def steps_for(budget, documents, vocab, data_config, batch_size, model_config):
    "Steps that spend `budget` FLOPs: the budget over the mean FLOPs of the stream's first 20 batches."
    stream = PretrainingBatches(documents, vocab, data_config, batch_size)
    per_step = sum(pretraining_flops(model_config, next(stream)) for _ in range(20)) / 20
    return max(1, round(budget / per_step))


def make_model(vocab, changes, seed):
    torch.manual_seed(seed)
    dropout = changes.get("dropout", 0.1)
    config = BertConfig(vocab_size=vocab.vocab_size, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout, **MODEL)
    model = BertForPreTraining(config)
    return use_pre_layer_norm(model) if changes.get("pre_ln") else model


def phases(budget, data_changes, run_changes):
    "The row's (share of the budget, data config, batch size) phases: one, or two for 'short first'."
    data_changes = dict(data_changes)
    short = data_changes.pop("short_first", 0)
    data = replace(STANDARD_DATA, **data_changes)
    batch = run_changes.get("batch_size", STANDARD_RUN.batch_size)
    if not short:
        return [(1.0, data, batch)]
    return [(short, replace(data, max_seq_length=64, max_predictions_per_seq=10), batch * 2), (1 - short, data, batch)]


def run_row(name, out, budget, train_docs, eval_docs, vocab, yardstick):
    what, data_changes, run_changes, model_changes = ROWS[name]
    folder = out / name.replace(" ", "_").replace("%", "pc")
    run_changes = dict(run_changes)
    warmup = run_changes.pop("warmup", 0.1)
    model = make_model(vocab, model_changes, run_changes.get("seed", 0))
    spent = {"steps": 0, "flops": 0, "tokens": 0, "seconds": 0.0}
    for k, (share, data, batch) in enumerate(phases(budget, data_changes, run_changes)):
        steps = steps_for(budget * share, train_docs, vocab, data, batch, model.config)
        config = replace(STANDARD_RUN, **{**run_changes, "batch_size": batch}, max_steps=steps,
                         warmup_steps=min(steps - 1, max(1, round(warmup * steps))), eval_every=steps, eval_batches=5,
                         save_every=100, log_every=10)
        pretrain(folder / f"phase{k}", model, train_docs, eval_docs, vocab, data, config, progress=False)  # resumes
        logged = [json.loads(l) for l in (folder / f"phase{k}" / "metrics.jsonl").read_text().splitlines()]
        last = [r for r in logged if "flops" in r][-1]
        spent = {"steps": spent["steps"] + steps, "flops": spent["flops"] + last["flops"],
                 "tokens": spent["tokens"] + last["tokens"],
                 "seconds": spent["seconds"] + last["tokens"] / max(last["tokens_per_s"], 1)}
    score = evaluate(model, yardstick)
    return {"row": name, "change": what, **spent, "tokens_per_s": round(spent["tokens"] / spent["seconds"]),
            "benchmark_mlm_accuracy": score["mlm_accuracy"], "benchmark_mlm_loss": score["mlm_loss"],
            "threads": torch.get_num_threads(), "model": {k: MODEL[k] for k in ("num_hidden_layers", "hidden_size")}}


def read_results(file):
    if not file.exists():
        return []
    return [json.loads(l) for l in file.read_text().splitlines() if l.strip()]


def summary(file):
    rows = read_results(file)
    ref = [r["benchmark_mlm_accuracy"] for r in rows if r["row"] in ("standard", "seed 1", "seed 2")]
    if len(ref) > 1:
        mean = sum(ref) / len(ref)
        sd = math.sqrt(sum((x - mean) ** 2 for x in ref) / (len(ref) - 1))
        print(f"reference over {len(ref)} seeds: {mean:.3f} ± {sd:.3f}")
    for r in rows:
        print(f"{r['row']:14} {r['benchmark_mlm_accuracy']:.3f}  loss {r['benchmark_mlm_loss']:.3f}  "
              f"{r['flops']:.3g} FLOPs  {r['steps']:5d} steps  {r['tokens']:>10,} tokens  {r['change']}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("nbs/runs/budget_ablation"))
    p.add_argument("--budget", type=float, default=2.4e13, help="FLOPs per row (default: %(default)s)")
    p.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS), metavar="ROW")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--layers", type=int, default=MODEL["num_hidden_layers"], help="encoder layers (default: %(default)s)")
    p.add_argument("--hidden-size", type=int, default=MODEL["hidden_size"],
                   help="width; heads of 64, feed-forward 4x (default: %(default)s)")
    p.add_argument("--vocab", type=Path, default=Path("nbs/runs/pretrain_full/vocab.txt"))
    p.add_argument("--summary", action="store_true", help="print the table of results.jsonl and stop")
    a = p.parse_args(argv)
    if a.summary:
        return summary(a.out / "results.jsonl")
    torch.set_num_threads(a.threads)
    MODEL.update(num_hidden_layers=a.layers, hidden_size=a.hidden_size, num_attention_heads=max(1, a.hidden_size // 64),
                 intermediate_size=4 * a.hidden_size)
    a.out.mkdir(parents=True, exist_ok=True)
    with hold_folder(a.out, "ablation"):
        tokenizer = BertTokenizer(a.vocab)
        vocab = VocabInfo.from_tokenizer(tokenizer)
        parts = corpus_parts(read_corpus())
        train_docs, eval_docs = (tokenize_documents(parts[k], tokenizer) for k in ("train", "validation"))
        yardstick = benchmark_batches(eval_docs, vocab)
        file = a.out / "results.jsonl"
        for name in a.rows:
            if any(r["row"] == name for r in read_results(file)):
                continue
            t0 = time.time()
            result = run_row(name, a.out, a.budget, train_docs, eval_docs, vocab, yardstick)
            rows = read_results(file) + [{**result, "budget": a.budget}]
            atomic_write(file, "".join(json.dumps(r) + "\n" for r in rows))
            print(f"{name}: benchmark MLM accuracy {result['benchmark_mlm_accuracy']:.3f} "
                  f"({result['steps']} steps, {time.time() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
