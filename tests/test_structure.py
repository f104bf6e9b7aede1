"""The cut of the book (issue 14): every import arrow points to an earlier chapter, small export cells, short functions,
each export cell shown and tested, `training` free of BERT, `argparse` only in the command line."""
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("measure_cut", ROOT / "tools" / "measure_cut.py")
measure_cut = importlib.util.module_from_spec(spec); spec.loader.exec_module(measure_cut)
ORDER = measure_cut.MODULE_ORDER
MODULES = sorted(p.stem for p in (ROOT / "bert_lit").glob("*.py") if p.stem not in ("__init__", "_modidx"))
MAX_CELL, MAX_FUNCTION = 45, 42          # "about 40": the `#| export` line and a docstring line of slack


def test_every_module_has_its_place_in_the_book():
    assert sorted(MODULES) == sorted(ORDER), set(MODULES) ^ set(ORDER)


@pytest.mark.parametrize("module", MODULES)
def test_imports_point_to_earlier_chapters(module):
    later = [m for m in measure_cut.imports(ROOT / "bert_lit" / f"{module}.py")
             if m in ORDER and ORDER.index(m) >= ORDER.index(module)]
    assert not later, f"bert_lit.{module} imports {later}, which come at or after it in the book"


def test_training_knows_nothing_of_bert():
    assert set(measure_cut.imports(ROOT / "bert_lit" / "training.py")) <= {"data"}


def test_only_the_command_line_imports_argparse():
    assert [m for m in MODULES if "argparse" in measure_cut.imports(ROOT / "bert_lit" / f"{m}.py")] == ["cli"]


def test_importing_the_library_needs_neither_transformers_nor_the_command_line():
    code = ("import sys, bert_lit.training, bert_lit.qa; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('transformers', 'bert_lit')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "transformers" not in loaded and "'bert_lit.cli'" not in loaded and "'bert_lit.speed'" not in loaded, loaded
    assert "'bert_lit.pretraining'" not in subprocess.run(      # the loop does not pull in BERT's recipe
        [sys.executable, "-c", "import sys, bert_lit.training; print(sorted(sys.modules))"],
        capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("module", [m for m in MODULES if m != "cli"])   # cli: below, its argparse code exempt
def test_functions_are_short(module):
    long = [(f, n) for f, n in measure_cut.functions(ROOT / "bert_lit" / f"{module}.py") if n > MAX_FUNCTION]
    assert not long, f"functions over {MAX_FUNCTION} lines in bert_lit.{module}: {long}"


def test_cli_functions_other_than_parsers_are_short():
    long = [(f, n) for f, n in measure_cut.functions(ROOT / "bert_lit" / "cli.py")
            if n > MAX_FUNCTION and "parser" not in f]
    assert not long, long


NOTEBOOKS = sorted((ROOT / "nbs").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_export_cells_are_small_and_each_is_shown_and_tested(nb):
    cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
    srcs = ["".join(c["source"]) for c in cells]
    is_export = [bool(re.match(r"#\|\s*export", s)) for s in srcs]
    too_long = [i for i, s in enumerate(srcs) if is_export[i] and len(s.rstrip().split("\n")) > MAX_CELL]
    assert not too_long, f"{nb.name}: export cells over {MAX_CELL} lines: {too_long}"
    untested = []
    for i, s in enumerate(srcs):
        body = [l for l in s.split("\n")[1:] if l.strip() and not l.startswith("#")]
        if not is_export[i] or all(l.startswith(("import ", "from ")) or l.startswith(" ") for l in body):
            continue                                               # the chapter's imports need no demonstration
        following = []
        for j in range(i + 1, len(srcs)):
            if is_export[j]:
                break
            following.append(srcs[j])
        if len(following) < 1 or not any("assert" in f for f in following):
            untested.append(i)
    assert not untested, f"{nb.name}: export cells (code-cell index) not followed by a demonstration and a test: {untested}"


def test_nbdev_clean_keeps_the_books_cell_metadata():
    "nbdev splits allowed_cell_metadata_keys on whitespace: 'tags, mystnb' kept mystnb and dropped the tags."
    from nbdev.clean import clean_nb
    from nbdev.config import get_config
    keys = get_config(path=ROOT).get("allowed_cell_metadata_keys").split()
    cell = {"cell_type": "code", "execution_count": 3, "id": "x", "outputs": [], "source": ["1"],
            "metadata": {"tags": ["hide-cell"], "mystnb": {"figure": {"name": "fig-x"}}, "scrolled": True}}
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    clean_nb(nb, allowed_cell_metadata_keys=keys)
    assert cell["metadata"] == {"tags": ["hide-cell"], "mystnb": {"figure": {"name": "fig-x"}}}


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_solutions_and_plotting_code_are_collapsed(nb):
    "An exercise's solution folds away whole (hide-cell); a figure's plotting code folds away, the figure stays."
    cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
    for c in cells:
        tags, text = c["metadata"].get("tags", []), "".join(c["source"])
        if text.startswith("# Solution"):
            assert "hide-cell" in tags, f"{nb.name}: {text.splitlines()[0]!r} is not collapsed"
        if "figure" in c["metadata"].get("mystnb", {}):
            assert "hide-input" in tags, f"{nb.name}: the code of {c['metadata']['mystnb']['figure']['name']} shows"
