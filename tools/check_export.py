"""Fail if `nbdev_export` of nbs/ would change anything under bert_lit/ (notebooks are the source)."""
import filecmp, shutil, subprocess, sys, tempfile
from pathlib import Path

# Files under bert_lit/ that no notebook exports but a documented script generates (tests/ checks each is reproduced).
GENERATED = {"unicode_tables.json": "tools/make_unicode_tables.py"}

root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    shutil.copy2(root / "settings.ini", tmp)
    shutil.copytree(root / "nbs", tmp / "nbs")
    (tmp / "bert_lit").mkdir()   # export into an empty package: what the notebooks alone produce
    subprocess.run([str(Path(sys.executable).parent / "nbdev_export")], cwd=tmp, check=True)
    ignore = ["__pycache__"]
    diffs = []
    def walk(a, b, rel=""):
        cmp = filecmp.dircmp(a, b, ignore=ignore)
        diffs.extend(f"{rel}{n}: only in the exported notebooks" for n in cmp.left_only)
        diffs.extend(f"{rel}{n}: not produced by any notebook" for n in cmp.right_only if f"{rel}{n}" not in GENERATED)
        for n in cmp.common_files:
            if (Path(a) / n).read_bytes() != (Path(b) / n).read_bytes():
                diffs.append(f"{rel}{n}: differs from what nbs/ exports")
        for d in cmp.common_dirs:
            walk(Path(a) / d, Path(b) / d, f"{rel}{d}/")
    walk(tmp / "bert_lit", root / "bert_lit")
diffs.extend(f"{n}: missing (run {script})" for n, script in GENERATED.items() if not (root / "bert_lit" / n).is_file())
if diffs:
    print("bert_lit/ is out of sync with nbs/ (edit the notebooks, run nbdev_export, commit both):")
    print("\n".join("  " + d for d in diffs))
    sys.exit(1)
print("bert_lit/ matches nbdev_export of nbs/")
