"""`make bench-postgres`, `make bench-spark`: the same portfolio on DuckDB and on another engine,
side by side in one run.

PostgreSQL: a throwaway server (Debian's package, as the tests start it: tests/pg.py) on this
machine. Spark: in loanwatch's process, `local[1]` and `local[2]` (the speed-up of a second core,
as a ratio in one run). For each engine, in its own home: 99 of 100 chronological parts ingested (rows/s; on
PostgreSQL that includes landing the batches on the server), a full build (on PostgreSQL: dbt
there, then the export of what readers need into the serving snapshot), then the last ~1 % part
ingested and built incrementally, and the dashboard's filter query on the snapshot. Each stage is
its own `loanwatch` process (wall time and peak memory, as `make bench`).

    python benchmarks/engines.py --clients 50000 --engines duckdb,postgres     (M, the default)
    python benchmarks/engines.py --engines duckdb,spark:local[1],spark:local[2]
    python benchmarks/engines.py --engines spark:local[2] --base HEAD~1     (a change, paired with its base)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.paired import checked_out  # noqa: E402
from benchmarks.run import END, count_rows, query_times, run_measured  # noqa: E402


def export_seconds(home: Path) -> float:
    """The last build's export into the snapshot (another engine's; none on DuckDB)."""
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("""SELECT coalesce(sum(seconds), 0) FROM meta.build_nodes
                              WHERE node = 'export' AND build_id = (SELECT max(build_id) FROM meta.builds)""").fetchone()[0]
    finally:
        con.close()


def stages(lw: str, root: Path, name: str, env: dict, bulk: list[Path], last: Path) -> dict:
    home = root / name
    env = {**env, "LOANWATCH_HOME": str(home), "BENCH_WORK": str(root)}
    res: dict = {"engine": name}
    rows = sum(count_rows(p) for p in bulk)
    t, mem, _ = run_measured([lw, "ingest", *map(str, bulk)], env)
    res.update(ingest_rows=rows, ingest_s=t, ingest_rows_per_s=rows / t, ingest_mib=mem)
    t, mem, _ = run_measured([lw, "build"], env)
    res.update(build_s=t, build_mib=mem, build_export_s=export_seconds(home))
    t1, _, _ = run_measured([lw, "ingest", str(last)], env)
    t2, mem, _ = run_measured([lw, "build"], env)
    res.update(batch_rows=count_rows(last), batch_ingest_s=t1, batch_build_s=t2, batch_total_s=t1 + t2, batch_mib=mem,
               batch_export_s=export_seconds(home))
    q = query_times(home / "serving.duckdb")
    res.update(filter_query_s=q["filter_query_s"], overview_query_s=q["overview_query_s"], loans=q["loans"],
               snapshot_rows=q["snapshot_rows"])
    for path in ("stderr.txt",):
        text = (root / path).read_text()
        if "error" in text.lower():
            res["stderr"] = text[-500:]
    return res


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50_000)
    parser.add_argument("--work", type=Path, default=ROOT / ".bench" / "engines")
    parser.add_argument("--engines", default="duckdb,postgres", help="duckdb, postgres, spark:<master>, comma-separated")
    parser.add_argument("--base", help="a commit to pair with: each engine runs this commit's code (a git worktree), "
                                       "then the working tree's, on the same parts; prints head / base")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        sources = {"": None}
        if args.base:  # (the worktree beside the work folder, which is emptied below)
            tree = stack.enter_context(checked_out({"base": (args.work.parent / f"{args.work.name}_base_tree", args.base)}))
            sources = {"-base": tree["base"], "-head": ROOT / "src"}
        run_engines(args, parser, sources)


def run_engines(args, parser, sources: dict[str, Path | None]) -> None:
    """Each engine of --engines, once per source tree (suffix: its src folder; None: the installed code)."""
    lw = str(ROOT / ".venv" / "bin" / "loanwatch")
    root = args.work
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    env = {**os.environ, "BENCH_WORK": str(root)}
    run_measured([lw, "generate", "--clients", str(args.clients), "--seed", "1", "--end", END, "--out", str(root / "raw")], env)
    run_measured([lw, "split", str(root / "raw"), "--parts", "100", "--out", str(root / "parts")], env)
    parts = sorted((root / "parts").iterdir())
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    stop = None
    results = []
    try:
        for name in engines:
            for suffix, src in sources.items():
                if name == "duckdb":
                    extra = {}
                elif name == "postgres":
                    from tests.pg import engine_env, new_database, start_server

                    if stop is None:
                        server, stop = start_server()
                    extra = engine_env(new_database(server, "bench" + suffix.replace("-", "_")))
                elif name.startswith("spark:"):
                    extra = {"LOANWATCH_WAREHOUSE__ENGINE": "spark", "LOANWATCH_SPARK__MASTER": name.split(":", 1)[1]}
                else:
                    parser.error(f"unknown engine {name!r}: duckdb, postgres, spark:<master>")
                if src is not None:
                    extra["PYTHONPATH"] = str(src)
                # (a folder name without brackets: Hadoop reads them in a path as a glob)
                folder = name.replace(":", "-").replace("[", "-").replace("]", "") + suffix
                results.append(stages(lw, root, folder, {**env, **extra}, parts[:-1], parts[-1]))
                print(json.dumps(results[-1]), flush=True)  # each as it ends: a long run stopped early keeps them
    finally:
        if stop:
            stop()
    print(f"clients {args.clients:,}, " + "; ".join(
        f"{r['engine']}: ingest {r['ingest_rows_per_s']:,.0f} rows/s, full build {r['build_s']:.1f} s, "
        f"1 % batch {r['batch_total_s']:.1f} s, filter query {r['filter_query_s'] * 1000:.0f} ms" for r in results))
    by_name = {r["engine"]: r for r in results}
    for name, head in by_name.items():
        base = by_name.get(name.removesuffix("-head") + "-base") if name.endswith("-head") else None
        if base:
            print(f"{name.removesuffix('-head')} head / base: full build {head['build_s'] / base['build_s']:.3f}, "
                  f"1 % batch build {head['batch_build_s'] / base['batch_build_s']:.3f}, "
                  f"batch / full build {head['batch_build_s'] / head['build_s']:.0%} against "
                  f"{base['batch_build_s'] / base['build_s']:.0%}")
    if "spark-local-1" in by_name and "spark-local-2" in by_name:
        one, two = by_name["spark-local-1"], by_name["spark-local-2"]
        print(f"Spark local[1] / local[2]: full build {one['build_s'] / two['build_s']:.2f}, "
              f"1 % batch {one['batch_total_s'] / two['batch_total_s']:.2f}")

if __name__ == "__main__":
    main()
