"""`make bench-paired BASE=<commit>`: a commit (HEAD) against another, side by side in one run.

The machine drifts 15-25 % between days, so a change is judged against its base measured in the
same run, alternating base and head: for each scale, the same generated files; a full ingest and
build of everything (fresh warehouse), a 1 % incremental batch (ingest + build of the last of 100
chronological parts, from the same 99-part state), and the report queries of `make bench`
(overdue-monthly, an amount filter, the overview's queries; best of 5 in-process). The base is
checked out with `git worktree`, as is the head, and each runs from its own source with this
virtualenv (so the working tree can change meanwhile).

    python benchmarks/paired.py --base HEAD~1 --scales "S M" --pairs 3
    python benchmarks/paired.py --base some-branch --scales L --pairs 4 --batch-only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
SCALES = {"S": 1_000, "M": 50_000, "L": 500_000}
END = "2026-10-31"
PARTS = 100

QUERIES = """
import json, sys, time
from loanwatch import reports
from loanwatch.config import load_settings
from loanwatch.serve import open_snapshot
con = open_snapshot(load_settings(sys.argv[1], environ={}))
def best(fn, n=5):
    out = []
    for _ in range(n):
        t = time.perf_counter(); fn(); out.append(time.perf_counter() - t)
    return min(out)
f = reports.LoanFilter(min_amount=1000, max_amount=5000)
print(json.dumps({
    "report_query_s": best(lambda: reports.overdue_monthly(con)),
    "filter_query_s": best(lambda: reports.overdue_monthly(con, f=f)),
    "overview_query_s": best(lambda: (reports.overdue_monthly(con, f=f), reports.summary(con, f=f))),
}))
"""


def loanwatch(src: Path, *args: str, home: Path) -> float:
    """Run `loanwatch ARGS` from a source tree; its wall time."""
    env = {**os.environ, "PYTHONPATH": str(src), "LOANWATCH_HOME": str(home)}
    start = time.monotonic()
    proc = subprocess.run([PYTHON, "-c", "from loanwatch.cli import run; run()", *args], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"{src}: loanwatch {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return time.monotonic() - start


def queries(src: Path, home: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([PYTHON, "-c", QUERIES, str(home)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def bench_scale(name: str, trees: dict[str, Path], work: Path, pairs: int,
                batch_only: bool = False, reuse: bool = False) -> dict[str, dict[str, list[float]]]:
    root = work / name
    ready = reuse and all((root / f"{v}_before_batch" / ".ready").exists() for v in trees)
    if not ready:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        head = trees["head"]
        loanwatch(head, "generate", "--clients", str(SCALES[name]), "--seed", "1", "--end", END,
                  "--out", str(root / "raw"), home=root / "gen")
        loanwatch(head, "split", str(root / "raw"), "--parts", str(PARTS), "--out", str(root / "parts"), home=root / "gen")
    parts = sorted((root / "parts").iterdir())
    results: dict[str, dict[str, list[float]]] = {v: {} for v in trees}
    # the 99-part state each variant's batches start from, built where the batches run and kept
    # aside: restored in place, as make bench does, so dbt's partial parse holds (the profile
    # names the home's path; a copy elsewhere made every batch build parse the whole project)
    for variant, src in trees.items():
        before, batch = root / f"{variant}_before_batch", root / f"{variant}_batch"
        if ready:
            continue
        shutil.rmtree(batch, ignore_errors=True)
        loanwatch(src, "ingest", *map(str, parts[:-1]), home=batch)
        loanwatch(src, "build", home=batch)
        shutil.rmtree(before, ignore_errors=True)
        shutil.copytree(batch, before)
        (before / ".ready").touch()
    for i in range(pairs):
        order = list(trees) if i % 2 == 0 else list(reversed(trees))
        for variant in order:
            src, got = trees[variant], results[variant]
            home = root / f"{variant}_full"
            if not batch_only:
                shutil.rmtree(home, ignore_errors=True)
                got.setdefault("ingest_s", []).append(loanwatch(src, "ingest", str(root / "raw"), home=home))
                got.setdefault("build_s", []).append(loanwatch(src, "build", home=home))
            batch = root / f"{variant}_batch"
            shutil.rmtree(batch, ignore_errors=True)
            shutil.copytree(root / f"{variant}_before_batch", batch)
            t1 = loanwatch(src, "ingest", str(parts[-1]), home=batch)
            t2 = loanwatch(src, "build", home=batch)
            got.setdefault("batch_ingest_s", []).append(t1)
            got.setdefault("batch_build_s", []).append(t2)
            for key, value in queries(src, batch if batch_only else home).items():
                got.setdefault(key, []).append(value)
            print(f"{name} pair {i + 1} {variant}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in got.items()), flush=True)
    return results


@contextlib.contextmanager
def checked_out(commits: dict[str, tuple[Path, str]]) -> Iterator[dict[str, Path]]:
    """Each commit checked out (`git worktree`, detached) at its path, removed afterwards: name ->
    the tree's src folder, for PYTHONPATH."""
    for tree, commit in commits.values():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit], check=True,
                       capture_output=True)
    try:
        yield {name: tree / "src" for name, (tree, _) in commits.items()}
    finally:
        for tree, _ in commits.values():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True, help="the commit to compare with (e.g. HEAD~1)")
    parser.add_argument("--head", default="HEAD", help="the commit to measure (default HEAD; both are checked out)")
    parser.add_argument("--scales", default="S M")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--work", default="/tmp/loanwatch_bench_paired")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the generated files and 99-part states of the last run with the same commits")
    parser.add_argument("--batch-only", action="store_true",
                        help="only the 1 %% batch and the queries (no full ingest and build per pair)")
    args = parser.parse_args()
    work = Path(args.work)
    checkouts = {"base": (work / "base_tree", args.base), "head": (work / "head_tree", args.head)}
    with checked_out(checkouts) as trees:
        for name in args.scales.split():
            results = bench_scale(name, trees, work, args.pairs, args.batch_only, args.reuse)
            print(f"\n{name}: metric | base ({args.base}) | head | head / base (medians)")
            for key in results["head"]:
                b, h = results["base"][key], results["head"][key]
                ratio = statistics.median(h) / statistics.median(b)
                print(f"{name} {key} | {' / '.join(f'{v:.3f}' for v in b)} | {' / '.join(f'{v:.3f}' for v in h)} | {ratio:.3f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
