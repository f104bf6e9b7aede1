"""Forward throughput of bert_lit's BertModel vs transformers' BertModel (default attention: sdpa), same weights.

    python bench/model.py                      # bert-base and MiniLM shapes, batch 32 x 128, float32
    python bench/model.py --dtype bf16         # the same under bfloat16 autocast (both models)
    python bench/model.py --shapes minilm --repeats 9 --threads 1 --padded
    python bench/model.py --device cuda --dtype bf16 --peak-tflops 989   # on a GPU, with its peak for MFU

Both models run in this process on the same input, alternately (so a busy machine slows both alike), under
torch.inference_mode, after a warm-up; each time is the median of --repeats runs. Printed per shape:
sequences/s of each, the ratio bert_lit / transformers (> 1: bert_lit is faster), and the model's FLOP/s as a
fraction of torch.matmul's FLOP/s measured now at the feed-forward's shape [B*T, D] x [D, I] (the practical
ceiling of this machine), and with --peak-tflops as a fraction of the hardware's peak (model FLOP utilisation).
Model FLOPs are counted analytically: 2 * (matmul parameters) per token, plus
4 * T^2 * D per layer per sequence for Q K^T and P V, plus the pooler.
"""
import argparse
import statistics
import tempfile
import time

import torch
import transformers

from common import add_device_options, device_setup, model_flops, tensor_dtype   # first: it puts this repository on sys.path
from bert_lit.data import minilm_checkpoint
from bert_lit.encoder import BertModel
from bert_lit.training import autocast

SHAPES = {
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "minilm": None,  # the real all-MiniLM-L6-v2 checkpoint
}


def models(shape, folder):
    "(bert_lit model, transformers model) holding the same weights."
    if SHAPES[shape] is None:
        path = minilm_checkpoint()
    else:
        torch.manual_seed(0)
        transformers.BertModel(transformers.BertConfig(**SHAPES[shape])).save_pretrained(folder)
        path = folder
    theirs = transformers.BertModel.from_pretrained(path).eval()  # default attn_implementation: sdpa
    return BertModel.from_pretrained(path).eval(), theirs


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--padded", action="store_true", help="random lengths with padding instead of full sequences")
    add_device_options(p)
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's peak at --dtype, for MFU")
    args = p.parse_args(argv)
    dev, sync, where = device_setup(args)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    B, T = args.batch, args.seq
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {where}, "
          f"batch {B} x {T}, {args.dtype}, {'padded' if args.padded else 'full'} sequences, median of {args.repeats}")
    for shape in args.shapes:
        with tempfile.TemporaryDirectory() as folder:
            ours, theirs = models(shape, folder)
            ours, theirs = ours.to(dev), theirs.to(dev)
        c = ours.config
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(1000, c.vocab_size, (B, T), generator=g)
        mask = torch.ones(B, T, dtype=torch.long)
        if args.padded:
            lengths = torch.randint(T // 4, T + 1, (B,), generator=g)
            mask = (torch.arange(T) < lengths[:, None]).long()
        enc = {k: v.to(dev) for k, v in dict(input_ids=ids * mask, attention_mask=mask,
                                               token_type_ids=torch.zeros_like(ids)).items()}
        run_ours = lambda: (ours(**enc), sync())          # noqa: E731  (a GPU runs asynchronously: wait for it)
        run_theirs = lambda: (theirs(**enc), sync())      # noqa: E731
        with torch.inference_mode(), autocast(dev, args.dtype):
            a = ours(**enc).last_hidden_state.float()
            b = theirs(**enc).last_hidden_state.float()
            diff = (a - b)[mask.to(dev).bool()].abs().max().item()
            for _ in range(2):
                run_ours(); run_theirs()                  # warm-up (kernel choice, caches)
            t_ours, t_theirs = [], []
            for _ in range(args.repeats):  # alternate, so that load from elsewhere hits both alike
                t_ours += timed(run_ours, 1)
                t_theirs += timed(run_theirs, 1)
            mm_dtype = tensor_dtype(args.dtype)
            x = torch.randn(B * T, c.hidden_size, device=dev, dtype=mm_dtype)
            w = torch.randn(c.hidden_size, c.intermediate_size, device=dev, dtype=mm_dtype)
            torch.matmul(x, w); sync()
            t_mm = statistics.median(timed(lambda: (torch.matmul(x, w), sync()), max(args.repeats, 5)))
        mo, mt = statistics.median(t_ours), statistics.median(t_theirs)
        flops, mm_flops = model_flops(c, B, T), 2 * B * T * c.hidden_size * c.intermediate_size / t_mm
        print(f"\n{shape}: {c.num_hidden_layers} layers, D={c.hidden_size}, H={c.num_attention_heads}, "
              f"I={c.intermediate_size}; {flops / 1e9:.0f} GFLOP per batch; max |diff| at real tokens {diff:.1e}")
        print(f"  bert_lit      {B / mo:8.1f} seq/s  ({mo * 1e3:7.0f} ms/batch; runs "
              f"{', '.join(f'{t * 1e3:.0f}' for t in t_ours)} ms)")
        print(f"  transformers  {B / mt:8.1f} seq/s  ({mt * 1e3:7.0f} ms/batch; runs "
              f"{', '.join(f'{t * 1e3:.0f}' for t in t_theirs)} ms)")
        paired = statistics.median(b / a for a, b in zip(t_ours, t_theirs))  # each pair ran back to back
        print(f"  ratio bert_lit / transformers: {mt / mo:.3f} (ratio of medians), {paired:.3f} (median of paired runs)")
        print(f"  torch.matmul [{B * T}, {c.hidden_size}] x [{c.hidden_size}, {c.intermediate_size}]: "
              f"{mm_flops / 1e9:.1f} GFLOP/s")
        print(f"  model FLOP/s / matmul FLOP/s: bert_lit {flops / mo / mm_flops:.2f}, "
              f"transformers {flops / mt / mm_flops:.2f}")
        print(f"  tokens/s: bert_lit {B * T / mo:,.0f}, transformers {B * T / mt:,.0f}")
        if args.peak_tflops:
            print(f"  model FLOP utilisation (of {args.peak_tflops:g} TFLOP/s peak): bert_lit "
                  f"{flops / mo / 1e12 / args.peak_tflops:.3f}, transformers {flops / mt / 1e12 / args.peak_tflops:.3f}")


if __name__ == "__main__":
    main()
