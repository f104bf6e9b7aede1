"""torch.compile on bert_lit's BertModel: what compiling costs and what it buys, next to eager and transformers.

    python bench/compile.py                    # the real MiniLM, batch 32 x 128, float32, CPU
    python bench/compile.py --device cuda --dtype bf16

Compiles once (the first call traces and generates kernels: the cost printed), then times eager, compiled and
transformers' BertModel (sdpa) alternately on the same fixed-shape batch; each time the median of --repeats.
Printed: compile seconds, the largest difference compiled vs eager, sequences/s, and the ratios
compiled / eager and compiled / transformers (> 1: faster). On the CPU the compiler generates C++ (it needs a
C++ compiler on the machine).
"""
import argparse
import statistics
import time

import torch
import transformers

from common import add_device_options, device_setup   # first: it puts this repository on sys.path
from bert_lit.data import minilm_checkpoint
from bert_lit.encoder import BertModel
from bert_lit.training import autocast


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    add_device_options(ap)
    a = ap.parse_args()
    dev, sync, where = device_setup(a)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    path = minilm_checkpoint()
    eager = BertModel.from_pretrained(path).eval().to(dev)
    theirs = transformers.BertModel.from_pretrained(path).eval().to(dev)
    compiled = torch.compile(eager)
    B, T = a.batch, a.seq
    g = torch.Generator().manual_seed(0)
    enc = {"input_ids": torch.randint(1000, 30000, (B, T), generator=g).to(dev),
           "attention_mask": torch.ones(B, T, dtype=torch.long, device=dev),
           "token_type_ids": torch.zeros(B, T, dtype=torch.long, device=dev)}
    print(f"torch {torch.__version__}, {where}, {a.dtype}, MiniLM, batch {B} x {T}")
    with torch.inference_mode(), autocast(dev, a.dtype):
        t = time.perf_counter()
        got = compiled(**enc).last_hidden_state
        sync()
        compile_s = time.perf_counter() - t
        diff = (got.float() - eager(**enc).last_hidden_state.float()).abs().max().item()
        paths = {"eager": lambda: eager(**enc), "compiled": lambda: compiled(**enc), "transformers": lambda: theirs(**enc)}
        for fn in paths.values():
            fn(); sync()
        times = {k: [] for k in paths}
        for _ in range(a.repeats):
            for k, fn in paths.items():
                t = time.perf_counter(); fn(); sync(); times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"compile (first call): {compile_s:.1f} s; max |compiled - eager| {diff:.1e}")
    for k in paths:
        print(f"{k:13} {B / med[k]:8.1f} seq/s")
    print(f"ratio compiled / eager: {med['eager'] / med['compiled']:.2f}; "
          f"compiled / transformers: {med['transformers'] / med['compiled']:.2f}; "
          f"eager / transformers: {med['transformers'] / med['eager']:.2f}; calls to repay the compile: "
          + (f"{compile_s / (med['eager'] - med['compiled']):.0f}" if med["compiled"] < med["eager"] else "never"))


if __name__ == "__main__":
    main()
