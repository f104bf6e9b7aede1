"""The book's diagrams (nbs/figures, drawn by tools/draw_diagrams.py), the figures that show them, and the glossary."""
import importlib.util, json, re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "nbs" / "figures"
SVG = "{http://www.w3.org/2000/svg}"
EXPECTED = ["embeddings.svg", "encoder_layer.svg", "heads.svg", "masking.svg", "multihead.svg", "stack.svg",
            "unpadded.svg"]
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def svgs():
    return sorted(FIGURES.glob("*.svg"))


def draw_module():
    spec = importlib.util.spec_from_file_location("draw_diagrams", ROOT / "tools" / "draw_diagrams.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_diagram_is_there():
    assert [p.name for p in svgs()] == EXPECTED


@pytest.mark.parametrize("path", svgs(), ids=lambda p: p.name)
def test_svg_is_accessible_and_fits_the_page(path):
    root = ET.parse(path).getroot()                       # parses as XML
    assert root.tag == SVG + "svg"
    title, desc = root.find(SVG + "title"), root.find(SVG + "desc")
    assert title is not None and title.text.strip(), f"{path.name}: no <title>"
    assert desc is not None and len(desc.text.strip()) > 40, f"{path.name}: no <desc> (the alt text)"
    x, y, w, h = map(float, root.get("viewBox").split())
    assert (x, y) == (0, 0) and float(root.get("width")) == w <= 720, f"{path.name}: wider than the text column"
    sizes = []

    def walk(el, inherited):                              # font-size inherits from the enclosing element
        size = float(el.get("font-size", inherited)) if el.get("font-size", inherited) is not None else None
        if el.tag in (SVG + "text", SVG + "tspan"):
            assert size is not None, f"{path.name}: text without a font-size"
            sizes.append(size)
        for child in el: walk(child, size)
    walk(root, root.get("font-size"))
    # the book shows a 720-unit-wide figure 660 px wide (a 1280-px window): 13 units become 11.9 px, the 12 px asked for
    assert sizes and min(sizes) >= 13, f"{path.name}: text of {min(sizes)} px (at least 13, 12 on the page)"


def test_text_size_check_can_fail(tmp_path):
    "The walk above finds a small tspan inside a large text (the case a drawing mistake would produce)."
    bad = ('<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50" viewBox="0 0 100 50"><title>t</title>'
           f'<desc>{"d" * 50}</desc><text font-size="14">a<tspan font-size="9">b</tspan></text></svg>')
    (tmp_path / "bad.svg").write_text(bad)
    with pytest.raises(AssertionError, match="text of 9.0 px"):
        test_svg_is_accessible_and_fits_the_page(tmp_path / "bad.svg")


def test_drawing_again_reproduces_the_committed_files(tmp_path):
    names = draw_module().main(tmp_path)
    assert names == EXPECTED
    for name in names:
        assert (tmp_path / name).read_bytes() == (FIGURES / name).read_bytes(), \
            f"{name} differs from tools/draw_diagrams.py's output: run `python tools/draw_diagrams.py`"


def test_a_label_that_does_not_fit_is_refused():
    mod = draw_module()
    s = mod.Svg(100, "t", "d")
    with pytest.raises(ValueError, match="does not fit"):
        s.box(0, 0, 40, 20, "data", "a label far too long for its box")
    with pytest.raises(ValueError, match="outside the picture"):
        s.text(700, 20, "a label that runs off the right edge", anchor="start")


def book_sources():
    "(name, markdown text) of every page of the book that can hold a figure."
    for p in sorted((ROOT / "nbs").glob("*.ipynb")):
        cells = json.loads(p.read_text())["cells"]
        yield p.name, "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    for p in sorted((ROOT / "nbs").glob("*.md")):
        yield p.name, p.read_text()


def plot_figures():
    "(page, name, caption, alt) of every code cell whose output MyST-NB shows as a figure (its mystnb metadata)."
    for p in sorted((ROOT / "nbs").glob("*.ipynb")):
        for c in json.loads(p.read_text())["cells"]:
            meta = c.get("metadata", {}).get("mystnb", {})
            if "figure" in meta:
                yield p.name, meta["figure"].get("name", ""), meta["figure"].get("caption", ""), meta.get("image", {}).get("alt", "")


def test_every_plot_is_a_captioned_figure():
    "Every cell that draws an image is a numbered figure with a caption and alt text (not the file's path)."
    for p in sorted((ROOT / "nbs").glob("*.ipynb")):
        for c in json.loads(p.read_text())["cells"]:
            if c["cell_type"] == "code" and any("image/png" in o.get("data", {}) for o in c.get("outputs", [])):
                meta = c.get("metadata", {}).get("mystnb", {})
                assert meta.get("figure", {}).get("caption") and meta.get("image", {}).get("alt"), \
                    f"{p.name}: a plot without caption or alt text: {''.join(c['source'])[:80]!r}"


FIGURE = re.compile(r"^(`{3,})\{figure\}[ \t]*(\S*)[ \t]*\n(.*?)^\1[ \t]*$", re.M | re.S)


def figures(text):
    "(file, options, caption) of every {figure} directive in a MyST text."
    for m in FIGURE.finditer(text):
        body = m.group(3)
        opts = dict(re.findall(r"^:([\w-]+):[ \t]*(.*)$", body, re.M))
        caption = "\n".join(l for l in body.splitlines() if not re.match(r"^:[\w-]+:", l)).strip()
        yield m.group(2), opts, caption


def body_of(text, file):
    "The options and caption of the figure directive that shows `file`."
    return next(m.group(3) for m in FIGURE.finditer(text) if m.group(2) == file)


def test_figure_parser_reads_a_directive():
    text = "x\n\n```{figure} figures/a.svg\n:name: fig-a\n:alt: A picture.\n:width: 100%\n\nThe caption.\n```\n"
    assert list(figures(text)) == [("figures/a.svg", {"name": "fig-a", "alt": "A picture.", "width": "100%"},
                                    "The caption.")]


def test_every_figure_names_a_file_and_has_alt_text_and_a_caption():
    found, names, refs = [], set(), set()
    for page, text in book_sources():
        refs |= {(page, r) for r in re.findall(r"\{numref\}`([^`<]+)`", text)}
        for file, opts, caption in figures(text):
            found.append(file)
            assert (ROOT / "nbs" / file).is_file(), f"{page}: figure {file} does not exist"
            assert opts.get("alt", "").strip(), f"{page}: figure {file} has no :alt:"
            assert "#" not in body_of(text, file), f"{page}: figure {file}: MyST reads ' #' in an option as a comment"
            assert caption, f"{page}: figure {file} has no caption"
            names.add(opts.get("name"))
    assert {"figures/stack.svg", "figures/embeddings.svg", "figures/multihead.svg", "figures/masking.svg"} <= set(found)
    plots = list(plot_figures())
    for page, name, caption, alt in plots:                 # the notebooks' plots: MyST-NB figures of cell metadata
        assert caption.strip() and alt.strip() and not alt.endswith((".png", ".svg")), (page, name)
        names.add(name)
    assert len(plots) >= 18
    unknown = sorted((p, r) for p, r in refs if r.startswith("fig-") and r not in names)
    assert not unknown, f"{{numref}} to figures that no page defines: {unknown}"


def glossary_rows():
    text = (ROOT / "nbs" / "glossary.md").read_text()
    rows = [l for l in text.splitlines() if l.startswith("|")]
    return text, [[c.strip() for c in r.strip("|").split("|")] for r in rows[2:]]   # without header and rule


def test_glossary_has_forty_bilingual_terms():
    text, rows = glossary_rows()
    assert text.startswith("# Glossary · 术语表")
    assert len(rows) >= 40, f"{len(rows)} terms"
    for row in rows:
        assert len(row) == 4 and all(row), f"a row without four cells: {row}"
        assert HAN.search(row[1]), f"no Chinese term for {row[0]!r}"
        assert "{doc}`" in row[3], f"{row[0]!r}: no link to a chapter"
    pages = {p.stem for p in (ROOT / "nbs").glob("*.ipynb")}
    links = {t for row in rows for t in re.findall(r"<([^>]+)>`", row[3])}
    assert links and links <= pages, f"links to pages that do not exist: {sorted(links - pages)}"
    english = [re.sub(r"[^a-z ]", "", row[0].lower()) for row in rows]         # "[CLS] / ..." sorts as "cls"
    assert english == sorted(english) and len(set(english)) == len(english), "terms sorted and unique"


def test_glossary_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    assert re.search(r"^\s*-\s*file:\s*nbs/glossary\s*$", toc, re.M)
    config = (ROOT / "_config.yml").read_text()
    assert "cjk.css" in config and (ROOT / "_static" / "cjk.css").is_file()
    assert re.search(r"^\s*numfig:\s*true", config, re.M), "numfig: true, else {numref} has no numbers"
