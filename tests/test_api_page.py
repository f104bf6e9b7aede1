"""The book's API reference page (nbs/api.md, written by tools/api_page.py): current, and listing every public name."""
import importlib.util
from pathlib import Path

import bert_lit

ROOT = Path(__file__).resolve().parents[1]


def test_the_api_page_is_current_and_lists_every_public_name():
    spec = importlib.util.spec_from_file_location("api_page", ROOT / "tools" / "api_page.py")
    api_page = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(api_page)
    committed = (ROOT / "nbs" / "api.md").read_text()
    assert api_page.page() == committed, "nbs/api.md is stale: run python tools/api_page.py"
    for name, module in bert_lit._exports.items():
        assert f"bert_lit.{module}.{name}\n" in committed, name
    assert "- file: nbs/api" in (ROOT / "_toc.yml").read_text()


def test_every_public_name_has_a_docstring():
    missing = [n for n in bert_lit._exports if not (getattr(bert_lit, n).__doc__ or "").strip()]
    assert not missing, missing
