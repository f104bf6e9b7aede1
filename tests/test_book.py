"""The built book, opened in a real (headless) browser: pages exist, maths rendered, nothing fetched from outside."""
import contextlib, functools, html, http.server, json, re, shutil, subprocess, sys, tempfile, threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"


def toc_pages():
    "Every page named in _toc.yml (root and chapters), as paths relative to the HTML root."
    names = re.findall(r"^\s*(?:root|-\s*file):\s*(\S+)", (ROOT / "_toc.yml").read_text(), re.M)
    return [n + ".html" for n in names]


@contextlib.contextmanager
def serve(directory):
    "Serve a folder on the loopback interface; yield its base URL."
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try: yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally: httpd.shutdown()


@pytest.fixture(scope="module")
def chromium():
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if exe is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` (tools/setup.sh does it when run as root)")
    return exe


@pytest.fixture(scope="module")
def book():
    "Base URL of the built book (built first if there is no build)."
    if not (HTML / "index.html").exists():
        subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "--quiet"], check=True)
    with serve(HTML) as url:
        yield url


def open_page(chromium, url):
    """Load url headless; return the DOM after scripts ran, and the URLs the *page* requested.

    Chromium's net log records every request; those made on behalf of the page carry the page's
    site in their network isolation key (the browser's own background requests do not)."""
    site = "{0.scheme}://{0.hostname}".format(urlparse(url))
    with tempfile.TemporaryDirectory() as tmp:
        netlog = Path(tmp) / "net.json"
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
               "--disable-features=AutofillServerCommunication",       # a page's <select> would ask the browser's service
               f"--user-data-dir={tmp}/profile", f"--log-net-log={netlog}", "--virtual-time-budget=15000",
               "--dump-dom", url]
        dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
        log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = {e["params"]["url"] for e in log["events"]
            if e["type"] == start and e.get("params", {}).get("network_isolation_key", "").startswith(site)}
    return dom, urls


def outside(urls):
    return sorted(u for u in urls if urlparse(u).hostname not in ("127.0.0.1", "localhost"))


def test_every_toc_page_was_built():
    missing = [p for p in toc_pages() if not (HTML / p).exists()]
    assert not missing, f"pages in _toc.yml not built: {missing}"


def test_request_check_catches_an_outside_request(chromium, tmp_path):
    "The check below can fail: a page that loads a script from another host is caught."
    (tmp_path / "p.html").write_text('<html><body><main>x</main><script src="http://cdn.invalid/m.js"></script></body></html>')
    with serve(tmp_path) as url:
        _, urls = open_page(chromium, f"{url}/p.html")
    assert outside(urls) == ["http://cdn.invalid/m.js"]


@pytest.mark.parametrize("page", toc_pages())
def test_page_renders_offline(chromium, book, page):
    dom, urls = open_page(chromium, f"{book}/{page}")
    assert "<main" in dom and len(dom) > 5000, "the page did not load"
    assert not outside(urls), f"{page} requested outside hosts: {outside(urls)}"
    has_maths = 'class="math notranslate' in (HTML / page).read_text()     # what Sphinx made of $...$ and $$...$$
    visible = re.sub(r"<script.*?</script>", "", dom, flags=re.S)
    if has_maths:                                        # Sphinx loads MathJax only on pages with maths
        assert any("/_static/mathjax/" in u for u in urls), "MathJax was not loaded from the book's own files"
        assert "<mjx-container" in dom, f"{page}: no rendered maths (MathJax did not run)"
    assert "\\frac" not in visible and "\\sqrt" not in visible, f"{page}: raw TeX left on the page"
    assert "#| " not in visible, f"{page}: an nbdev directive is shown"


# What a reader at 1280 px sees: every code, output and table block and every display equation measured against
# its box. The page is opened inside a same-origin frame of that width; a script in the frame's parent waits for
# MathJax, measures, and writes the result into its own DOM, which --dump-dom returns.
MEASURE = """<!doctype html><html><body style="margin:0">
<iframe id="f" src="PAGE" style="width:1280px;height:1000px;border:0"></iframe><pre id="out">pending</pre>
<script>
const f = document.getElementById("f");
f.onload = async () => {
  const w = f.contentWindow, d = f.contentDocument;
  if (w.MathJax && w.MathJax.startup) { try { await w.MathJax.startup.promise; } catch (e) {} }
  await new Promise(r => setTimeout(r, 500));
  const main = d.querySelector("main") || d.body, column = main.querySelector("article") || main;
  const limit = column.getBoundingClientRect().right + 1, where = e => (e.textContent || "").trim().slice(0, 60);
  const over = [];
  for (const e of main.querySelectorAll("pre")) {
    if (e.closest("mjx-container")) continue;
    if (e.scrollWidth > e.clientWidth + 1) over.push(["block", where(e)]);
  }
  for (const e of main.querySelectorAll("table")) {
    if (e.getBoundingClientRect().right > limit) over.push(["table", where(e)]);
  }
  for (const e of main.querySelectorAll("mjx-container[display='true'], mjx-container[display]")) {
    const box = e.getBoundingClientRect(), inner = e.firstElementChild ? e.firstElementChild.getBoundingClientRect() : box;
    if (inner.right > limit || box.right > limit || e.scrollWidth > e.clientWidth + 1) over.push(["equation", where(e)]);
  }
  const figures = [...main.querySelectorAll("img")].map(i => [i.getAttribute("src"), i.getAttribute("alt") || ""]);
  document.getElementById("out").textContent = JSON.stringify({over, figures, column: column.clientWidth});
};
</script></body></html>"""


def measure_page(chromium, book_url, page, folder):
    "Overflowing blocks, tables and equations of one page at 1280 px: {'over': [[kind, text]], 'figures', 'column'}."
    (Path(folder) / "measure.html").write_text(MEASURE.replace("PAGE", f"/{page}"))
    dom, _ = open_page(chromium, f"{book_url}/_measure/measure.html")
    found = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    text = found[1].replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return json.loads(text)


@pytest.fixture(scope="module")
def measured_book(book):
    "The built book with the measuring page beside it (removed after the tests)."
    folder = HTML / "_measure"
    folder.mkdir(exist_ok=True)
    yield book, folder
    shutil.rmtree(folder, ignore_errors=True)


def test_width_check_catches_a_wide_block(chromium, measured_book):
    "The measurement can fail: a page with a 300-column code line and a wide equation is caught."
    book, folder = measured_book
    (folder / "wide.html").write_text("<html><body><main><article style='width:700px'><pre>" + "x" * 300 +
                                      "</pre><table style='width:2000px'><tr><td>t</td></tr></table></article></main></body></html>")
    result = measure_page(chromium, book, "_measure/wide.html", folder)
    assert [k for k, _ in result["over"]] == ["block", "table"], result


@pytest.mark.parametrize("page", toc_pages())
def test_page_fits_at_1280_px(chromium, measured_book, page):
    "No code, output or table block wider than its box, no display equation past the text column; figures have alt text."
    book, folder = measured_book
    result = measure_page(chromium, book, page, folder)
    assert result["column"] > 500, result
    assert not result["over"], f"{page}: {len(result['over'])} blocks wider than the column: {result['over'][:8]}"
    assert all(alt and not alt.endswith((".png", ".svg")) for _, alt in result["figures"]), result["figures"]


@pytest.mark.parametrize("page", [p for p in toc_pages() if p[4:6].isdigit()])
def test_solutions_are_folded_and_tables_are_tables(page):
    "Each chapter's solutions sit in folded cells (a reader opens them), and its results tables render as HTML tables."
    text = (HTML / page).read_text()
    cells = text.split('<div class="cell ')[1:]                   # each cell's classes, then its HTML up to the next cell
    solutions = [c.split('"', 1)[0] for c in cells if re.search(r'<span class="c1"># Solution\b', c)]
    if re.search(r"<h2>[^<]*Exercise", text):
        assert solutions and all("tag_hide-cell" in t for t in solutions), (page, solutions)
    outputs = [html_text(pre) for c in cells for out in c.split('class="cell_output')[1:]
               for pre in re.findall(r"<pre>(.*?)</pre>", out, re.S)]
    monospace = [o for o in outputs if results_table_in_text(o)]
    assert not monospace, f"{page}: {len(monospace)} results tables printed as text, e.g. {monospace[0][:300]}"


NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+(e[-+]?\d+)?(%|s|sd)?$")


def html_text(fragment):
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def results_table_in_text(text) -> bool:
    "Four or more consecutive lines that each hold a row of numbers in columns: a table printed as text."
    run = 0
    for line in filter(str.strip, text.splitlines()):
        fields, tokens = re.split(r"\s{2,}", line.strip()), [t.strip("(),") for t in line.split()]
        numeric = sum(bool(NUMBER.match(t)) for t in tokens)
        row = (len(fields) >= 3 and numeric >= 3) or (len(fields) >= 4 and sum(bool(NUMBER.match(f)) for f in fields) >= 2)
        run = run + 1 if row else 0
        if run >= 4:
            return True
    return False


def test_table_check_catches_a_printed_table():
    "The check above can fail: the ablation table as chapter 8 printed it before, and not a list of tokens."
    printed = """recipe          accuracy  vs reference  steps     tokens   change
lr 2e-3            0.125      +17.1 sd    806  3,057,899   peak learning rate 2e-3
batch 16           0.124      +15.3 sd   1614  3,061,817   16 sequences per step
budget recipe      0.115       +5.0 sd    686  2,639,603   no NSP, no dropout
no dropout         0.113       +1.9 sd    806  3,057,899   dropout 0 instead of 0.1"""
    assert results_table_in_text(printed)
    assert not results_table_in_text("['un', '##aff', '##able']\n" * 6)


VIEW = """<!doctype html><html><body><iframe id="f" src="PAGE" style="width:1280px;height:1000px;border:0"></iframe>
<pre id="out">pending</pre><script>
const f = document.getElementById("f");
f.onload = async () => {
  await new Promise(r => setTimeout(r, 500));
  const d = f.contentDocument, view = d.querySelector(".attention-view"), out = {};
  if (view) {
    out.ready = view.dataset.ready; out.layers = view.querySelector(".av-layer").options.length;
    out.heads = view.querySelector(".av-head").options.length; out.all = +view.dataset.lines;
    const q = view.querySelectorAll(".av-query")[3];
    q.dispatchEvent(new MouseEvent("mouseover")); out.hovered = +view.dataset.lines;
    out.weights = [...view.querySelectorAll(".av-line")].map(l => +l.dataset.weight);
    view.querySelectorAll(".av-query")[3].dispatchEvent(new MouseEvent("mouseout")); out.after = +view.dataset.lines;
    const layer = view.querySelector(".av-layer"); layer.value = "5"; layer.dispatchEvent(new Event("change"));
    out.layer5 = +view.dataset.lines;
  }
  document.getElementById("out").textContent = JSON.stringify(out);
};
</script></body></html>"""


def test_attention_view_works_in_the_page(chromium, measured_book):
    "Chapter 6's interactive head view: layers and heads to pick, and hovering a token shows only its own lines."
    book, folder = measured_book
    (folder / "view.html").write_text(VIEW.replace("PAGE", "/nbs/06_pretrained.html"))
    dom, urls = open_page(chromium, f"{book}/_measure/view.html")
    assert not outside(urls)
    text = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)[1].replace("&quot;", '"')
    view = json.loads(text)
    assert view.get("ready") == "1", view
    assert view["layers"] == 6 and view["heads"] == 12
    assert 0 < view["hovered"] < view["all"] and view["after"] == view["all"] and view["layer5"] > 0
    assert all(0.01 < w <= 1 for w in view["weights"]) and 0.8 < sum(view["weights"]) < 1.01   # one query's row: lines above 0.01, 3 decimals
