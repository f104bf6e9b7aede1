"""tools/finetune_curves.py: a grid of fine-tunings appends one JSON line per run, resumes, drops a cut last line,
refuses a held folder, and summarises the file as mean ± sample sd over seeds."""
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bert_lit.data import hold_folder, minilm_checkpoint
from bert_lit.encoder import BertConfig, BertModel
from bert_lit.tokenizer import BertTokenizer

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "finetune_curves.py"
FIELDS = {"task", "init", "folder", "from_scratch", "size", "n_train", "seed", "learning_rate", "epochs", "steps",
          "batch_size", "max_length", "test_accuracy", "test", "seconds", "threads"}


def load_script():
    spec = importlib.util.spec_from_file_location("finetune_curves", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


curves = load_script()


@pytest.fixture(autouse=True, scope="module")
def restore_threads():
    "The script sets torch's thread count (--threads); give the rest of the suite its own back."
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    "A tiny model folder: MiniLM's vocabulary, one layer of width 16, random weights."
    folder = tmp_path_factory.mktemp("tiny")
    cfg = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(folder)
    BertTokenizer(minilm_checkpoint()).save_pretrained(folder)
    return folder


def grid(tiny, out, task="sentiment", seeds=("0",), *more):
    "One pretrained and one random init of the tiny folder, 32 examples, batch 16: 2 runs per seed."
    return ["--out", str(out), "--task", task, "--init", f"t={tiny}", "--random", f"r={tiny}", "--sizes", "32",
            "--seeds", *seeds, "--lrs", "1e-3", "--epochs", "1", "--min-steps", "4", "--batch-size", "16", *more]


def lines(out):
    return out.read_text().splitlines()


def test_runs_append_one_line_each_and_resume(tiny, tmp_path, capsys):
    "2 runs -> 2 complete lines with every field; the same command again runs nothing; more seeds add only theirs."
    out = tmp_path / "sweep" / "results.jsonl"
    assert curves.main(grid(tiny, out)) == 0
    first = lines(out)
    runs = [json.loads(l) for l in first]
    assert len(runs) == 2 and all(set(r) == FIELDS for r in runs)
    assert [(r["init"], r["from_scratch"]) for r in runs] == [("t", False), ("r", True)]
    for r in runs:
        # 32 examples, batch 16, at least 4 steps: ceil(4 * 16 / 32) = 2 epochs (more than --epochs 1), 2 steps each
        assert (r["size"], r["n_train"], r["seed"], r["learning_rate"]) == (32, 32, 0, 1e-3)
        assert (r["epochs"], r["steps"], r["batch_size"], r["max_length"], r["threads"]) == (2, 4, 16, 64, 1)
        assert r["folder"] == str(tiny) and "by_domain" not in r["test"]
        assert r["test_accuracy"] == r["test"]["accuracy"] and 0 <= r["test_accuracy"] <= 1
    assert len(capsys.readouterr().out.splitlines()) == 2           # one short line per run
    assert curves.main(grid(tiny, out)) == 0                          # resume: everything is done
    captured = capsys.readouterr()
    assert lines(out) == first and captured.out == "" and "0 of 2 runs to do" in captured.err
    assert curves.main(grid(tiny, out, "sentiment", ("0", "1", "1"))) == 0   # only seed 1's runs are new (once)
    assert "2 of 4 runs to do" in capsys.readouterr().err
    more = lines(out)
    assert more[:2] == first and [json.loads(l)["seed"] for l in more[2:]] == [1, 1]
    # the same runs with other settings would mix two experiments in one file: refused, the file untouched
    assert curves.main(grid(tiny, out, "sentiment", ("0",), "--max-length", "32")) == 1
    assert "max_length=64, but this command asks max_length=32" in capsys.readouterr().err
    assert lines(out) == more


def test_a_cut_last_line_is_ignored_and_redone(tiny, tmp_path, capsys):
    "A line cut by a kill is dropped and its run redone, with the same result (seeded); pos records word accuracy."
    out = tmp_path / "pos" / "results.jsonl"
    assert curves.main(grid(tiny, out, "pos")) == 0
    whole = out.read_text()
    first, second = whole.splitlines()
    out.write_text(whole[:len(first) + 1 + len(second) // 2])        # killed in the middle of the second line
    with pytest.raises(json.JSONDecodeError):
        json.loads(out.read_text().splitlines()[1])
    capsys.readouterr()
    assert curves.main(grid(tiny, out, "pos")) == 0
    assert "last line was cut short" in capsys.readouterr().err
    now = lines(out)
    assert len(now) == 2 and now[0] == first
    redone, before = json.loads(now[1]), json.loads(second)
    assert {k: v for k, v in redone.items() if k != "seconds"} == {k: v for k, v in before.items() if k != "seconds"}
    assert redone["test"]["accuracy"] == redone["test_accuracy"] and "baseline_most_frequent_tag" in redone["test"]


def test_summary_is_mean_and_sample_sd_per_group(tmp_path, capsys):
    "--summary reads only the file: per (task, init, weights, size, rate) the mean ± sample sd and n of test accuracy."
    def run(init, scratch, size, seed, lr, acc, n_train=None):
        return {"task": "sentiment", "init": init, "from_scratch": scratch, "size": size, "seed": seed,
                "learning_rate": lr, "n_train": n_train or size, "test_accuracy": acc}
    runs = [run("book", False, 100, s, 1e-4, a) for s, a in enumerate([0.61, 0.64, 0.70])]
    runs += [run("book", False, 100, s, 3e-4, a) for s, a in enumerate([0.66, 0.62])]
    runs += [run("rand", True, 100, s, 1e-4, a) for s, a in enumerate([0.55, 0.52, 0.51])]
    runs += [run("book", False, "all", s, 1e-4, a, 19000) for s, a in enumerate([0.80, 0.82, 0.83])]
    runs += [run("book", False, 300, 0, 1e-4, 0.75)]
    out = tmp_path / "r.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in runs) + '{"task": "sentiment", "init": "bo')
    assert curves.main(["--out", str(out), "--summary"]) == 0
    captured = capsys.readouterr()
    assert "ignoring its last line" in captured.err
    rows = [r.split() for r in captured.out.splitlines()[2:]]
    groups = {}
    for r in runs:
        groups.setdefault((r["init"], r["from_scratch"], r["size"], r["learning_rate"]), []).append(r["test_accuracy"])
    assert len(rows) == len(groups) == 5
    for (init, scratch, size, lr), scores in groups.items():
        size_shown = ["all", "(19000)"] if size == "all" else [str(size)]
        spread = ["±", f"{statistics.stdev(scores):.4f}"] if len(scores) > 1 else ["(one", "run:", "no", "sd)"]
        expected = ["sentiment", init, "random" if scratch else "pretrained", *size_shown, f"{lr:g}",
                    str(len(scores)), f"{statistics.mean(scores):.4f}", *spread]
        assert expected in rows, (expected, rows)
    order = [(r[1], r[2], r[3]) for r in rows]                         # sizes in numeric order, "all" last
    assert order.index(("book", "pretrained", "100")) < order.index(("book", "pretrained", "300")) \
        < order.index(("book", "pretrained", "all"))


def test_a_held_folder_is_refused_in_one_line(tiny, tmp_path):
    "While another process holds --out's folder, a second run exits 1 naming the holder, and writes nothing."
    out = tmp_path / "held" / "results.jsonl"
    with hold_folder(out.parent, what="finetune_curves run"):
        done = subprocess.run([sys.executable, str(SCRIPT), *grid(tiny, out)], capture_output=True, text=True,
                              cwd=ROOT, timeout=120)
    err = done.stderr.strip()
    assert done.returncode == 1 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "in use by another finetune_curves run" in err and f"(process {os.getpid()})" in err, err
    assert not out.exists()


@pytest.mark.parametrize("more, needle", [
    (["--lr", "nobody=1e-4"], "no --init or --random is named 'nobody'"),
    (["--random", "t=x"], "init names ['t', 'r', 't'] repeat"),
    (["--init", "z=/nonexistent"], "no config.json in /nonexistent"),
    (["--sizes", "0"], "size '0': pass a positive number of examples or 'all'"),
])
def test_bad_arguments_are_usage_errors(tiny, tmp_path, capsys, more, needle):
    "Unclear grids are refused before anything runs, with the fix in the message."
    with pytest.raises(SystemExit) as stop:
        curves.main(grid(tiny, tmp_path / "x.jsonl", "sentiment", ("0",), *more))
    assert stop.value.code == 2 and needle in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()
