"""The built book, opened in a real (headless) browser: pages exist, maths rendered, nothing fetched from outside."""
import contextlib, functools, http.server, json, re, shutil, subprocess, sys, tempfile, threading
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
