"""The scaling case of `make bench` (issue 42): the whole pipeline, and the same data in 5
chronological parts, at about 100,000 and 1,000,000 payments; and the fixed cost: a 100-client
build and a build with nothing new.

The data is the issue's: `generate --seed 1 --start 2024-12-01 --end 2026-11-30`, 11,000 clients
(about 100k payments) and 110,000 (about 1.0M). Every stage is its own `loanwatch` process:

- whole pipeline: a fresh home ingests every file, builds, and runs `report overdue-monthly`;
- 5 parts: `split --parts 5`, then a fresh home ingests and builds each part in turn; each part's
  build against the whole pipeline's full build;
- fixed cost: 100 clients ingested and built, then `build` again with nothing new.

The seed project's own code (BgKr-97/LigaProject) was measured on the same data outside this
project (issue 42): its seconds are below as SEED_SECONDS, for the ratios.

    python benchmarks/scaling.py              (both sizes; --sizes 100k or 1M for one)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ROOT, count_rows, loanwatch, node_seconds, run_measured  # noqa: E402

SIZES = {"100k": 11_000, "1M": 110_000}
START, END = "2024-12-01", "2026-11-30"
PARTS = 5
# The seed project's code on these data (issue 42, measured outside the project, 2026-12-03):
# load + build + report, and the same in 5 incremental parts (the middle of 657-687 s).
SEED_SECONDS = {"100k": {"whole": 26.5, "parts": 59.0}, "1M": {"whole": 294.0, "parts": 667.0}}
TARGET_RATIO = {"100k": 5.0, "1M": 30.0}


def bench_size(name: str, clients: int, work: Path) -> dict:
    lw = loanwatch()
    root = work / f"scaling_{name}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    env = {**os.environ, "BENCH_WORK": str(root)}
    res: dict = {"size": name, "scale": f"scaling {name}", "clients": clients}
    run_measured([lw, "generate", "--clients", str(clients), "--seed", "1", "--start", START, "--end", END,
                  "--out", str(root / "raw")], env)
    res.update(raw_rows=count_rows(root / "raw"), payments=count_rows(root / "raw", "payments*.jsonl"))

    whole = {**env, "LOANWATCH_HOME": str(root / "whole")}
    ingest = run_measured([lw, "ingest", str(root / "raw")], whole)
    build = run_measured([lw, "build"], whole)
    report = run_measured([lw, "report", "overdue-monthly", "--format", "csv"], whole)
    res.update(whole_ingest_s=ingest[0], whole_build_s=build[0], whole_report_s=report[0],
               whole_s=ingest[0] + build[0] + report[0], whole_peak_mib=max(ingest[1], build[1], report[1]),
               whole_nodes=node_seconds(root / "whole"))

    run_measured([lw, "split", str(root / "raw"), "--parts", str(PARTS), "--out", str(root / "parts")], env)
    home = {**env, "LOANWATCH_HOME": str(root / "parts_home")}
    parts = []
    for part in sorted((root / "parts").iterdir()):
        i = run_measured([lw, "ingest", str(part)], home)
        b = run_measured([lw, "build"], home)
        nodes = node_seconds(root / "parts_home")
        parts.append({"rows": count_rows(part), "ingest_s": i[0], "build_s": b[0], "peak_mib": max(i[1], b[1]),
                      "phases": nodes["phases"], "slowest": nodes["slowest"]})
    report = run_measured([lw, "report", "overdue-monthly", "--format", "csv"], home)
    res.update(parts=parts, parts_report_s=report[0],
               parts_s=sum(p["ingest_s"] + p["build_s"] for p in parts) + report[0])
    seed = SEED_SECONDS[name]
    res.update(vs_seed_whole=seed["whole"] / res["whole_s"], vs_seed_parts=seed["parts"] / res["parts_s"],
               last_part_over_full=parts[-1]["build_s"] / res["whole_build_s"])
    shutil.rmtree(root / "raw")
    shutil.rmtree(root / "parts")
    return res


def fixed_cost(work: Path) -> dict:
    """100 clients: ingest and build, then a build with nothing new (best of 3)."""
    lw = loanwatch()
    root = work / "scaling_100"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    env = {**os.environ, "BENCH_WORK": str(root), "LOANWATCH_HOME": str(root / "home")}
    run_measured([lw, "generate", "--clients", "100", "--seed", "1", "--start", START, "--end", END,
                  "--out", str(root / "raw")], env)
    run_measured([lw, "ingest", str(root / "raw")], env)
    build = run_measured([lw, "build"], env)
    noop = min(run_measured([lw, "build"], env)[0] for _ in range(3))
    return {"size": "100 clients", "scale": "scaling 100", "build_s": build[0], "noop_build_s": noop,
            "phases": node_seconds(root / "home")["phases"]}


def bench(sizes: list[str], work: Path) -> list[dict]:
    results = [fixed_cost(work)]
    for name in sizes:
        print(f"== scaling {name} ({SIZES[name]:,} clients)", flush=True)
        results.append(bench_size(name, SIZES[name], work))
        print(f"   whole {results[-1]['whole_s']:.1f} s, 5 parts {results[-1]['parts_s']:.1f} s, "
              f"5th part's build / full build {results[-1]['last_part_over_full']:.0%}", flush=True)
    return results


def markdown(results: list[dict]) -> list[str]:
    """The scaling tables for docs/benchmarks.md."""
    fixed = next((r for r in results if r.get("size") == "100 clients"), None)
    sizes = [r for r in results if r.get("size") in SIZES]
    lines = [
        "### Scaling: the whole pipeline and 5 parts, against the seed project's code (issue 42)",
        "",
        f"`generate --seed 1 --start {START} --end {END}`: 11,000 clients (about 100k payments) and 110,000",
        "(about 1.0M). Whole: a fresh home ingests every file, builds and runs `report overdue-monthly`.",
        f"{PARTS} parts: `split --parts {PARTS}`, each part ingested and built in turn, then the report. The seed",
        "project's seconds (BgKr-97/LigaProject, measured on the same data outside this project, issue 42) give",
        "the ratios; targets: at least 5x at 100k and 30x at 1.0M, and the 5th part's build at most 30 % of",
        "a full build.",
        "",
        "| payments | clients | whole: ingest + build + report s | vs the seed's code | 5 parts s | vs the seed's code | builds of the parts s | 5th part's build / full build | peak MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sizes:
        builds = ", ".join(f"{p['build_s']:.1f}" for p in r["parts"])
        lines.append(
            f"| {r['payments']:,} | {r['clients']:,} | {r['whole_ingest_s']:.1f} + {r['whole_build_s']:.1f} + "
            f"{r['whole_report_s']:.1f} = {r['whole_s']:.1f} | {r['vs_seed_whole']:.1f}x (target {TARGET_RATIO[r['size']]:.0f}x) | "
            f"{r['parts_s']:.1f} | {r['vs_seed_parts']:.1f}x | {builds} | {r['last_part_over_full']:.0%} | "
            f"{max([r['whole_peak_mib']] + [p['peak_mib'] for p in r['parts']]):,.0f} |")
    if fixed:
        lines += ["", f"The fixed cost, 100 clients: a build {fixed['build_s']:.1f} s "
                      f"(dbt import {fixed['phases'].get('dbt import', 0):.1f}, start {fixed['phases'].get('dbt start', 0):.1f}, "
                      f"nodes {fixed['phases'].get('dbt nodes', 0):.1f}); the same build again with nothing new "
                      f"{fixed['noop_build_s']:.2f} s (target 1 s)."]
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100k 1M")
    parser.add_argument("--work", default=str(ROOT / "benchmarks" / ".work"))
    args = parser.parse_args()
    if unknown := [n for n in args.sizes.split() if n not in SIZES]:
        parser.error(f"unknown size {', '.join(unknown)}: sizes are {' '.join(SIZES)}")
    results = bench(args.sizes.split(), Path(args.work))
    print("\n".join(markdown(results)))


if __name__ == "__main__":
    main()
