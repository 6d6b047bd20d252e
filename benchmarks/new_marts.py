"""What the call centre's and the merchant ledger's marts add to a 1 % batch build, in wall time.

dbt runs 2 nodes at a time, so each node's own seconds (meta.build_nodes, what `make bench`
reports) overlap with the others' and overstate a node's cost. This measures the build itself,
with and without those marts, in pairs, from the same state:

1. copy the warehouse `make bench` left after its 1 % batch (benchmarks/.work/L/home_incremental);
2. make its last build undone: the builds after the one before the batch are deleted from meta,
   so the next build recomputes the batch (its pre-hooks delete what it rewrites: the same work);
3. run `loanwatch build`'s code in-process, alternately without (dbt's --exclude of fct_calls+
   int_holdout_overdue_days+ and fct_merchant_balances+) and with them; print each wall time and the differences.

    python benchmarks/new_marts.py [--home benchmarks/.work/L/home_incremental] [--pairs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXCLUDE = ["--exclude", "fct_calls+", "int_holdout_overdue_days+", "fct_merchant_balances+"]

ONE_BUILD = """
import sys, time, duckdb
from loanwatch.config import load_settings
import loanwatch.transform.build as B
home, without = sys.argv[1], sys.argv[2] == "without"
original = B.run_dbt
def run_dbt(settings, command, args, **kw):
    return original(settings, command, args + (EXCLUDE if without else []), **kw)
B.run_dbt = run_dbt
settings = load_settings(home)
con = duckdb.connect(str(settings.warehouse_path))
keep = con.execute("SELECT max(build_id) FROM meta.builds WHERE status = 'success' AND build_id < "
                   "(SELECT max(build_id) FROM meta.builds WHERE status = 'success')").fetchall()[0][0]
for table in ("builds", "build_nodes", "dq_results"):
    con.execute(f"DELETE FROM meta.{table} WHERE build_id > ?", [keep])
con.execute("UPDATE meta.builds SET project_hash = ? WHERE build_id = ?", [B.project_hash(settings), keep])
con.close()
started = time.perf_counter()
result = B.build(settings)
print(result.status, round(time.perf_counter() - started, 2))
""".replace("EXCLUDE", repr(EXCLUDE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default=str(ROOT / "benchmarks" / ".work" / "L" / "home_incremental"))
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    source = Path(args.home)
    if not (source / "warehouse.duckdb").exists():
        sys.exit(f"{source}: no warehouse; run `BENCH_SCALES=L make bench` first")
    with tempfile.TemporaryDirectory(dir=source.parent) as scratch:
        home = Path(scratch) / "home"
        shutil.copytree(source, home)
        pairs = []
        for _ in range(args.pairs):
            walls = {}
            for mode in ("without", "with"):
                out = subprocess.run([sys.executable, "-c", ONE_BUILD, str(home), mode], capture_output=True, text=True, check=True)
                status, seconds = out.stdout.split()[-2:]
                if status != "success":
                    sys.exit(f"the build {mode} the marts failed:\n{out.stderr[-2000:]}")
                walls[mode] = float(seconds)
            pairs.append(walls)
            print(f"without {walls['without']:6.1f} s   with {walls['with']:6.1f} s   added {walls['with'] - walls['without']:+5.1f} s",
                  flush=True)
    added = [p["with"] - p["without"] for p in pairs]
    print(f"added by the marts: median {statistics.median(added):+.1f} s, range {min(added):+.1f} to {max(added):+.1f} s "
          f"over {len(added)} pairs ({time.strftime('%Y-%m-%d')})")


if __name__ == "__main__":
    main()
