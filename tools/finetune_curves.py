"""Learning-rate sweeps and learning curves of fine-tuning, as mean ± sd over seeds (chapter 8.8's results).

Every run fine-tunes one head (bert_lit.finetuning: TASKS, task_model, fit) and appends one JSON line to --out;
re-running the same command skips the runs already there, so a killed grid resumes where it stopped.

    # a sweep: one size, several learning rates, pretrained and random weights of the same folder
    python tools/finetune_curves.py --out nbs/runs/sweep_sentiment/results.jsonl --task sentiment \\
        --init book=nbs/runs/pretrain_full/model --random random=nbs/runs/pretrain_full/model \\
        --sizes 1000 --seeds 0 1 2 --lrs 3e-5 1e-4 3e-4 1e-3
    # a curve: several sizes, one learning rate per init (each the best of its sweep)
    python tools/finetune_curves.py --out nbs/runs/curve_pos/results.jsonl --task pos \\
        --init book=nbs/runs/pretrain_full/model --init minilm=minilm --random random=nbs/runs/pretrain_full/model \\
        --sizes 100 300 1000 3000 all --seeds 0 1 2 --lr book=3e-4 --lr minilm=1e-4 --lr random=1e-4
    # the table, from the file alone
    python tools/finetune_curves.py --out nbs/runs/curve_pos/results.jsonl --summary
"""
import argparse
import errno
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from bert_lit.data import FolderInUse, atomic_write, hold_folder, minilm_checkpoint, no_space_error
from bert_lit.finetuning import TASKS, FinetuneConfig, fit, task_model
from bert_lit.tokenizer import BertTokenizer

CURVE_TASKS = ("sentiment", "pos")   # the tasks whose main score is test "accuracy" (word accuracy for pos)
MAX_EPOCHS = 40                      # a cap on the epochs that few labels ask for
ALL = 10 ** 9                        # the train_limit of size "all": every training example
KEY = ("task", "init", "from_scratch", "size", "seed", "learning_rate")   # what identifies a run in the file


def epochs_for(n, epochs, min_steps, batch_size) -> int:
    "Epochs for n training examples: at least `epochs`, and enough for `min_steps` optimiser steps, at most MAX_EPOCHS."
    return min(MAX_EPOCHS, max(epochs, math.ceil(min_steps * batch_size / n)))


def read_runs(path):
    """The complete runs of a results file, the bytes they fill, and the cut last line (b'' if none): a line is
    complete when it ends with a newline, so a line cut by a kill is left out (and redone)."""
    path = Path(path)
    data = path.read_bytes() if path.exists() else b""
    *lines, tail = data.split(b"\n")
    runs = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            runs.append(json.loads(line))
        except json.JSONDecodeError:
            raise ValueError(f"{path}, line {i}, is not JSON; repair or delete that line (only a cut last line "
                             "is dropped by itself)") from None
    return runs, len(data) - len(tail), tail


def append_run(path, record):
    "Append one run as a JSON line, flushed and fsynced; never through a link at `path`."
    line = (json.dumps(record) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ValueError(f"{path} is a symbolic link; pass the real file as --out") from None
        raise
    try:
        os.write(fd, line)
        os.fsync(fd)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EFBIG):
            raise no_space_error(Path(path), len(line)) from e
        raise
    finally:
        os.close(fd)


def summary(runs) -> str:
    "A table of test accuracy, mean ± sample sd over seeds, grouped by (task, init, weights, size, learning rate)."
    groups = {}
    for r in runs:
        key = (r["task"], r["init"], r["from_scratch"], r["size"], r["learning_rate"])
        groups.setdefault(key, []).append(r)
    order = lambda k: (k[0], k[1], k[2], (1, 0) if k[3] == "all" else (0, k[3]), k[4])
    head = f"{'task':<10} {'init':<12} {'weights':<10} {'size':>11} {'lr':>8} {'n':>3}  test accuracy"
    rows = [head, "-" * len(head)]
    for key in sorted(groups, key=order):
        task, init, scratch, size, lr = key
        scores = [r["test_accuracy"] for r in groups[key]]
        counts = {r["n_train"] for r in groups[key]}
        shown = f"all ({counts.pop()})" if size == "all" and len(counts) == 1 else str(size)
        sd = f" ± {statistics.stdev(scores):.4f}" if len(scores) > 1 else "  (one run: no sd)"
        rows.append(f"{task:<10} {init:<12} {'random' if scratch else 'pretrained':<10} {shown:>11} {lr:>8g} "
                    f"{len(scores):>3}  {statistics.mean(scores):.4f}{sd}")
    return "\n".join(rows)


