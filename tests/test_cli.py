"""Appendix A: the `bert-lit` command. Its help (every subcommand listed, defaults shown), the shared --device and
--threads options, exit statuses and one-line errors, the old `python -m bert_lit.X` forms (the same help, word for
word), and that no other module of the package imports argparse. Nothing here trains: each test takes seconds."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bert_lit.cli import main, parser

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"data": "bert_lit.data", "pretrain": "bert_lit.pretraining", "finetune": "bert_lit.finetuning"}
# the smallest valid command line of each subcommand (nothing runs: only parsed)
MINIMAL = {"data": ["data", "fetch"], "pretrain": ["pretrain", "--out", "x"],
           "finetune": ["finetune", "sentiment", "--init", "minilm", "--out", "x"]}


def help_of(argv, capsys):
    "The help `main(argv + ['--help'])` prints; it must exit with status 0."
    assert main([*argv, "--help"]) == 0
    return capsys.readouterr().out


def one_line_error(capsys, status, argv):
    "main(argv) returns `status` and says why on one line of stderr holding 'error:', without a traceback."
    assert main(argv) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: " in err and "Traceback" not in err, err
    return err


def test_top_level_help_lists_each_subcommand_on_one_line(capsys):
    out = help_of([], capsys)
    lines = out.splitlines()
    for name in COMMANDS:
        line = [l for l in lines if l.split()[:1] == [name]]
        assert len(line) == 1 and len(line[0].split()) > 3, out          # the name and a one-line description
    assert "usage: bert-lit" in out


def test_no_subcommand_prints_the_help_and_exits_2(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "usage: bert-lit" in err and all(name in err for name in COMMANDS), err


def test_subcommand_help_shows_the_defaults(capsys):
    "The defaults the commands had before Appendix A (literal values), shown in --help and used when parsing."
    expected = {
        "pretrain": {"--vocab-size": 8192, "--hidden-size": 256, "--layers": 4, "--heads": 4,
                     "--intermediate-size": 1024, "--dropout": 0.1, "--max-seq-length": 128,
                     "--masked-lm-prob": 0.15, "--batch-size": 32, "--grad-accum-steps": 1,
                     "--max-steps": 1200, "--seed": 0, "--log-every": 10, "--eval-every": 200, "--eval-batches": 20,
                     "--save-every": 100, "--learning-rate": 0.001, "--weight-decay": 0.01, "--precision": "fp32"},
        "finetune": {"--epochs": 2, "--batch-size": 32, "--learning-rate": 5e-05,
                     "--max-length": 128, "--seed": 0, "--precision": "fp32", "--save-every": 200},
        "data": {}}
    for name, defaults in expected.items():
        text = " ".join(help_of([name], capsys).split())                # help lines are wrapped: unwrap them
        text = text[text.index("options:"):]                                 # the option list, not the usage
        args = vars(parser().parse_args(MINIMAL[name]))
        for option, value in defaults.items():
            after = text[text.index(option + " "):]
            end = after.find(" --", 1)                                       # up to the next option
            after = after if end < 0 else after[:end]
            assert f"(default: {value})" in after, (name, option, after)
            assert args[option[2:].replace("-", "_")] == value, (name, option)
        assert "(default: None)" not in text and "(default: False)" not in text, name
    assert vars(parser().parse_args(MINIMAL["pretrain"]))["warmup_steps"] is None     # a tenth of --max-steps, later
    assert vars(parser().parse_args(MINIMAL["pretrain"]))["max_predictions_per_seq"] is None   # 20 at 128 x 0.15, later
    assert vars(parser().parse_args(MINIMAL["finetune"]))["train_limit"] is None   # 4000 for a built-in task, later
    for name in MINIMAL:                           # the machine's cores (Appendix A), said in words, not a number
        assert vars(parser().parse_args(MINIMAL[name]))["threads"] is None
        assert "--threads 1 makes the numbers independent of the machine" in " ".join(help_of([name], capsys).split())


def test_shared_options_are_on_every_subcommand(capsys):
    for name, argv in MINIMAL.items():
        assert "--device" in help_of([name], capsys) and "--threads" in help_of([name], capsys)
        args = parser().parse_args([*argv, "--device", "cpu", "--threads", "3"])
        assert (args.device, args.threads) == ("cpu", 3), name
        assert (parser().parse_args(argv).device, parser().parse_args(argv).threads) == (None, None), name


def test_only_the_command_line_imports_argparse():
    "Parsed, not grepped: an `import argparse` inside a function counts (the old mains had them)."
    importers = []
    for py in sorted((ROOT / "bert_lit").glob("*.py")):
        for node in ast.walk(ast.parse(py.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            if any(n.split(".")[0] == "argparse" for n in names):
                importers.append(py.stem)
    assert sorted(set(importers)) == ["cli"], importers


def test_a_bad_option_exits_2_with_one_line(capsys):
    err = one_line_error(capsys, 2, [*MINIMAL["pretrain"], "--no-such-option"])
    assert err.startswith("bert-lit pretrain: error: ") and "--no-such-option" in err and "--help" in err
    err = one_line_error(capsys, 2, ["train", "--out", "x"])                      # no such subcommand
    assert "invalid choice: 'train'" in err
    err = one_line_error(capsys, 2, ["finetune", "parsing", "--init", "minilm", "--out", "x"])
    assert "invalid choice: 'parsing'" in err
    err = one_line_error(capsys, 2, ["pretrain"])                                 # --out is required
    assert "--out" in err


@pytest.mark.parametrize("argv, needle", [
    (["pretrain", "--out", "x", "--threads", "0"], "--threads: '0' is not a whole number of at least 1"),
    (["finetune", "pos", "--init", "minilm", "--out", "x", "--threads", "-2"], "--threads: '-2'"),
    (["data", "fetch", "--threads", "many"], "--threads: 'many'"),
    (["pretrain", "--out", "x", "--corpus", "no/such/corpus.txt"], "no file or folder no/such/corpus.txt"),
    (["finetune", "pos", "--init", "no/such/folder", "--out", "x"], "no folder no/such/folder"),
])
def test_a_bad_value_is_one_line_naming_it(capsys, argv, needle, tmp_path, monkeypatch):
    "Refused by the parser, before anything is loaded or written (was: --threads 0 accepted, the others tracebacks)."
    monkeypatch.chdir(tmp_path)
    before = torch.get_num_threads()
    assert needle in one_line_error(capsys, 2, argv)
    assert torch.get_num_threads() == before and list(tmp_path.iterdir()) == []


def test_an_error_found_while_running_is_one_line_with_status_1(capsys, tmp_path):
    "The library refuses a corpus without a held-out document; the command says so on one line, exit status 1."
    (tmp_path / "corpus.txt").write_text("One sentence.\nAnother one.\n")      # one document: all of it 'train'
    err = one_line_error(capsys, 1, ["pretrain", "--out", str(tmp_path / "run"), "--corpus",
                                     str(tmp_path / "corpus.txt"), "--no-progress"])
    assert err.startswith("error: ") and "held-out" in err, err
    assert not (tmp_path / "run" / "vocab.txt").exists()                        # refused before any training


def test_the_threads_option_is_applied(tmp_path, capsys):
    "--threads reaches torch before the command runs (the run itself is refused: a one-document corpus)."
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        (tmp_path / "corpus.txt").write_text("One sentence.\n")
        main(["pretrain", "--out", str(tmp_path / "run"), "--corpus", str(tmp_path / "corpus.txt"), "--threads", "2"])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def run(argv):
    env = {**os.environ, "COLUMNS": "200", "CUDA_VISIBLE_DEVICES": ""}           # a wide terminal changes nothing
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_python_m_forms_and_the_console_script_print_the_same_help(capsys):
    "`python -m bert_lit.X --help`, `bert-lit SUB --help` (the installed script) and main() agree, word for word."
    script = Path(sys.executable).parent / "bert-lit"
    assert script.is_file(), f"{script} is missing: run pip install -e . (pyproject.toml declares it)"
    started = {name: run([sys.executable, "-m", module, "--help"]) for name, module in COMMANDS.items()}
    started["script"] = run([str(script), "pretrain", "--help"])
    started["bad"] = run([sys.executable, "-m", "bert_lit.pretraining", "--out", "x", "--no-such-option"])
    done = {name: p.communicate(timeout=120) + (p.returncode,) for name, p in started.items()}
    for name in COMMANDS:
        out, err, status = done[name]
        assert status == 0 and err == "", (name, err[-2000:])
        assert out == help_of([name], capsys), name
    assert done["script"][2] == 0 and done["script"][0] == done["pretrain"][0], done["script"][1][-2000:]
    out, err, status = done["bad"]
    assert status == 2 and out == "" and err.count("\n") == 1 and "unrecognized arguments: --no-such-option" in err
