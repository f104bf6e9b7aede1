"""Words per second: bert_lit's BertTokenizer vs transformers' BertTokenizerLegacy (pure Python) and
BertTokenizer (Rust), on the same batches of real sentences, in one process.

    python bench/tokenizer.py [--sentences 20000] [--batch 1000] [--threads 1]

Each tokenizer is freshly loaded and encodes the same batches once (cold caches: bert_lit's
per-character and per-word caches start empty), then once more (warm). Targets: >= 3x the legacy
tokenizer, >= 0.3x the Rust one.
"""
import argparse, os, random, time

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--sentences", type=int, default=20_000)
parser.add_argument("--batch", type=int, default=1000)
parser.add_argument("--threads", type=int, default=1, help="RAYON_NUM_THREADS for the Rust tokenizer")
args = parser.parse_args()
os.environ["RAYON_NUM_THREADS"] = str(args.threads)
os.environ["TOKENIZERS_PARALLELISM"] = "true" if args.threads > 1 else "false"

from transformers import BertTokenizer as RustBertTokenizer, BertTokenizerLegacy
from bert_lit import data
from bert_lit.tokenizer import BertTokenizer

sentences = [s for d in data.pretraining_corpus() for s in d.sentences]
sentences = random.Random(0).sample(sentences, min(args.sentences, len(sentences)))
batches = [sentences[i:i + args.batch] for i in range(0, len(sentences), args.batch)]
n_words = sum(len(s.split()) for s in sentences)
path = data.minilm_checkpoint()
makers = {"bert_lit": lambda: BertTokenizer.from_pretrained(path),
          "legacy (Python)": lambda: BertTokenizerLegacy(str(path / "vocab.txt")),
          "Rust": lambda: RustBertTokenizer.from_pretrained(path)}

def words_per_s(tok):
    t0 = time.perf_counter()
    for b in batches: tok(b, truncation=True, max_length=512)
    return n_words / (time.perf_counter() - t0)

speed, outputs = {}, {}
for name, make in makers.items():
    tok = make()
    speed[name] = (words_per_s(tok), words_per_s(tok))  # cold, then warm
    outputs[name] = tok(batches[0], truncation=True, max_length=512)["input_ids"]
rust = makers["Rust"]().backend_tokenizer  # the Rust core alone, without transformers' Python wrapper
t0 = time.perf_counter()
for b in batches: rust.encode_batch(b)
speed["Rust core (encode_batch)"] = (n_words / (time.perf_counter() - t0),) * 2
assert outputs["bert_lit"] == outputs["Rust"], "bert_lit and the Rust tokenizer disagree on the benchmark text"
print(f"{len(sentences):,} sentences, {n_words:,} words, batches of {args.batch}, Rust threads {args.threads}")
for name, (cold, warm) in speed.items(): print(f"  {name:26} {cold:12,.0f} words/s cold   {warm:12,.0f} warm")
for other in ("legacy (Python)", "Rust", "Rust core (encode_batch)"):
    print(f"bert_lit / {other:26} {speed['bert_lit'][0] / speed[other][0]:6.2f}x cold   {speed['bert_lit'][1] / speed[other][1]:6.2f}x warm")
