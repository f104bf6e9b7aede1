"""Sentence embeddings of real sentences in input order vs sorted by length (chapter 6's sentence_embeddings, which
sorts), and sentence-transformers' recipe built on transformers in input order, same weights (the real MiniLM).

    python bench/bucketing.py                  # 512 random VADER sentences, batches of 32, 2 threads
    python bench/bucketing.py --sentences 1024 --threads 1 --repeats 5

The unsorted bert_lit path is the same function with its sort switched off (the order it is given is kept), so the
ratio is the gain of sorting alone. All paths run in this process, alternately, under torch.inference_mode after a
warm-up; each time is the median of --repeats passes. Printed: the padding fraction of each batching, sentences/s,
and the ratios to the unsorted paths (> 1: faster). The outputs are checked equal (fp32, 1e-5) before timing.
"""
import argparse
import random
import statistics
import time
from unittest import mock

import torch
import torch.nn.functional as F
import transformers

from common import add_device_options, device_setup   # first: it puts this repository on sys.path
import bert_lit.pretrained as pretrained
from bert_lit.data import minilm_checkpoint, vader_sentences
from bert_lit.encoder import BertModel
from bert_lit.tokenizer import BertTokenizer


def padding(tok, texts, batch_size):
    "The share of padding tokens when `texts` are batched in this order."
    real = total = 0
    for i in range(0, len(texts), batch_size):
        m = tok(texts[i:i + batch_size], padding=True, truncation=True, max_length=256, return_tensors="pt")["attention_mask"]
        real, total = real + int(m.sum()), total + m.numel()
    return 1 - real / total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    add_device_options(ap, threads=2)
    a = ap.parse_args()
    dev, sync, where = device_setup(a)
    transformers.logging.disable_progress_bar()
    path = minilm_checkpoint()
    tok, hf_tok = BertTokenizer(path), transformers.BertTokenizer.from_pretrained(path)
    ours = BertModel.from_pretrained(path).eval().to(dev)
    theirs = transformers.BertModel.from_pretrained(path).eval().to(dev)
    texts = [r.text for r in random.Random(0).sample(vader_sentences(), a.sentences)]

    def reference(batch):                                  # sentence-transformers' recipe, in the given order
        out = []
        for i in range(0, len(batch), a.batch_size):
            enc = hf_tok(batch[i:i + a.batch_size], padding=True, truncation=True, max_length=256, return_tensors="pt")
            h = theirs(**enc.to(dev)).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            out.append(F.normalize((h * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=1))
        return torch.cat(out)

    def unsorted(batch):                                   # the same function, its sort switched off
        with mock.patch.object(pretrained, "_characters", lambda text: 0):
            return pretrained.sentence_embeddings(ours, tok, batch, a.batch_size)

    paths = {"transformers, input order": reference,
             "bert_lit, input order": unsorted,
             "bert_lit, sorted (default)": lambda batch: pretrained.sentence_embeddings(ours, tok, batch, a.batch_size)}
    by_length = sorted(texts, key=len, reverse=True)
    print(f"{a.sentences} VADER sentences, batches of {a.batch_size}: padding {padding(tok, texts, a.batch_size):.3f} in "
          f"input order, {padding(tok, by_length, a.batch_size):.3f} sorted; {where}, torch {torch.__version__}")
    times = {k: [] for k in paths}
    with torch.inference_mode():
        ref = reference(texts[:64])
        for k, fn in paths.items():                        # warm-up, and the outputs agree
            assert (fn(texts[:64]) - ref).abs().max() < 1e-5, k
        for _ in range(a.repeats):
            for k, fn in paths.items():
                sync(); t = time.perf_counter(); fn(texts); sync()
                times[k].append(time.perf_counter() - t)
    base = {k: statistics.median(v) for k, v in times.items()}
    for k, t in base.items():
        print(f"{k:28s} {a.sentences / t:8.1f} sentences/s")
    print(f"ratio sorted / bert_lit input order: {base['bert_lit, input order'] / base['bert_lit, sorted (default)']:.2f}")
    print(f"ratio sorted / transformers input order: {base['transformers, input order'] / base['bert_lit, sorted (default)']:.2f}")


if __name__ == "__main__":
    main()
