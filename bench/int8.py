"""int8 on a CPU: what dynamic quantization of the encoder's Linear layers (chapter 11, quantize_int8) buys in speed
and costs in accuracy, next to transformers in float32 and ONNX Runtime (float32 and its own dynamic int8) on the
export of the same weights (the real MiniLM checkpoint).

    python bench/int8.py                      # 2 threads; fine-tunes MiniLM briefly on sentiment and POS first
    python bench/int8.py --skip-accuracy --threads 1

Accuracy: MiniLM fine-tuned for one epoch on 1,000 VADER sentences (sentiment) and 1,000 Brown sentences (coarse
part-of-speech tags), then scored on each test split in float32, int8 per channel and int8 per tensor; sentence
embeddings (mean-pooled) of 512 VADER sentences compared by cosine with float32, and the share of each sentence's
nearest neighbour (among the 512) that stays the same. Speed: fixed shapes 1 x 128, 8 x 64, 32 x 128 and 16 real
sentence batches of 32 (padded to their longest), each the median of --repeats passes, all contenders alternately
in this one process; ratios are transformers float32 time / contender time (> 1: faster than transformers).
"""
import argparse
import logging
import random
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers

from common import add_device_options, device_setup   # first: it puts this repository on sys.path
from bert_lit.data import minilm_checkpoint, vader_sentences
from bert_lit.encoder import BertModel
from bert_lit.finetuning import FinetuneConfig, fit, sentiment_task, tagging_task, task_model
from bert_lit.pretrained import mean_pool
from bert_lit.speed import export_onnx, quantize_int8
from bert_lit.tokenizer import BertTokenizer


def accuracy_rows(path, tok):
    "Test scores of fine-tuned MiniLM in float32 and int8 (per channel, per tensor), sentiment and POS."
    rows = []
    for name, build in (("sentiment accuracy", sentiment_task), ("POS word accuracy", tagging_task)):
        job = build(tok, 1000, 0, 128)
        model = task_model(job, path, seed=0)
        fit(model, job.train, FinetuneConfig(epochs=1, learning_rate=1e-4), progress=False)
        model.eval()
        scores = [job.evaluate(m, final=True)["accuracy"] for m in
                  (model, quantize_int8(model), quantize_int8(model, per_channel=False))]
        rows.append((name, *scores))
    return rows


def embedding_rows(ours, tok):
    "Cosine of int8 to float32 sentence embeddings, and the share of nearest neighbours kept."
    texts = [r.text for r in random.Random(1).sample(vader_sentences(), 512)]
    def embed(m):
        with torch.inference_mode():
            out = []
            for i in range(0, len(texts), 64):
                b = tok(texts[i:i + 64], padding=True, truncation=True, max_length=128, return_tensors="pt")
                out.append(F.normalize(mean_pool(m(**b).last_hidden_state, b["attention_mask"]), dim=-1))
            return torch.cat(out)
    ref = embed(ours)
    nearest = lambda e: (e @ e.T).fill_diagonal_(-2).argmax(1)
    rows = []
    for label, m in (("per channel", quantize_int8(ours)), ("per tensor", quantize_int8(ours, per_channel=False))):
        e = embed(m)
        cos = (e * ref).sum(1)
        rows.append((label, cos.mean().item(), cos.min().item(), (nearest(e) == nearest(ref)).float().mean().item()))
    return rows


def onnx_sessions(ours, threads, folder):
    "ONNX Runtime sessions on the float32 export and on its dynamic int8 (per channel) quantization."
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    fp32 = export_onnx(ours, Path(folder) / "minilm.onnx", max_length=128)
    int8 = Path(folder) / "minilm-int8.onnx"
    root, level = logging.getLogger(), logging.getLogger().level
    root.setLevel(logging.ERROR)                  # its advice to pre-process the graph first: not needed for BERT
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(fp32), str(int8), per_channel=True, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")   # idle threads must not take the CPU
    return {k: ort.InferenceSession(str(f), opts, providers=["CPUExecutionProvider"]) for k, f in
            (("ONNX Runtime fp32", fp32), ("ONNX Runtime int8", int8))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-accuracy", action="store_true")
    add_device_options(ap, threads=2)
    a = ap.parse_args()
    _, _, where = device_setup(a)
    transformers.logging.disable_progress_bar()
    path = minilm_checkpoint()
    tok = BertTokenizer(path)
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    vnni = "avx512_vnni" in flags or "avx_vnni" in flags or "amx_int8" in flags
    print(f"MiniLM, {where}, torch {torch.__version__} ({torch.backends.quantized.engine}), "
          f"transformers {transformers.__version__}; CPU int8 dot-product units (VNNI/AMX): {'yes' if vnni else 'no'}")
    ours = BertModel.from_pretrained(path).eval()
    theirs = transformers.BertModel.from_pretrained(path).eval()
    if not a.skip_accuracy:
        torch.manual_seed(0)
        print(f"{'accuracy (test split)':24} {'fp32':>7} {'int8/ch':>8} {'int8/t':>7}")
        for name, *s in accuracy_rows(path, tok):
            print(f"{name:24} {s[0]:7.3f} {s[1]:8.3f} {s[2]:7.3f}   int8 per channel - fp32: {s[1] - s[0]:+.3f}")
        for label, mean, low, kept in embedding_rows(ours, tok):
            print(f"embeddings int8 {label}: cosine to fp32 mean {mean:.4f}, min {low:.4f}; nearest neighbour kept {kept:.3f}")
    rows = random.Random(0).sample(vader_sentences(), 16 * 32)
    real = [tok([r.text for r in rows[i:i + 32]], padding=True, truncation=True, max_length=128, return_tensors="pt")
            for i in range(0, len(rows), 32)]
    g = torch.Generator().manual_seed(0)
    fixed = lambda B, T: [{"input_ids": torch.randint(1000, 30000, (B, T), generator=g),
                           "attention_mask": torch.ones(B, T, dtype=torch.long),
                           "token_type_ids": torch.zeros(B, T, dtype=torch.long)}]
    workloads = {"1 x 128": fixed(1, 128) * 8, "8 x 64": fixed(8, 64) * 4, "32 x 128": fixed(32, 128),
                 "real batches (16 x 32)": real}
    ours8 = quantize_int8(ours)
    with tempfile.TemporaryDirectory() as folder:
        sessions = onnx_sessions(ours, torch.get_num_threads(), folder)
        run_onnx = lambda s: lambda b: s.run(None, {k: v.numpy() for k, v in b.items()})
        contenders = {"transformers fp32": lambda b: theirs(**b), "bert_lit fp32": lambda b: ours(**b),
                      "bert_lit int8": lambda b: ours8(**b),
                      **{k: run_onnx(s) for k, s in sessions.items()}}
        print(f"{'workload':24}" + "".join(f"{k:>20}" for k in contenders) + "   (x transformers fp32)")
        for name, batches in workloads.items():
            times = {k: [] for k in contenders}
            with torch.inference_mode():
                for fn in contenders.values():
                    fn(batches[0])                                     # warm-up
                for _ in range(a.repeats):
                    for k, fn in contenders.items():                   # alternately: a busy machine slows all alike
                        t = time.perf_counter()
                        for b in batches:
                            fn(b)
                        times[k].append(time.perf_counter() - t)
            med = {k: statistics.median(v) for k, v in times.items()}
            base = med["transformers fp32"]
            print(f"{name:24}" + "".join(f"{base / med[k]:20.2f}" for k in contenders))


if __name__ == "__main__":
    main()
