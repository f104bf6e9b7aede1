"""Inference on real variable-length sentence batches: bert_lit's unpadded forward (chapter 11) vs transformers'
BertModel (default attention: sdpa) on the same padded batches, same weights (the real MiniLM checkpoint).

    python bench/unpad.py                     # 16 random batches of 32 VADER sentences, 2 threads
    python bench/unpad.py --batches 32 --threads 1 --repeats 5
    python bench/unpad.py --device cuda --dtype bf16 --batches 64

Batches are random draws of real sentences (not sorted by length), tokenized with the MiniLM vocabulary and padded
to their longest member, as a user's batches would be. Both models run in this process, alternately, under
torch.inference_mode after a warm-up; each time is the median of --repeats passes over all batches. Printed: the
padding fraction, sentences/s of each path, and the ratios bert_lit unpadded / transformers and bert_lit padded /
transformers (> 1: bert_lit is faster).
"""
import argparse
import random
import statistics
import time

import torch
import transformers

from common import add_device_options, device_setup   # first: it puts this repository on sys.path
from bert_lit.data import minilm_checkpoint, vader_sentences
from bert_lit.encoder import BertModel
from bert_lit.speed import unpadded_forward
from bert_lit.tokenizer import BertTokenizer


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    add_device_options(ap, threads=2)
    a = ap.parse_args()
    dev, sync, where = device_setup(a)
    transformers.logging.disable_progress_bar()
    path = minilm_checkpoint()
    tok = BertTokenizer(path)
    ours = BertModel.from_pretrained(path).eval().to(dev)
    theirs = transformers.BertModel.from_pretrained(path).eval().to(dev)
    rows = random.Random(0).sample(vader_sentences(), a.batches * a.batch_size)
    batches = [tok([r.text for r in rows[i:i + a.batch_size]], padding=True, truncation=True, max_length=128,
                   return_tensors="pt") for i in range(0, len(rows), a.batch_size)]
    batches = [{k: v.to(dev) for k, v in b.items()} for b in batches]
    real = sum(int(b["attention_mask"].sum()) for b in batches)
    print(f"{a.batches} batches of {a.batch_size} real sentences, padding {1 - real / sum(b['attention_mask'].numel() for b in batches):.3f}; "
          f"{where}, {a.dtype}, torch {torch.__version__}, transformers {transformers.__version__}")
    paths = {"transformers": lambda b: theirs(**b).last_hidden_state,
             "bert_lit padded": lambda b: ours(**b).last_hidden_state,
             "bert_lit unpadded": lambda b: unpadded_forward(ours, b["input_ids"], b["attention_mask"], b["token_type_ids"])}
    times = {k: [] for k in paths}
    from bert_lit.training import autocast
    tol = 1e-4 if a.dtype == "fp32" else 0.5                     # bf16: the outputs agree to its precision
    with torch.inference_mode(), autocast(dev, a.dtype):
        for b in batches[:2]:                                    # warm-up, and the outputs agree
            ref = theirs(**b).last_hidden_state
            keep = b["attention_mask"].bool()
            for k, fn in paths.items():
                assert (fn(b)[keep].float() - ref[keep].float()).abs().max() < tol, k
        for _ in range(a.repeats):
            for k, fn in paths.items():                          # alternately: a busy machine slows all alike
                t = time.perf_counter()
                for b in batches:
                    fn(b)
                sync()
                times[k].append(time.perf_counter() - t)
    n = a.batches * a.batch_size
    med = {k: statistics.median(v) for k, v in times.items()}
    for k in paths:
        print(f"{k:18} {n / med[k]:8.1f} sentences/s")
    print(f"ratio unpadded / transformers: {med['transformers'] / med['bert_lit unpadded']:.2f}")
    print(f"ratio padded / transformers:   {med['transformers'] / med['bert_lit padded']:.2f}")


if __name__ == "__main__":
    main()
