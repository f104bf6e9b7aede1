"""Real variable-length sentence batches: bert_lit's default forward, which skips the padding (chapter 11), vs its
padded path (skip_padding=False), transformers' BertModel (default attention: sdpa) and, on a CPU, ONNX Runtime on
the export of the same weights (the real MiniLM checkpoint); with --train, a fine-tuning step instead.

    python bench/unpad.py                     # 16 random batches of 32 VADER sentences, 2 threads
    python bench/unpad.py --train             # a fine-tuning step (sequence classification, AdamW) per batch
    python bench/unpad.py --batches 32 --threads 1 --repeats 5
    python bench/unpad.py --device cuda --dtype bf16 --batches 64

Batches are random draws of real sentences (not sorted by length), tokenized with the MiniLM vocabulary and padded
to their longest member, as a user's batches would be. Both models run in this process, alternately, under
torch.inference_mode after a warm-up; each time is the median of --repeats passes over all batches. Printed: the
padding fraction, sentences/s of each path, the ratios to transformers (> 1: bert_lit is faster), and the model's
FLOP/s on the real tokens (the arithmetic a padding-free model must do) as a fraction of the FLOP/s of one large
matrix product timed in the same run.
"""
import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch
import transformers

from common import add_device_options, device_setup, model_flops   # first: it puts this repository on sys.path
from bert_lit.data import minilm_checkpoint, vader_sentences
from bert_lit.encoder import BertModel
from bert_lit.finetuning import BertForSequenceClassification
from bert_lit.speed import export_onnx
from bert_lit.tokenizer import BertTokenizer


def matmul_flops(dev, dtype, sync, repeats=5):
    "FLOP/s of one (4096, D) x (D, 4D) matrix product, D = 384: the practical ceiling of the model's products."
    x, w = torch.randn(4096, 384, device=dev, dtype=dtype), torch.randn(384, 1536, device=dev, dtype=dtype)
    x @ w
    times = []
    for _ in range(repeats):
        sync(); t = time.perf_counter(); x @ w; sync(); times.append(time.perf_counter() - t)
    return 2 * 4096 * 384 * 1536 / min(times)


def onnx_path(ours, threads, folder):
    "ONNX Runtime on the float32 export: a function of a batch, or None where onnxruntime is missing."
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")   # idle threads must not take the CPU
    session = ort.InferenceSession(str(export_onnx(ours, Path(folder) / "m.onnx", 128)), opts,
                                   providers=["CPUExecutionProvider"])
    return lambda b: session.run(None, {k: v.cpu().numpy() for k, v in b.items()})


def train_paths(path, dev):
    "A fine-tuning step per batch (forward, backward, AdamW) of each model: transformers, padded, default."
    def step_of(model, **kw):
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
        def step(b):
            loss = model(**b, labels=b["input_ids"][:, 1] % 2, **kw).loss
            opt.zero_grad(); loss.backward(); opt.step()
            return loss
        return step
    theirs = transformers.BertForSequenceClassification.from_pretrained(path, num_labels=2).to(dev)
    ours = BertForSequenceClassification.from_pretrained(path, num_labels=2).to(dev)
    ours_padded = BertForSequenceClassification.from_pretrained(path, num_labels=2).to(dev)
    ours_padded.config.skip_padding = False
    return {"transformers": step_of(theirs), "bert_lit padded": step_of(ours_padded), "bert_lit default": step_of(ours)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--train", action="store_true", help="time a fine-tuning step instead of inference")
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
    folder = tempfile.TemporaryDirectory()
    if a.train:
        paths = train_paths(path, dev)
    else:
        paths = {"transformers": lambda b: theirs(**b).last_hidden_state,
                 "bert_lit padded": lambda b: ours(**b, skip_padding=False).last_hidden_state,
                 "bert_lit default": lambda b: ours(**b).last_hidden_state}
        onnx = onnx_path(ours, torch.get_num_threads(), folder.name) if dev.type == "cpu" and a.dtype == "fp32" else None
        if onnx:
            paths["ONNX Runtime fp32"] = onnx
    times = {k: [] for k in paths}
    from bert_lit.training import autocast
    tol = 1e-4 if a.dtype == "fp32" else 0.5                     # bf16: the outputs agree to its precision
    grad = torch.enable_grad() if a.train else torch.inference_mode()
    with grad, autocast(dev, a.dtype):
        for b in batches[:2]:                                    # warm-up, and (inference) the outputs agree
            ref = theirs(**b).last_hidden_state
            keep = b["attention_mask"].bool()
            for k, fn in paths.items():
                out = fn(b)
                if not a.train:
                    got = torch.as_tensor(out[0]) if isinstance(out, list) else out
                    assert (got[keep].float() - ref[keep].float()).abs().max() < tol, k
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
    what = "fine-tuning step" if a.train else "inference"
    print(f"ratio default / transformers ({what}): {med['transformers'] / med['bert_lit default']:.2f}")
    print(f"ratio default / bert_lit padded ({what}): {med['bert_lit padded'] / med['bert_lit default']:.2f}")
    if "ONNX Runtime fp32" in med:
        print(f"ratio default / ONNX Runtime fp32 (inference): {med['ONNX Runtime fp32'] / med['bert_lit default']:.2f}")
    if not a.train:
        real_flops = sum(model_flops(ours.config, 1, int(t)) for b in batches for t in b["attention_mask"].sum(1))
        ceiling = matmul_flops(dev, torch.float32 if a.dtype == "fp32" else torch.bfloat16, sync)
        print("model FLOP/s on the real tokens / matmul FLOP/s: " +
              ", ".join(f"{k} {real_flops / med[k] / ceiling:.2f}" for k in paths))

if __name__ == "__main__":
    main()
