"""The table of measured results: parse what bench/cpu.sh or bench/gpu.sh printed (bench/cpu-results.txt,
bench/gpu-results.txt) into rows (benchmark, what was measured, value, target). Chapter 11 prints it.

    python bench/results.py [bench/cpu-results.txt]
"""
import re
import sys
from pathlib import Path


def bench_blocks(path):
    "The output of bench/cpu.sh or bench/gpu.sh as [(command, lines)]."
    blocks = []
    for line in Path(path).read_text().splitlines():
        if line.startswith("=== "):
            blocks.append((line[4:], []))
        elif blocks:
            blocks[-1][1].append(line)
    return blocks


def model_rows(line, shape, dtype, gpu):
    "Rows of one output line of bench/model.py."
    rows = []
    if "ratio bert_lit / transformers" in line:
        rows.append((f"inference, 32 x 128, {shape}, {dtype}", "bert_lit / transformers",
                     re.search(r"([\d.]+) \(median of paired", line)[1], ">= 1.0"))
    if "model FLOP/s / matmul" in line and (dtype == "fp32" or gpu):
        rows.append((f"FLOP/s, 32 x 128, {shape}, {dtype}", "model / torch.matmul",
                     re.search(r"bert_lit ([\d.]+)", line)[1], ">= 0.7"))
    if line.strip().startswith("tokens/s:"):
        rows.append((f"inference, 32 x 128, {shape}, {dtype}", "bert_lit tokens/s",
                     re.search(r"bert_lit (\d[\d,]*\d|\d)\b", line)[1], ""))
    return rows


def other_rows(script, line):
    "Rows of one output line of the other benchmarks."
    if script == "bench/unpad.py" and (m := re.match(r"ratio default / (transformers|ONNX Runtime fp32) \((.*)\): ([\d.]+)", line)):
        what = "fine-tuning step, real sentence batches, MiniLM" if m[2] == "fine-tuning step" else \
            "inference, real sentence batches, MiniLM"
        target = ">= 1.5" if m[1] == "transformers" and m[2] == "inference" else "> 1" if m[1] != "transformers" else ""
        return [(what, f"default / {m[1]}", m[3], target)]
    if script == "bench/unpad.py" and line.startswith("model FLOP/s on the real tokens"):
        return [("FLOP/s, real sentence batches, MiniLM", "default / torch.matmul",
                 re.search(r"bert_lit default ([\d.]+)", line)[1], ">= 0.75")]
    if script == "bench/int8.py" and (m := re.match(r"(sentiment accuracy|POS word accuracy) .* fp32: ([+-][\d.]+)", line)):
        return [(f"int8 per channel, {m[1]}", "int8 - fp32", m[2], ">= -0.01")]
    if script == "bench/int8.py" and (m := re.match(r"embeddings int8 per channel: cosine to fp32 mean ([\d.]+)", line)):
        return [("int8 per channel, sentence embeddings", "cosine to fp32, mean", m[1], "")]
    if script == "bench/int8.py" and (m := re.match(r"(32 x 128|real batches \(16 x 32\))\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", line)):
        shape = "32 x 128" if m[1] == "32 x 128" else "real batches"
        return [(f"int8 inference, {shape}, MiniLM", "int8 / transformers fp32", m[4], ">= 2.5 (VNNI)"),
                (f"int8 inference, {shape}, MiniLM", "ONNX Runtime int8 / tr.", m[6], "")]
    if script == "bench/bucketing.py" and line.startswith("ratio sorted / bert_lit input order"):
        return [("sentence embeddings, real sentences, MiniLM", "sorted / input order", line.split(":")[1].strip(), "")]
    if script == "bench/pretrain.py" and line.startswith("ratio"):
        return [("pretraining step, 4 x 256, 32 x 128", "bert_lit / transformers", line.split(":")[1].strip(), ">= 1.3")]
    if script == "bench/attention.py" and (m := re.match(r"(minilm|bert-base)\s+(yes|no)\s.*\s([\d.]+)$", line)):
        return [(f"attention alone, {m[1]}, {'padded' if m[2] == 'yes' else 'no padding'}", "explicit / fused", m[3], "")]
    if script == "bench/compile.py" and line.startswith("compile (first call)"):
        return [("torch.compile, MiniLM 32 x 128", "compile time, s", re.search(r"([\d.]+) s", line)[1], "")]
    if script == "bench/compile.py" and line.startswith("ratio compiled"):
        return [("torch.compile, MiniLM 32 x 128", "compiled / eager", re.search(r"compiled / eager: ([\d.]+)", line)[1], "")]
    return []


def bench_table(path, gpu=False):
    "Rows (what, ratio of what, value, target) from the benchmarks' printed ratios."
    rows = []
    for command, lines in bench_blocks(path):
        script, dtype, shape = command.split()[1], "bf16" if "bf16" in command else "fp32", None
        for line in lines:
            if m := re.match(r"(bert-base|minilm):", line):
                shape = m[1]
            rows += model_rows(line, shape, dtype, gpu) if script == "bench/model.py" else other_rows(script, line)
    return rows


def print_table(rows):
    "The rows as a table of fixed-width columns."
    print(f"{'benchmark':44} {'measured':24} {'value':>7}  target")
    for what, ratio, value, target in rows:
        print(f"{what:44} {ratio:24} {value:>7}  {target}")


def markdown_table(rows):
    "The rows as a Markdown table (rendered as a table in the book)."
    lines = ["| benchmark | measured | value | target |", "|---|---|---:|---|"]
    return "\n".join(lines + [f"| {what} | {ratio} | {value} | {target} |" for what, ratio, value, target in rows])


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("cpu-results.txt")
    print_table(bench_table(path, gpu="gpu" in str(path)))
