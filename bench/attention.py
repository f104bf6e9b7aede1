"""Attention alone: chapter 3's explicit softmax(Q K^T / sqrt(d) + M) V vs torch's fused scaled_dot_product_attention.

    python bench/attention.py                          # MiniLM and bert-base head shapes, batch 32 x 128, CPU
    python bench/attention.py --device cuda --dtype bf16

Both functions get the same q, k, v (and the same padding bias, for the masked rows of the table), run alternately
after a warm-up; each time is the median of --repeats runs. Printed: the largest difference of the outputs, ms per
call of each, and the ratio explicit / fused (> 1: the fused kernel is faster). The fused kernel never materialises
the (T x T) probability matrix; on GPUs it dispatches to FlashAttention or memory-efficient kernels.
"""
import argparse
import statistics
import time

import torch

from common import add_device_options, device_setup, tensor_dtype   # first: it puts this repository on sys.path
from bert_lit.attention import attention_matrix, attention_sdpa, padding_mask_bias

SHAPES = {"minilm": (12, 32), "bert-base": (12, 64)}   # heads, head size


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=20)
    add_device_options(ap)
    a = ap.parse_args()
    dev, sync, where = device_setup(a)
    dtype = tensor_dtype(a.dtype)
    print(f"torch {torch.__version__}, {where}, {a.dtype}, batch {a.batch} x {a.seq}, median of {a.repeats}")
    B, T = a.batch, a.seq
    g = torch.Generator().manual_seed(0)
    mask = (torch.arange(T) < torch.randint(T // 4, T + 1, (B, 1), generator=g)).long()
    print(f"{'shape':10} {'mask':5} {'max |diff|':>10} {'explicit ms':>12} {'fused ms':>9} {'ratio':>6}")
    with torch.inference_mode():
        for name, (H, d) in SHAPES.items():
            q, k, v = (torch.randn(B, H, T, d, generator=g).to(dev, dtype) for _ in range(3))
            for masked in (False, True):
                bias = padding_mask_bias(mask, dtype)[:, None].to(dev) if masked else None
                explicit = lambda: (attention_matrix(q, k, v, bias), sync())   # noqa: E731
                fused = lambda: (attention_sdpa(q, k, v, bias), sync())        # noqa: E731
                keep = (mask.bool()[:, None, :, None].expand(B, H, T, d) if masked else torch.ones(B, H, T, d, dtype=torch.bool)).to(dev)
                diff = (attention_matrix(q, k, v, bias)[0] - attention_sdpa(q, k, v, bias))[keep].abs().max().item()
                times = {"explicit": [], "fused": []}
                for _ in range(2):
                    explicit(); fused()
                for _ in range(a.repeats):
                    for key, fn in (("explicit", explicit), ("fused", fused)):
                        t = time.perf_counter(); fn(); times[key].append(time.perf_counter() - t)
                te, tf = statistics.median(times["explicit"]), statistics.median(times["fused"])
                print(f"{name:10} {'yes' if masked else 'no':5} {diff:10.1e} {te * 1e3:12.2f} {tf * 1e3:9.2f} {te / tf:6.2f}")


if __name__ == "__main__":
    main()
