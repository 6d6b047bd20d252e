"""`make bench-servicing`: what servicing events cost (issue 39): the same generated portfolio with
and without them, side by side in one run.

`loanwatch generate` gives about one loan in ten a servicing event (late-payment penalties, fees,
waivers, reversed charges; recoveries are payments). The portfolio *without* them is the same
files less `charges.jsonl` and `adjustments.jsonl`: the same loans and payments, every loan on the
cumulative path. For each variant, alternating: a full ingest and build (fresh warehouse), and a
1 % batch (the last of 100 chronological parts, ingested and built from the same 99-part state).
The medians and their ratio (with / without) are printed; docs/benchmarks.md keeps them.

    python benchmarks/servicing.py --clients 50000 --pairs 3
    python benchmarks/servicing.py --clients 500000 --pairs 1 --reuse   # L again, on the same files

The files *without* keep the restructurings (loan versions with `restructured_at` and their
instalment records), so about 0.9 % of loans are event by event in both variants.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
from pathlib import Path

from paired import END, PARTS, ROOT, loanwatch

SRC = ROOT / "src"
EVENTS = ("charges.jsonl", "adjustments.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--work", default="/tmp/loanwatch_bench_servicing")
    parser.add_argument("--batch-only", action="store_true", help="only the 1 %% batch (no full ingest and build)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the generated files and their parts from an earlier run in --work with the same "
                             "--clients (they are the same for a seed); the warehouses are built again")
    args = parser.parse_args()
    root = Path(args.work)
    raw = {"with": root / "raw_with", "without": root / "raw_without"}
    ready = root / f".ready_{args.clients}"
    if not (args.reuse and ready.exists()):
        shutil.rmtree(root, ignore_errors=True)
        loanwatch(SRC, "generate", "--clients", str(args.clients), "--seed", "1", "--end", END, "--out",
                  str(raw["with"]), home=root / "gen")
        shutil.copytree(raw["with"], raw["without"], ignore=shutil.ignore_patterns(*EVENTS))
        assert all((raw["with"] / e).exists() for e in EVENTS)
        for variant, folder in raw.items():
            loanwatch(SRC, "split", str(folder), "--parts", str(PARTS), "--out", str(root / f"parts_{variant}"),
                      home=root / "gen")
        ready.touch()
    parts = {variant: sorted((root / f"parts_{variant}").iterdir()) for variant in raw}
    # the 99 parts before the batch, built by this code (a warehouse built by other code would
    # rebuild everything at its first build, as after an upgrade)
    for variant in raw:
        shutil.rmtree(root / f"{variant}_before_batch", ignore_errors=True)
        loanwatch(SRC, "ingest", *map(str, parts[variant][:-1]), home=root / f"{variant}_before_batch")
        loanwatch(SRC, "build", home=root / f"{variant}_before_batch")
    results: dict[str, dict[str, list[float]]] = {v: {} for v in raw}
    for i in range(args.pairs):
        for variant in (list(raw) if i % 2 == 0 else list(reversed(raw))):
            got = results[variant]
            if not args.batch_only:
                home = root / f"{variant}_full"
                shutil.rmtree(home, ignore_errors=True)
                got.setdefault("ingest_s", []).append(loanwatch(SRC, "ingest", str(raw[variant]), home=home))
                got.setdefault("build_s", []).append(loanwatch(SRC, "build", home=home))
            batch = root / f"{variant}_batch"
            shutil.rmtree(batch, ignore_errors=True)
            shutil.copytree(root / f"{variant}_before_batch", batch)
            got.setdefault("batch_ingest_s", []).append(loanwatch(SRC, "ingest", str(parts[variant][-1]), home=batch))
            got.setdefault("batch_build_s", []).append(loanwatch(SRC, "build", home=batch))
            print(f"pair {i + 1} {variant}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in got.items()), flush=True)
    print(f"\n{args.clients} clients: metric | without | with | with / without (medians)")
    for key in results["with"]:
        a, b = results["without"][key], results["with"][key]
        print(f"{key} | {' / '.join(f'{v:.2f}' for v in a)} | {' / '.join(f'{v:.2f}' for v in b)} | "
              f"{statistics.median(b) / statistics.median(a):.3f}")


if __name__ == "__main__":
    main()
