"""Sphinx extension: hide nbdev's `#|` directives and nbval markers from the rendered book, and read docstrings
(written in the book's Markdown style) safely as reStructuredText on the API page.

- cells with `#| hide` or `#| default_exp` are dropped;
- `#| echo: false` becomes the `remove-input` tag (output shown, code hidden);
- every other `#|` line and `# NBVAL_*` marker line is stripped from the code shown.
"""
import json
import re

_DROP = ("hide", "default_exp")


def _directives(src):
    return [l[2:].strip() for l in src.splitlines() if l.startswith("#|")]


def _clean_notebook(text):
    nb = json.loads(text)
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            d = _directives(src)
            if any(x.split(":")[0].split()[0] in _DROP for x in d if x):
                continue
            if any(x.replace(" ", "") in ("echo:false", "hide_input") for x in d):
                tags = cell.setdefault("metadata", {}).setdefault("tags", [])
                if "remove-input" not in tags:
                    tags.append("remove-input")
            keep = [l for l in src.splitlines() if not l.startswith("#|") and not l.startswith("# NBVAL_")]
            cell["source"] = "\n".join(keep).strip("\n")
        cells.append(cell)
    nb["cells"] = cells
    return json.dumps(nb)


def _source_read(app, docname, source):
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        source[0] = _clean_notebook(source[0])


_CODE = re.compile(r"`([^`]+)`")


def _rst_line(line):
    "A docstring line in the book's style as reStructuredText: `code` as a literal, RST's markup characters escaped."
    parts = _CODE.split(line)          # even indices: prose; odd: code spans
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append("``" + part + "``")
        else:
            out.append(re.sub(r"([*|\\_`])", r"\\\1", part))
    return "".join(out)


def _docstring(app, what, name, obj, options, lines):
    lines[:] = [_rst_line(l) for l in lines]


def setup(app):
    app.connect("source-read", _source_read)
    app.connect("autodoc-process-docstring", _docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