def named(text):
    "NAME=VALUE of --init, --random and --lr."
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def size_arg(text):
    if text == "all":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"size {text!r}: pass a positive number of examples or 'all'")
    return int(text)


def parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="the results file (JSON lines); its folder is held "
                   "while running,\nso runs into one folder never interleave")
    p.add_argument("--summary", action="store_true", help="print mean ± sd per group from --out, run nothing")
    p.add_argument("--task", choices=CURVE_TASKS)
    p.add_argument("--init", type=named, action="append", default=[], metavar="NAME=FOLDER",
                   help="fine-tune FOLDER's weights (FOLDER: a checkpoint folder, or minilm)")
    p.add_argument("--random", type=named, action="append", default=[], metavar="NAME=FOLDER",
                   help="fine-tune FOLDER's configuration and vocabulary with random weights")
    p.add_argument("--sizes", type=size_arg, nargs="+", default=["all"], help="labelled training examples (or all)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="each seed draws the examples, the head's weights, dropout and the batch order")
    p.add_argument("--lrs", type=float, nargs="+", default=[], help="learning rates for every init")
    p.add_argument("--lr", type=named, action="append", default=[], metavar="NAME=RATE",
                   help="a learning rate for one init instead of --lrs (repeat for several)")
    p.add_argument("--epochs", type=int, default=3, help="epochs at least (default 3)")
    p.add_argument("--min-steps", type=int, default=150, help="optimiser steps at least: epochs = max(--epochs, "
                   f"ceil(min_steps * batch_size / n)),\nat most {MAX_EPOCHS} (default 150)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64, help="tokens per example (default 64: VADER's and Brown's "
                   "sentences are short;\nlonger Brown sentences are left out of training, tagged in pieces at test)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1, so timings and results repeat)")
    return p


def plan(args, p):
    "The inits as (name, folder as given, folder, from_scratch) and their learning rates; usage errors if unclear."
    if args.task is None:
        p.error("--task is required to run (or pass --summary)")
    inits = [(n, f, False) for n, f in args.init] + [(n, f, True) for n, f in args.random]
    if not inits:
        p.error("pass at least one --init NAME=FOLDER or --random NAME=FOLDER")
    names = [n for n, _, _ in inits]
    if len(set(names)) != len(names):
        p.error(f"init names {names} repeat; give every --init and --random its own NAME")
    rates = {n: [] for n in names}
    for n, rate in args.lr:
        if n not in rates:
            p.error(f"--lr {n}={rate}: no --init or --random is named {n!r}")
        try:
            rates[n].append(float(rate))
        except ValueError:
            p.error(f"--lr {n}={rate}: the rate must be a number")
    for n in names:
        rates[n] = rates[n] or list(args.lrs)
        if not rates[n]:
            p.error(f"no learning rate for {n!r}: pass --lrs RATE ... or --lr {n}=RATE")
    out = []
    for n, given, scratch in inits:
        folder = minilm_checkpoint() if given == "minilm" else Path(given)
        if not (folder / "config.json").is_file():
            p.error(f"{n}={given}: no config.json in {folder}; pass a checkpoint folder or minilm")
        out.append((n, given, folder, scratch))
    return out, rates


def check_same(old, args, folder, epochs):
    "A run found in the file must have had this command's settings, else resuming would mix two experiments."
    asked = {"folder": folder, "batch_size": args.batch_size, "max_length": args.max_length, "epochs": epochs}
    for k, v in asked.items():
        if old.get(k) != v:
            run = ", ".join(f"{f}={old[f]}" for f in KEY)
            raise ValueError(f"{args.out} already holds the run {run} with {k}={old.get(k)!r}, but this command "
                             f"asks {k}={v!r}; pass the same settings to resume, or another --out")


def run_grid(args, inits, rates):
    "Every run of the grid that the file lacks; size by size (in the order given), so each size has all its seeds soon."
    with hold_folder(args.out.parent, what="finetune_curves run"):
        runs, good, tail = read_runs(args.out)
        if tail:
            print(f"{args.out}: its last line was cut short (a killed run); ignoring it, that run is redone",
                  file=sys.stderr)
            atomic_write(args.out, args.out.read_bytes()[:good])
        done = {tuple(r[k] for k in KEY): r for r in runs}
        grid = {(args.task, name, scratch, size, seed, lr): (given, folder) for size in args.sizes
                for seed in args.seeds for name, given, folder, scratch in inits for lr in rates[name]}
        for key, (given, _) in grid.items():          # a repeated seed or rate counts once (a dict's keys)
            if key in done:
                old = done[key]
                check_same(old, args, given, epochs_for(old["n_train"], args.epochs, args.min_steps, args.batch_size))
        todo = [(key, *grid[key]) for key in grid if key not in done]
        print(f"{args.out}: {len(todo)} of {len(grid)} runs to do", file=sys.stderr, flush=True)
        torch.set_num_threads(args.threads)
        tokenizers, jobs = {}, {}
        for key, given, folder in todo:
            task, name, scratch, size, seed, lr = key
            data = (folder, size, seed)
            if folder not in tokenizers:
                tokenizers[folder] = BertTokenizer.from_pretrained(folder)
            if data not in jobs:                           # the data of one (size, seed) at a time, per folder
                jobs = {k: job for k, job in jobs.items() if k[1:] == data[1:]}
                jobs[data] = TASKS[task](tokenizers[folder], ALL if size == "all" else size, seed, args.max_length)
            record = one_run(args, jobs[data], tokenizers[folder], key, given, folder)
            append_run(args.out, record)
            print(f"{task} {name}{' (random)' * scratch} size {size} seed {seed} lr {lr:g}: "
                  f"accuracy {record['test_accuracy']:.4f} ({record['seconds']} s)", flush=True)
    return 0


def one_run(args, job, tokenizer, key, given, folder) -> dict:
    "Fine-tune and test one head; the JSON record of the run (seconds: building the model, fitting and testing)."
    task, name, scratch, size, seed, lr = key
    t0, n = time.perf_counter(), len(job.train)
    epochs = epochs_for(n, args.epochs, args.min_steps, args.batch_size)
    config = FinetuneConfig(epochs=epochs, batch_size=args.batch_size, learning_rate=lr, seed=seed)
    model = task_model(job, folder, scratch, seed)
    fit(model, job.train, config, evaluate=None, out_dir=None, progress=False, pad_id=tokenizer.pad_token_id)
    test = {k: v for k, v in job.evaluate(model, final=True).items() if k != "by_domain"}
    return {"task": task, "init": name, "folder": given, "from_scratch": scratch, "size": size, "n_train": n,
            "seed": seed, "learning_rate": lr, "epochs": epochs, "steps": epochs * math.ceil(n / args.batch_size),
            "batch_size": args.batch_size, "max_length": args.max_length, "test_accuracy": test["accuracy"],
            "test": test, "seconds": round(time.perf_counter() - t0, 1), "threads": args.threads}


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        if args.summary:
            if not args.out.is_file():
                raise ValueError(f"{args.out} does not exist; run some fine-tunings into it first")
            runs, _, tail = read_runs(args.out)
            if tail:
                print(f"{args.out}: ignoring its last line, cut short (a killed run)", file=sys.stderr)
            print(summary(runs))
            return 0
        return run_grid(args, *plan(args, p))
    except (ValueError, FolderInUse, OSError) as e:
        print(f"finetune_curves: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
