"""The checks that keep notebooks, package and book in sync can fail: break each on purpose in a copy."""
import json, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def copy_project(tmp_path):
    for name in ("settings.ini", "nbs", "bert_lit", "tools"):
        src = ROOT / name
        if src.is_dir(): shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else: shutil.copy2(src, tmp_path / name)
    return tmp_path


def run(*args, cwd=ROOT):
    return subprocess.run([PY, *map(str, args)], cwd=cwd, capture_output=True, text=True)


def first_cell(nb, tag):
    return next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and "".join(c["source"]).startswith(tag))


def test_export_in_sync_now():
    r = run("tools/check_export.py")
    assert r.returncode == 0, r.stdout + r.stderr


def test_editing_an_exported_cell_without_exporting_fails(tmp_path):
    root = copy_project(tmp_path)
    p = root / "nbs" / "index.ipynb"
    nb = json.loads(p.read_text())
    i = first_cell(nb, "#| export")
    nb["cells"][i]["source"] = "".join(nb["cells"][i]["source"]) + "\nANSWER = 42\n"
    p.write_text(json.dumps(nb))
    r = run(root / "tools" / "check_export.py", root)
    assert r.returncode == 1 and "__init__.py: differs" in r.stdout, r.stdout + r.stderr


def test_editing_the_package_by_hand_fails(tmp_path):
    root = copy_project(tmp_path)
    with open(root / "bert_lit" / "__init__.py", "a") as f: f.write("\n# hand edit\n")
    (root / "bert_lit" / "stray.py").write_text("x = 1\n")
    r = run(root / "tools" / "check_export.py", root)
    assert r.returncode == 1 and "stray.py: not produced by any notebook" in r.stdout, r.stdout


def test_changed_stored_output_fails_nbval(tmp_path):
    root = copy_project(tmp_path)
    p = root / "nbs" / "index.ipynb"
    nb = json.loads(p.read_text())
    out = next(o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]
               if o.get("name") == "stdout" and "segment" in "".join(o["text"]))
    out["text"] = "".join(out["text"]).replace("segment", "segmetn")
    p.write_text(json.dumps(nb))
    r = run("-m", "pytest", "--nbval", "--nbval-current-env", "-q", "-p", "no:cacheprovider", p, cwd=root)
    assert r.returncode == 1 and "1 failed" in r.stdout, r.stdout[-2000:]


def test_outputs_without_execution_count_fail(tmp_path):
    root = copy_project(tmp_path)
    p = root / "nbs" / "index.ipynb"
    nb = json.loads(p.read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and c["outputs"])
    cell["execution_count"] = None
    p.write_text(json.dumps(nb))
    r = run(root / "tools" / "check_notebooks.py", root)
    assert r.returncode == 1 and "outputs but no execution_count" in r.stdout, r.stdout
