"""Checks nbval relies on: every code cell with outputs has an execution count, counts run 1..n in order."""
import json, sys
from pathlib import Path

bad = []
root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
for p in sorted(root.joinpath("nbs").glob("*.ipynb")):
    nb = json.loads(p.read_text())
    n = 0
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] != "code": continue
        if c.get("execution_count") is None:
            if c.get("outputs"): bad.append(f"{p.name} cell {i}: outputs but no execution_count")
            elif c["source"]: bad.append(f"{p.name} cell {i}: never executed (run tools/regen.sh)")
            continue
        n += 1
        if c["execution_count"] != n:
            bad.append(f"{p.name} cell {i}: execution_count {c['execution_count']}, expected {n} (run tools/regen.sh)")
if bad:
    print("\n".join(bad)); sys.exit(1)
print("every notebook was executed top to bottom in one go")
