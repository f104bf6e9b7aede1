"""Training-step throughput of bert_lit's BertForPreTraining vs transformers' at the same config, weights and batch.

    python bench/pretrain.py [--batch-size 32] [--seq-len 128] [--steps 5] [--threads N]
    python bench/pretrain.py --device cuda --precision bf16 --hidden-size 768 --layers 12 --heads 12 --vocab-size 30522

One training step = forward with labels, backward, clip, AdamW step. Both models run in this one process,
interleaved, on the same batch (15 % of the positions predicted, as in pretraining). Prints tokens/s of each and
the ratio bert_lit / transformers. bert_lit applies the MLM decoder only at the predicted positions; transformers
computes logits over the whole vocabulary at every position.
"""
import argparse
import time

import torch
import transformers

from common import add_device_options, device_setup, model_flops   # first: it puts this repository on sys.path
from bert_lit.encoder import BertConfig
from bert_lit.pretraining import BertForPreTraining
from bert_lit.training import autocast, build_optimizer, optimizer_step


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per model (after 2 warm-up steps)")
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--hidden-size", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    add_device_options(ap, precision_flag="--precision")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for model FLOP utilisation")
    a = ap.parse_args()
    dev, sync, where = device_setup(a)
    cfg = BertConfig(vocab_size=a.vocab_size, hidden_size=a.hidden_size, num_hidden_layers=a.layers,
                     num_attention_heads=a.heads, intermediate_size=4 * a.hidden_size,
                     max_position_embeddings=max(512, a.seq_len))
    torch.manual_seed(0)
    ours = BertForPreTraining(cfg)
    theirs = transformers.BertForPreTraining(transformers.BertConfig(
        **{k: v for k, v in cfg.to_dict().items() if k not in ("extra", "model_type")}))
    theirs.load_state_dict(ours.state_dict(), strict=False)
    ours, theirs = ours.to(dev), theirs.to(dev)
    B, T = a.batch_size, a.seq_len
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, cfg.vocab_size, (B, T), generator=g)
    chosen = torch.rand(B, T, generator=g).argsort(-1)[:, :min(20, round(0.15 * T))]   # 15 % (at most 20) per sequence
    labels = torch.full_like(ids, -100).scatter(1, chosen, ids.gather(1, chosen))
    batch = dict(input_ids=ids, token_type_ids=(torch.arange(T) >= T // 2).long().expand(B, T),
                 attention_mask=torch.ones_like(ids), labels=labels,
                 next_sentence_label=torch.randint(0, 2, (B,), generator=g))
    batch = {k: v.to(dev) for k, v in batch.items()}

    def stepper(model):
        opt, sched = build_optimizer(model, 1e-4, 0.01, 0, 10_000)
        scaler = torch.amp.GradScaler(dev.type) if a.precision == "fp16" else None
        def step():
            with autocast(dev, a.precision):
                loss = model(**batch).loss
            (scaler.scale(loss) if scaler else loss).backward()
            optimizer_step(model, opt, sched, 1.0, scaler)        # clip, step, schedule, zero: the same for both
            sync()
        return step

    steps = {"bert_lit": stepper(ours.train()), "transformers": stepper(theirs.train())}
    for s in steps.values():
        for _ in range(2):
            s()                                           # warm-up
    times = {k: [] for k in steps}
    for _ in range(a.steps):
        for k, s in steps.items():                        # interleaved: both see the same machine load
            t = time.perf_counter(); s(); times[k].append(time.perf_counter() - t)
    print(f"config: {a.layers} layers x {a.hidden_size} hidden, {a.heads} heads, vocab {cfg.vocab_size}; "
          f"batch {B} x {T} tokens, {int((labels != -100).sum())} predicted; {a.precision}; "
          f"{where}")
    tps = {}
    for k, ts in times.items():
        best = min(ts)
        tps[k] = B * T / best
        print(f"{k:13} {best * 1e3:8.1f} ms/step (best of {len(ts)})  {tps[k]:9.0f} tokens/s")
    print(f"ratio bert_lit / transformers: {tps['bert_lit'] / tps['transformers']:.2f}")
    # useful work of one step: 3 x the forward (backward = 2 x forward), the MLM decoder at the predicted tokens only
    D, V, P = a.hidden_size, cfg.vocab_size, int((labels != -100).sum())
    forward = model_flops(cfg, B, T) + 2 * P * (D * D + D * V)   # + the MLM transform and decoder at P positions
    print(f"model TFLOP/s (3 x forward per step): " + ", ".join(f"{k} {3 * forward * tps[k] / (B * T) / 1e12:.2f}"
                                                              for k in tps))
    if a.peak_tflops:
        print("model FLOP utilisation: " + ", ".join(f"{k} {3 * forward * tps[k] / (B * T) / 1e12 / a.peak_tflops:.3f}"
                                                     for k in tps))


if __name__ == "__main__":
    main()
