"""Write nbs/api.md, the book's API reference: every public name of `bert_lit` (its `_exports`), grouped by the
chapter that explains it, documented by Sphinx autodoc from its docstring.  python tools/api_page.py [OUT]"""
import importlib
import inspect
import sys
from pathlib import Path

import bert_lit

CHAPTERS = {"data": ("0", "00_data"), "tokenizer": ("1", "01_tokenizer"), "config": ("5", "05_config"), "encoder": ("5", "05_encoder"),
            "pretrained": ("6", "06_pretrained"), "pretraining": ("8", "08_pretraining"),
            "finetuning": ("9", "09_finetuning"), "qa": ("10", "10_qa"), "speed": ("11", "11_speed"),
            "cli": ("A", "12_cli"), "pipelines": ("B", "13_pipelines")}


def page() -> str:
    by_module = {}
    for name, module in bert_lit._exports.items():
        by_module.setdefault(module, []).append(name)
    lines = ["# API reference", "",
             "Every name below is importable from the package itself (`from bert_lit import pipeline`); each is "
             "defined, explained and tested in the chapter named above it. The text is the function's docstring.", ""]
    for module in sorted(by_module, key=lambda m: list(CHAPTERS).index(m)):
        number, notebook = CHAPTERS[module]
        lines += [f"## `bert_lit.{module}` (chapter {number})", "", f"Explained in {{doc}}`{notebook}`.", "",
                  "```{eval-rst}"]
        for name in by_module[module]:
            obj = getattr(importlib.import_module(f"bert_lit.{module}"), name)
            kind = "autoclass" if inspect.isclass(obj) else "autofunction"
            lines.append(f".. {kind}:: bert_lit.{module}.{name}")
        lines += ["```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[1] / "nbs" / "api.md")
    out.write_text(page())
