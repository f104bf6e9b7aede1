"""The shape of the code, per chapter: export cells, functions, lines, and who imports whom.

    python tools/measure_cut.py            # table + module graph of the working tree
    python tools/measure_cut.py --json     # the same as JSON (tests/test_structure.py reads it)
"""
import ast, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE_ORDER = ["data", "tokenizer", "embeddings", "attention", "multihead", "config", "encoder", "pretrained",
                "training", "pretraining", "finetuning", "qa", "speed", "cli", "pipelines"]   # the book's order


def export_cells(nb_path):
    "The `#| export` cells of a notebook as (cell index, number of lines)."
    nb = json.loads(nb_path.read_text())
    out = []
    for i, c in enumerate(nb["cells"]):
        s = "".join(c["source"])
        if c["cell_type"] == "code" and re.match(r"#\|\s*export", s):
            out.append((i, len(s.rstrip("\n").split("\n"))))
    return out


def functions(py_path):
    "Every function and method of a module as (qualified name, number of lines)."
    tree = ast.parse(py_path.read_text())
    out = []
    def walk(node, prefix=""):
        for n in ast.iter_child_nodes(node):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((prefix + n.name, n.end_lineno - n.lineno + 1))
                walk(n, prefix + n.name + ".")
            elif isinstance(n, ast.ClassDef):
                walk(n, prefix + n.name + ".")
    walk(tree)
    return out


def imports(py_path):
    "The bert_lit modules (and argparse) a module imports, statically."
    tree = ast.parse(py_path.read_text())
    found = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            if n.level == 1 and n.module:
                found.add(n.module.split(".")[0])
            elif n.level == 1:
                found.update(a.name for a in n.names)
            elif n.module and n.module.startswith("bert_lit."):
                found.add(n.module.split(".")[1])
            elif n.module == "argparse":
                found.add("argparse")
        elif isinstance(n, ast.Import):
            for a in n.names:
                if a.name == "argparse":
                    found.add("argparse")
                elif a.name.startswith("bert_lit."):
                    found.add(a.name.split(".")[1])
    return sorted(found)


def measure():
    nbs = sorted((ROOT / "nbs").glob("[0-9][0-9]_*.ipynb"))
    chapters = []
    for nb in nbs:
        cells = export_cells(nb)
        mods = sorted(set(re.findall(r"#\|\s*(?:default_exp|export)\s+(\w+)", (nb.read_text()))))
        chapters.append({"notebook": nb.name, "export_cells": len(cells),
                         "longest_export_cell": max((n for _, n in cells), default=0), "modules": mods})
    modules = {}
    for py in sorted((ROOT / "bert_lit").glob("*.py")):
        if py.name in ("__init__.py", "_modidx.py"):
            continue
        fs = functions(py)
        name, n = max(fs, key=lambda f: f[1], default=("", 0))
        modules[py.stem] = {"lines": len(py.read_text().splitlines()), "functions": len(fs),
                            "longest_function": name, "longest_function_lines": n, "imports": imports(py)}
    return {"chapters": chapters, "modules": modules}


if __name__ == "__main__":
    m = measure()
    if "--json" in sys.argv:
        print(json.dumps(m, indent=1)); sys.exit()
    print(f"{'notebook':26} {'export cells':>12} {'longest cell':>12}")
    for c in m["chapters"]:
        print(f"{c['notebook']:26} {c['export_cells']:12} {c['longest_export_cell']:12}")
    print(f"\n{'module':12} {'lines':>6} {'longest function':>40}  imports")
    for k in sorted(m["modules"], key=lambda k: MODULE_ORDER.index(k) if k in MODULE_ORDER else 99):
        v = m["modules"][k]
        print(f"{k:12} {v['lines']:6} {v['longest_function']:>34} {v['longest_function_lines']:5}  {', '.join(v['imports'])}")
