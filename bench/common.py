"""What the benchmark scripts share: the device and precision options, waiting for a GPU, the analytic FLOP count."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bert_lit.training import PRECISIONS  # noqa: E402


def add_device_options(ap, threads=None, precision_flag="--dtype"):
    "Add --threads, --device and the autocast precision (--dtype or --precision) to the argument parser `ap`."
    ap.add_argument("--threads", type=int, default=threads,
                    help=f"torch threads (default: {threads or 'torch' + chr(39) + 's choice'})")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument(precision_flag, choices=list(PRECISIONS), default="fp32", help="autocast precision of every path timed")


def device_setup(args):
    "Apply --threads; returns (device, sync: wait for the device's queued work, a description of the device)."
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        return dev, torch.cuda.synchronize, torch.cuda.get_device_name(dev)
    return dev, (lambda: None), f"CPU, {torch.get_num_threads()} threads"


def tensor_dtype(precision):
    "The dtype of tensors computed in `precision` ('fp32', 'bf16', 'fp16')."
    return PRECISIONS[precision] or torch.float32


def model_flops(c, B, T):
    "Multiply-adds x 2 of one BertModel forward pass: the linear layers, the two attention products, the pooler."
    D, I, L = c.hidden_size, c.intermediate_size, c.num_hidden_layers
    linear = 2 * B * T * L * (4 * D * D + 2 * D * I)  # Q, K, V, output projection; feed-forward in and out
    attention = B * L * 4 * T * T * D                  # Q K^T and P V: 2 T^2 D each
    return linear + attention + 2 * B * D * D          # pooler on [CLS]
